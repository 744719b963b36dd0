"""Placements as arrays: one entry per candidate, so every cost function evaluates thousands at once.

Conventions (docs/placement.md): a replica spans `pp` pipeline stages of `tp * ep` GPUs each, and
`dp` replicas serve independently. Attention runs tensor-parallel over all `tp * ep` GPUs of a stage,
or, with attention data parallelism (`attn_dp`), as `ep` independent groups of `tp` GPUs that each
hold their own sequences. Routed experts are split `ep` ways and each expert `tp` ways.
Dense models use `ep = 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """One entry per placement. Fields are 1-D arrays of equal length; plain ints (and bools) or
    lists are accepted too and broadcast against each other, so `Layout(tp=2, pp=2)` is one
    placement and `Layout(tp=[1, 2, 4])` three. Arrays pass through untouched (the vectorized path)."""

    tp: np.ndarray = 1
    pp: np.ndarray = 1
    ep: np.ndarray = 1
    dp: np.ndarray = 1
    attn_dp: np.ndarray = False  # bool

    def __post_init__(self) -> None:
        values = (self.tp, self.pp, self.ep, self.dp, self.attn_dp)
        if all(type(v) is np.ndarray for v in values):
            return
        for name, a in zip(("tp", "pp", "ep", "dp", "attn_dp"), _broadcast(values)):
            object.__setattr__(self, name, a)

    @staticmethod
    def of(tp=1, pp=1, ep=1, dp=1, attn_dp=False) -> "Layout":
        """Placements from scalars or sequences, broadcast against each other: the constructor's
        conversion, applied to arrays too (the constructor passes five arrays through untouched)."""
        return Layout(*_broadcast((tp, pp, ep, dp, attn_dp)))

    def __len__(self) -> int:
        return int(self.tp.size)

    def take(self, idx) -> "Layout":
        return Layout(self.tp[idx], self.pp[idx], self.ep[idx], self.dp[idx], self.attn_dp[idx])

    @property
    def stage_gpus(self) -> np.ndarray:
        return self.tp * self.ep

    @property
    def replica_gpus(self) -> np.ndarray:
        return self.tp * self.ep * self.pp

    @property
    def gpus(self) -> np.ndarray:
        return self.replica_gpus * self.dp

    @property
    def attn_tp(self) -> np.ndarray:
        """Tensor-parallel degree of attention, dense FFN layers and shared experts."""
        return np.where(self.attn_dp, self.tp, self.tp * self.ep)

    @property
    def attn_groups(self) -> np.ndarray:
        """Independent attention groups per stage (each holds its own sequences and KV cache)."""
        return np.where(self.attn_dp, self.ep, 1)


def _broadcast(values) -> list[np.ndarray]:
    """(tp, pp, ep, dp, attn_dp) as 1-D arrays of one length: int64 degrees (whole numbers only),
    bool attention-DP."""
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v)) for v in values))
    out = []
    for name, a, dtype in zip(("tp", "pp", "ep", "dp", "attn_dp"), arrays, (np.int64,) * 4 + (bool,)):
        if dtype is np.int64 and a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise ValueError(f"Layout.{name} must be whole numbers, got {a.tolist()}")
        out.append(np.array(a, dtype=dtype))
    return out


def handoff_leaves_domain(stage_gpus, boundary: int, domain_gpus: int) -> np.ndarray:
    """Whether the hand-off after stage `boundary` (0-based) leaves the scale-up domain. Stages are
    packed into domains whole (space/packing.py): a domain holds `domain // stage` stages of a
    replica, filled in order from the replica's first stage, so every such group's last stage hands
    off across; a stage that fills a domain or more always does. A replica that starts mid-domain
    (the second TP1 PP3 replica on 8-GPU nodes) may cross one boundary earlier than priced: the
    slight optimism docs/placement.md states."""
    s = np.asarray(stage_gpus, dtype=np.int64)
    per_domain = np.maximum(domain_gpus // np.maximum(s, 1), 1)
    return (s >= domain_gpus) | ((boundary + 1) % per_domain == 0)


def stage_layer_counts(group_index: tuple[int, ...], n_groups: int, pp: int) -> np.ndarray:
    """Layers of each group in each pipeline stage, shape (pp, n_groups); layers split as evenly
    as possible, the first stages taking one more when the split is uneven."""
    n = len(group_index)
    sizes = [n // pp + (1 if s < n % pp else 0) for s in range(pp)]
    out = np.zeros((pp, n_groups), dtype=np.int64)
    start = 0
    for s, size in enumerate(sizes):
        for g in group_index[start:start + size]:
            out[s, g] += 1
        start += size
    return out
