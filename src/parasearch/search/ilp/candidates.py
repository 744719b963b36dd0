"""Replica configurations the ILP may use, precomputed by the oracle for each pool and role.

Roles: `aggregated` (a replica serves prefill and decode of its own requests), `prefill` and
`decode` (disaggregated serving: prompts on one replica, generation on another, the KV cache sent
between them). A candidate is kept only if it meets the SLOs its role can see. Candidates that
another of the same pool, role and GPU count beats or matches on every count (rate, TPOT, TTFT)
are dropped: swapping one for the other never hurts, so the optimum is unchanged (see
`prune_dominated`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...cost.memory import kv_bytes_per_sequence
from ...cost.layout import Layout
from ...cost.serving import Workload, decode_only, prefill_only, serve
from ...space.enumerate import enumerate_space
from ...space.label import placement_label
from ...spec.problem import Pool, Problem

ROLES = ("aggregated", "prefill", "decode")
PREFILL_BATCHES = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Candidate:
    pool: str
    role: str
    tp: int
    pp: int
    ep: int
    attn_dp: bool
    batch: int             # aggregated/decode: batch cap; prefill: prompts per pass
    gpus: int
    rate: float            # requests per second one replica sustains
    tpot_s: float          # 0 for prefill
    ttft_s: float          # aggregated: full TTFT; prefill: its share (queue + compute); decode: 0
    e2e_s: float
    kv_link_bytes_per_s: float  # bandwidth the replica's NICs give KV transfers (disaggregated roles)
    bottleneck: str
    group: int = 1         # replicas the candidate stands for (the ILP under traffic rates groups)
    whole: bool = False    # packed as whole replicas (search.whole_replicas), not stage by stage

    @property
    def stage_gpus(self) -> int:
        """GPUs of the unit node packing places: a stage, or the whole replica when `whole`."""
        return self.tp * self.ep * (self.pp if self.whole else 1)

    @property
    def slots(self) -> int:
        """Packing units one candidate takes: pp stages per replica (one replica when `whole`)."""
        return (1 if self.whole else self.pp) * self.group

    @property
    def label(self) -> str:
        return placement_label(self.tp, self.pp, self.ep, 1, self.attn_dp)


def _shapes(problem: Problem, pool: Pool):
    one = replace(problem, limits=replace(problem.limits, dp=(1,)),
                  workload=replace(problem.workload, arrival_rate=None))
    return enumerate_space(one, pool)


def kv_bytes_per_request(problem: Problem) -> float:
    """The whole prompt's KV cache (all layers, all heads) that a prefill replica hands over."""
    return float(kv_bytes_per_sequence(problem.model, Layout.of(), problem.precision.kv_cache,
                                       problem.workload.input_tokens)[0])


def _link(problem: Problem, pool: Pool, gpus: np.ndarray) -> np.ndarray:
    per_gpu = problem.ilp.kv_transfer_bytes_per_s or pool.hardware.scale_out_bytes_per_s * \
        pool.hardware.collective_efficiency
    return gpus * per_gpu


def _price(problem: Problem, pool: Pool, role: str, sp) -> tuple | None:
    """The oracle's figures for every shape `sp` of `pool` in one role, before SLOs, the KV link
    and pruning cut them: (layout, batch, rate, tpot, ttft, e2e, bottleneck, fits), or None when no
    shape fits the pool."""
    if len(sp) == 0:
        return None
    m, hw, eng, prec = problem.model, pool.hardware, problem.engine, problem.precision
    wl = Workload(problem.workload.input_tokens, problem.workload.output_tokens,
                  problem.workload.output_tokens_reserved)
    lay = sp.layout
    if role == "aggregated":
        s = serve(m, hw, eng, lay, prec, wl, sp.max_batch)
        return lay, sp.max_batch, s.output_tokens_per_s / wl.output_tokens, s.tpot_s, s.ttft_s, s.e2e_s, \
            s.bottleneck, s.fits
    if role == "decode":
        d = decode_only(m, hw, eng, lay, prec, wl, sp.max_batch)
        return lay, sp.max_batch, d.requests_per_s, d.tpot_s, d.ttft_s, d.tpot_s * (wl.output_tokens - 1), \
            d.bottleneck, d.fits
    # Prefill does not depend on the decode batch cap: one row per shape, several prompt batches.
    first = np.unique(np.stack([lay.tp, lay.pp, lay.ep, lay.attn_dp.astype(int)], axis=1), axis=0,
                      return_index=True)[1]
    sl = sp.take(np.sort(first)).layout
    reps = len(PREFILL_BATCHES)
    rl = Layout(np.repeat(sl.tp, reps), np.repeat(sl.pp, reps), np.repeat(sl.ep, reps), np.repeat(sl.dp, reps),
                np.repeat(sl.attn_dp, reps))
    b = np.tile(np.array(PREFILL_BATCHES, float), len(sl))
    pcap = prefill_only(m, hw, eng, rl, prec, wl, b)
    return rl, b, pcap.requests_per_s, pcap.tpot_s, pcap.ttft_s, pcap.ttft_s, pcap.bottleneck, pcap.fits


def pool_candidates(problem: Problem, pool: Pool, roles=ROLES, prune: bool = True,
                    priced: dict | None = None) -> list[Candidate]:
    """The pool's candidates: the enumerator's space, every shape once (dp = 1), so the plan is
    optimal over every valid placement. `priced` (for this pool: its shapes under "shapes", and
    `_price`'s figures under each role) is filled and reused when given: re-decisions that relax
    an SLO or the KV link cut the same figures again instead of pricing them again."""
    priced = {} if priced is None else priced
    slo = problem.slo
    whole = problem.limits.whole_replicas
    out: list[Candidate] = []

    def add(role, lay, mask, batch, rate, tpot, ttft, e2e, bott, link):
        i = np.flatnonzero(mask)  # columns as Python lists once: indexing arrays per row is slow on big fleets
        cols = [lay.tp[i].tolist(), lay.pp[i].tolist(), lay.ep[i].tolist(), lay.attn_dp[i].tolist(),
                np.asarray(batch)[i].astype(int).tolist(), lay.replica_gpus[i].tolist(), rate[i].tolist(),
                tpot[i].tolist(), ttft[i].tolist(), e2e[i].tolist(), np.asarray(link, float)[i].tolist(),
                np.asarray(bott)[i].astype(str).tolist()]
        out.extend(Candidate(pool.name, role, *row, whole=whole) for row in zip(*cols))

    for role in ("aggregated", "decode", "prefill"):
        if role not in roles:
            continue
        if role not in priced:
            if "shapes" not in priced:
                priced["shapes"] = _shapes(problem, pool)
            priced[role] = _price(problem, pool, role, priced["shapes"])
        if priced[role] is None:
            return []
        lay, batch, rate, tpot, ttft, e2e, bott, fits = priced[role]
        link = _link(problem, pool, lay.replica_gpus.astype(float))
        if role == "aggregated":
            ok = fits & _within(slo.tpot_s, tpot) & _within(slo.ttft_s, ttft) & _within(slo.e2e_s, e2e)
            add(role, lay, ok, batch, rate, tpot, ttft, e2e, bott, np.zeros(len(lay)))
        elif role == "decode":
            add(role, lay, fits & _within(slo.tpot_s, tpot), batch, rate, tpot, ttft, e2e, bott, link)
        else:  # a prefill replica's TTFT includes handing the prompt's KV to a decode replica
            full = ttft + kv_bytes_per_request(problem) / link
            add(role, lay, fits & _within(slo.ttft_s, full), batch, rate, tpot, full, full, bott, link)
    return prune_dominated(out, pool.gpus_per_node) if prune else out


def _within(limit, value) -> np.ndarray:
    return np.ones_like(value, dtype=bool) if not limit else value <= limit


def prune_dominated(cands: list[Candidate], gpus_per_node: int) -> list[Candidate]:
    """Drop c2 when some c1 of the same pool and role has a GPU count dividing c2's, a stage that
    tiles c2's stage slots, at least its rate per GPU, and no worse latency. k = gpus2 / gpus1
    copies of c1 then take the same GPUs and nodes (each of c2's stage slots holds stage2 / stage1
    of c1's, within the same node or whole nodes), give at least c2's rate and KV-transfer
    bandwidth, at the same price: every plan using c2 has an equal or better one without it, so
    the optimum is unchanged. Of exact ties the first is kept."""
    groups: dict[tuple, list[Candidate]] = {}
    for c in cands:
        groups.setdefault((c.pool, c.role), []).append(c)
    kept: list[Candidate] = []
    g = gpus_per_node
    for group in groups.values():
        group.sort(key=lambda c: (c.gpus, -c.rate, c.tpot_s, c.ttft_s))
        # The survivors' columns as arrays (one vectorized test per candidate, not a Python loop).
        # A c1 stage tiles c2's slot when it divides it and the pieces stay in place: within a
        # node when c2's stage fits one; on c2's whole nodes when c1's divides the node or takes
        # whole nodes itself.
        cols = np.zeros((5, len(group)))   # gpus, stage, rate per GPU, tpot, ttft
        n = 0
        for c2 in group:
            gp, st, rpg, tpot, ttft = cols[:, :n]
            small = st.astype(np.int64)
            dominated = np.any((c2.gpus % gp.astype(np.int64) == 0) & (c2.stage_gpus % small == 0)
                               & ((c2.stage_gpus <= g) | (g % small == 0) | (small % g == 0))
                               & (rpg >= c2.rate / c2.gpus) & (tpot <= c2.tpot_s) & (ttft <= c2.ttft_s))
            if not dominated:
                cols[:, n] = (c2.gpus, c2.stage_gpus, c2.rate / c2.gpus, c2.tpot_s, c2.ttft_s)
                n += 1
                kept.append(c2)
    return kept


def pool_classes(pools: list[Pool]) -> list[list[Pool]]:
    """The pools grouped by GPU type and node size (what a candidate's rate depends on), in the
    order they first appear."""
    classes: list[list[Pool]] = []
    for pool in pools:  # Hardware holds a dict, so equal GPUs are found by comparison, not hashing
        same = next((m for m in classes if m[0].hardware == pool.hardware
                     and m[0].gpus_per_node == pool.gpus_per_node), None)
        if same is None:
            classes.append([pool])
        else:
            same.append(pool)
    return classes


def all_candidates(problem: Problem, roles=ROLES, prune: bool = True, priced: dict | None = None) -> list[Candidate]:
    """Candidates of every pool. Pools of one GPU type and node size share their candidates up to
    size: the oracle runs once per such class, on its largest pool, and each pool keeps those
    that fit it (a fleet of 32 pools of 5 GPU types costs 5 evaluations, not 32). Dominance
    pruning commutes with that filter: a candidate's dominator tiles its stage slots, so it fits
    every pool the candidate fits. `priced` (a dict the caller keeps) holds the oracle's figures
    between calls on problems that differ only in SLOs or the KV link."""
    from ...space.packing import replicas_that_fit

    by_pool: dict[str, list[Candidate]] = {}
    for members in pool_classes(problem.pools):
        largest = max(members, key=lambda q: q.nodes)
        cands = pool_candidates(problem, largest, roles, prune,
                                None if priced is None else priced.setdefault(largest.name, {}))
        for pool in members:
            by_pool[pool.name] = [c if pool is largest else replace(c, pool=pool.name) for c in cands
                                  if pool is largest or replicas_that_fit(c.stage_gpus, c.slots, pool) >= 1]
    return [c for pool in problem.pools for c in by_pool[pool.name]]
