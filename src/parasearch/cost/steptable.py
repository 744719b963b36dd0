"""Step times of continuous batching on a grid, from one vectorized oracle call.

An engine iteration ("cycle") advances every running sequence by one token and pushes up to the
token budget of prompt chunks alongside (chunked prefill). Its time depends on the decode batch `b`,
the mean context `c` of the decoding sequences and the prompt tokens `p` it carries. Calling the
oracle per iteration would be far too slow for a simulator or for a queueing model evaluated at many
loads, so the time is tabulated once on a grid and interpolated (linearly: the oracle's step time is a
sum of roofline maxima, piecewise linear in b and p, and linear in c).

Each cycle is one engine step (`iteration.engine_step`): the engine's host work, CUDA-graph limits
and pipeline schedule (micro-batches taking turns, each with its share of the decode sequences
and of the prompt tokens) included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Layout
from .iteration import engine_step, micro_batches
from .step import Tokens

B_GRID = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
P_GRID = (0, 32, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
L_GRID = (32, 256, 1024, 4096, 16384, 65536, 262144)


def b_grid(max_b: float) -> np.ndarray:
    g = [b for b in B_GRID if b < max_b]
    return np.array(g + [float(max(max_b, 1.0))], float)


def p_grid(max_p: float) -> np.ndarray:
    g = [p for p in P_GRID if p < max_p]
    return np.array(g + [float(max(max_p, 1.0))], float)


@dataclass(frozen=True)
class StepTable:
    b: np.ndarray   # decode sequences per replica, ascending
    c: np.ndarray   # mean context of the decoding sequences (tokens), ascending
    p: np.ndarray   # prompt tokens in the cycle, ascending
    t: np.ndarray   # cycle time (s), shape (placements, len(b), len(c), len(p)[, len(l)])
    l: np.ndarray | None = None   # attention span of the prompt tokens (see step_table)

    def take(self, i: int) -> "StepTable":
        return StepTable(self.b, self.c, self.p, self.t[i:i + 1], self.l)


def step_table(model, hw, engine, layout: Layout, prec, b, c, p, l=None) -> StepTable:
    """Cycle times of every placement of `layout` on the grid b x c x p (x l), in one oracle call.

    Without `l` the p prompt tokens are one prompt. With `l`, they are p / l prompts of l tokens each
    (one prompt when l >= p): a cycle carrying several prompts, or a later chunk of a long prompt,
    attends over sum(chunk x (tokens before it + chunk / 2)) query-key pairs, which is what prompts of
    l = 2 x pairs / p tokens give, so the simulator reads the table at that l."""
    b, c, p = (np.asarray(v, float) for v in (b, c, p))
    lg = np.asarray(l, float) if l is not None else np.array([0.0])
    n, g = len(layout), b.size * c.size * p.size * lg.size
    bb, cc, ppt, ll = (a.ravel() for a in np.meshgrid(b, c, p, lg, indexing="ij"))
    lay = layout.take(np.repeat(np.arange(n), g))
    dec, ctx, pre, span = (np.tile(a, n) for a in (bb, cc, ppt, ll))
    micro = micro_batches(engine.on(hw), lay, dec)
    per = pre / micro                                  # prompt tokens in each micro-batch
    plen = np.where(span > 0, np.minimum(span, per), per)
    prompts = np.where(plen > 0, pre / np.maximum(plen, 1e-9), 0.0)
    # The engine's step: host work, CUDA graphs and its pipeline schedule (cost/iteration.py).
    cycle = engine_step(model, hw, engine, lay, prec, Tokens(dec, ctx, prompts, plen)).tick
    shape = (n, b.size, c.size, p.size) + ((lg.size,) if l is not None else ())
    return StepTable(b, c, p, cycle.reshape(shape), lg if l is not None else None)


def l_grid(max_l: float) -> np.ndarray:
    g = [v for v in L_GRID if v < max_l]
    return np.array(g + [float(max(max_l, 1.0))], float)


def bracket(grid: np.ndarray, x) -> tuple[np.ndarray, np.ndarray]:
    """(index of the grid cell, weight of its upper end) for linear interpolation, clamped to the grid."""
    x = np.clip(np.asarray(x, float), grid[0], grid[-1])
    j = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, max(grid.size - 2, 0))
    if grid.size == 1:
        return j, np.zeros_like(x)
    w = (x - grid[j]) / (grid[j + 1] - grid[j])
    return j, w


def along(values: np.ndarray, grid: np.ndarray, x) -> np.ndarray:
    """Interpolate `values` (placements first, then the grid axis, then anything) linearly along the
    grid at `x`, which has the placements first too: shape (n,) or (n, m). Returns x.shape + the rest."""
    x = np.asarray(x, float)
    n, g = values.shape[0], grid.size
    j, w = bracket(grid, x)
    flat = values.reshape((n * g,) + values.shape[2:])
    base = (np.arange(n) * g).reshape((n,) + (1,) * (x.ndim - 1))
    lo = flat[base + j]
    hi = flat[base + np.minimum(j + 1, g - 1)]
    w = w.reshape(w.shape + (1,) * (values.ndim - 2))
    return lo * (1 - w) + hi * w
