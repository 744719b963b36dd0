"""The placement space of a problem, valid by construction (rules in docs/placement.md)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..catalog.models import ModelSpec
from ..cost.layout import Layout
from ..defaults import MAX_BATCH_GRID
from ..spec.problem import Pool, Problem, SearchLimits
from .packing import replicas_that_fit
from .rules import divisors, placement_ok

DP_GRID_LIMIT = 64


@dataclass(frozen=True)
class Space:
    layout: Layout
    max_batch: np.ndarray
    pool: Pool

    def __len__(self) -> int:
        return len(self.layout)

    def take(self, idx) -> "Space":
        return Space(self.layout.take(idx), self.max_batch[idx], self.pool)


def degree_candidates(model: ModelSpec, pool: Pool, limits: SearchLimits) -> dict[str, list]:
    g = pool.gpus
    heads = model.attention_heads
    tp = list(limits.tp) if limits.tp else [t for t in divisors(heads) if t <= g]
    ep = list(limits.ep) if limits.ep else ([e for e in divisors(model.num_experts) if e <= g]
                                             if model.is_moe else [1])
    # Every pipeline depth up to the layer count (uneven splits allowed); deeper than the pool's
    # GPUs cannot be placed.
    pp = list(limits.pp) if limits.pp else list(range(1, min(model.num_layers, g) + 1))
    adp = list(limits.attn_dp) if limits.attn_dp else [False, True]
    mb = list(limits.max_batch) if limits.max_batch else list(MAX_BATCH_GRID)
    return {"tp": sorted(set(tp)), "ep": sorted(set(ep)), "pp": sorted(set(pp)), "attn_dp": sorted(set(adp)),
            "max_batch": sorted(set(mb))}


def _dp_values(max_dp: int, limits: SearchLimits, rate_given: bool) -> list[int]:
    """Without an arrival rate per-GPU metrics do not depend on dp, so the whole pool is used
    (as many replicas as fit); with a rate, dp sets the load per replica and is searched."""
    if limits.dp:
        return [d for d in limits.dp if d <= max_dp]
    if not rate_given:
        return [max_dp]
    if max_dp <= DP_GRID_LIMIT:
        return list(range(1, max_dp + 1))
    grid = {1, max_dp}
    d = 1
    while d < max_dp:
        grid.add(d)
        d *= 2
    return sorted(grid)


def enumerate_space(problem: Problem, pool: Pool | None = None) -> Space:
    pool = pool or problem.pool
    model, limits = problem.model, problem.limits
    c = degree_candidates(model, pool, limits)
    rows: list[tuple] = []
    for tp, ep, pp, adp in product(c["tp"], c["ep"], c["pp"], c["attn_dp"]):
        if not placement_ok(model, tp, pp, ep, adp):
            continue
        replica = tp * ep * pp
        max_dp = replicas_that_fit(tp * ep, pp, pool, limits.whole_replicas)
        if max_dp < 1:
            continue
        for dp in _dp_values(max_dp, limits, problem.workload.arrival_rate is not None):
            gpus = replica * dp
            if limits.min_gpus and gpus < limits.min_gpus or limits.max_gpus and gpus > limits.max_gpus:
                continue
            for mb in c["max_batch"]:
                rows.append((tp, pp, ep, dp, adp, mb))
    a = np.array(rows, dtype=np.int64).reshape(-1, 6)
    layout = Layout(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(bool))
    return Space(layout, a[:, 5].astype(float), pool)
