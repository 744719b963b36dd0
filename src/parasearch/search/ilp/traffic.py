"""The ILP under real traffic: percentile SLOs and bursty arrivals (a trace or an arrival process).

Under load (`problem.under_load`), an aggregated candidate's servable rate is its **goodput** from
the analytic load model (`cost/load.py`): the highest per-replica arrival rate at which every stated
SLO (means and percentiles) holds, given the arrivals' burstiness. Its TTFT carries the load model's
queueing terms (the cycle in progress, the prompts riding with it, slot and token-budget waits), so
rate matching, `sum_c goodput_c x_c >= target`, leaves the headroom that burstiness needs.

Splitting the stream (docs/traffic.md, "The ILP under traffic"). A candidate is a **group** of j
replicas of one shape (j = 1, 2, 4, ..., GROUPS) behind a round-robin balancer: each replica gets
every j-th request of the group's stream, squared CV ca2 / j, exactly as the single-pool search
treats a placement's dp replicas (`cost/load.goodput`), and the group's rate is j times the
per-replica goodput at that CV. The plan's groups share the fleet's stream by weight (each gets at
most its goodput), and each group's share is taken to be **as bursty as the whole stream**. That is
conservative for cv >= 1: any split of a renewal process, random (p ca2 + 1 - p) or round-robin
(ca2 / k), leaves at most ca2; for cv < 1 it assumes the balancer keeps the stream's regularity,
as round-robin does (a random split would push it toward Poisson). Counting on no thinning across
groups keeps each candidate's rate a constant, so the program stays linear; a plan that uses 8
replicas of one shape picks one group of 8 (or 4 + 4, ...), since larger groups serve more per GPU.
Groups are powers of two of a replica size that packs exactly, so they pack exactly too.

Disaggregated replicas are left out under load: the load model covers aggregated replicas only (the
simulator covers disaggregation), and mean-based prefill/decode rates would be compared unfairly
with burst-aware aggregated goodputs. The plan says so in a note.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...cost import load as L
from ...cost.layout import Layout
from ...space.packing import replicas_that_fit
from ...space.label import placement_label
from ...spec.problem import Pool, Problem, Slo
from ..goodput import load_model as _load_model
from .candidates import Candidate, all_candidates, pool_classes, prune_dominated

GROUPS = (1, 2, 4, 8, 16, 32)   # replicas per candidate group; beyond 32, cv^2 / j is near 0 anyway
DISAGGREGATION_NOTE = ("under traffic the ILP plans aggregated replicas only: the load model behind the "
                       "percentiles and the burst headroom covers aggregated serving (the simulator covers "
                       "disaggregation: parasearch simulate)")


@dataclass(frozen=True)
class GroupInfo:
    """What a group candidate stands for: `size` replicas of `replica_gpus` GPUs, each serving at most
    `goodput` req/s (per replica, at squared CV cv^2 / size), and the SLO that binds just past it."""

    size: int
    replica_gpus: int
    goodput: float
    binding: str


def applies(problem: Problem) -> bool:
    """Whether the ILP plans with the load model: a trace, an arrival process or percentile SLOs."""
    return problem.under_load


def binding_label(name: str) -> str:
    """'p99-ttft' -> 'p99 TTFT'; 'capacity' stays."""
    if "-" not in name:
        return name
    stat, metric = name.split("-", 1)
    return f"{stat} {metric.upper()}"


def _shape(c: Candidate) -> tuple:
    return (c.tp, c.pp, c.ep, c.attn_dp, c.batch)


def load_model(problem: Problem, pool: Pool, shapes: list[tuple], sizes) -> L.LoadModel:
    """The load model of groups of `sizes` replicas (its dp) of each shape (tp, pp, ep, attn_dp,
    batch), on the pool's hardware: one oracle call over the distinct shapes."""
    col = lambda k, t: np.array([s[k] for s in shapes], t)  # noqa: E731
    lay = Layout(col(0, np.int64), col(1, np.int64), col(2, np.int64), np.asarray(sizes, np.int64), col(3, bool))
    return _load_model(problem, pool, lay, col(4, float))


def load_candidates(problem: Problem, prune: bool = True,
                    priced: dict | None = None) -> tuple[list[Candidate], dict[Candidate, GroupInfo]]:
    """Aggregated group candidates rated at their goodput, and what each stands for.

    The replica shapes are the steady-state candidates' without the mean-SLO filter (the load model
    checks every SLO, means included); groups with no goodput are dropped. A candidate's `gpus` and
    `rate` are the group's; `ttft_s`/`tpot_s` are the mean TTFT/TPOT at its goodput. `priced`: as
    `all_candidates` takes it."""
    loose = all_candidates(replace(problem, slo=Slo()), ("aggregated",), prune=False, priced=priced)
    pools = {p.name: p for p in problem.pools}
    targets = problem.slo.targets
    cv = problem.traffic_or_default().cv
    tail = max(problem.workload.output_tokens - 1, 0)
    # Pools of one GPU type and node size share a shape's goodput: one load model per such class.
    class_of = {p.name: k for k, members in enumerate(pool_classes(problem.pools)) for p in members}
    classes: dict[int, list[Candidate]] = {}
    for c in loose:
        classes.setdefault(class_of[c.pool], []).append(c)
    out: list[Candidate] = []
    info: dict[Candidate, GroupInfo] = {}
    for members in classes.values():
        mine: list[Candidate] = []
        biggest = max((pools[c.pool] for c in members), key=lambda q: q.gpus)
        protos = {}
        for c in members:
            protos.setdefault(_shape(c), c)
        rows = [(s, j) for s, c in protos.items() for j in GROUPS
                if replicas_that_fit(c.stage_gpus, c.slots * j, biggest) >= 1]
        lm = load_model(problem, biggest, [s for s, _ in rows], [j for _, j in rows])
        good, binds = L.goodput(lm, targets, cv)                  # per replica, at ca2 = cv^2 / j
        st = L.state(lm, np.maximum(good, 1e-12), cv * cv / lm.replicas)
        ttft, tpot = L.mean(lm, st, "ttft"), L.mean(lm, st, "tpot")
        table = {row: (float(good[k]), str(binds[k]), float(ttft[k]), float(tpot[k])) for k, row in enumerate(rows)}
        for c in members:
            for j in GROUPS:
                got = table.get((_shape(c), j))
                if got is None or replicas_that_fit(c.stage_gpus, c.slots * j, pools[c.pool]) < 1:
                    continue
                g, b, tt, tp = got
                if g <= 0 or not (np.isfinite(tt) and np.isfinite(tp)):
                    continue
                r = replace(c, gpus=j * c.gpus, rate=j * g, ttft_s=tt, tpot_s=tp, e2e_s=tt + tp * tail, group=j)
                mine.append(r)
                info[r] = GroupInfo(j, c.gpus, g, binding_label(b))
        out += prune_dominated(mine, biggest.gpus_per_node) if prune else mine
    order = {p.name: i for i, p in enumerate(problem.pools)}
    out.sort(key=lambda c: order[c.pool])
    return out, {c: info[c] for c in out}


def no_candidates_reason(problem: Problem, priced: dict | None = None) -> str:
    """Why no replica has any goodput: the SLO that fails even at a trickle of requests."""
    loose = all_candidates(replace(problem, slo=Slo()), ("aggregated",), prune=False, priced=priced)
    if not loose:
        return ""
    pool = next(p for p in problem.pools if p.name == loose[0].pool)
    shapes = list(dict.fromkeys(_shape(c) for c in loose if c.pool == pool.name))
    lm = load_model(problem, pool, shapes, np.ones(len(shapes)))
    _, binds = L.goodput(lm, problem.slo.targets, problem.traffic_or_default().cv)
    counts = {binding_label(b): int(np.sum(binds == b)) for b in np.unique(binds)}
    text = ", ".join(f"{n} of {len(shapes)} replica configurations of pool {pool.name} miss {b}"
                     for b, n in counts.items())
    return f"no replica configuration meets the SLOs under this traffic even at a trickle of requests ({text})"


def allocation_rows(problem: Problem, cands: list[Candidate], counts: dict[int, int], info: dict[Candidate, GroupInfo],
                    served: float) -> tuple[list[dict], dict]:
    """The plan's rows in replicas (a group of j counted as j replicas), each with the SLO that binds at
    its goodput and the stated SLOs' values at the rate it serves: its share, goodput x the plan's load
    factor (served / what the groups could serve). Also the worst value of each SLO over the rows."""
    pools = {p.name: p for p in problem.pools}
    targets = problem.slo.targets
    cv = problem.traffic_or_default().cv
    capacity = sum(cands[i].rate * n for i, n in counts.items())
    load = min(served / capacity, 1.0) if capacity > 0 else 0.0
    rows, worst = [], {}
    for i, n in sorted(counts.items(), key=lambda kv: (cands[kv[0]].pool, -info[cands[kv[0]]].size)):
        c, g = cands[i], info[cands[i]]
        share = g.goodput * load
        lm = load_model(problem, pools[c.pool], [_shape(c)], [g.size])
        st = L.state(lm, np.array([max(share, 1e-12)]), cv * cv / g.size)
        checks = {}   # flat keys (CSV columns): ttft_p99_at_share_s, ...
        for t in targets:
            value = float(L.mean(lm, st, t.metric)[0]) if t.quantile is None else \
                float(L.percentile(lm, st, t.metric, t.quantile)[0])
            checks[f"{t.metric}_{t.stat}_at_share_s"] = value
            if value > worst.get(t.name, (-1.0, 0.0))[0]:
                worst[t.name] = (value, t.limit)
        replicas = n * g.size
        rows.append({
            "pool": c.pool, "hardware": pools[c.pool].hardware.name, "role": c.role,
            "placement": placement_label(c.tp, c.pp, c.ep, replicas, c.attn_dp),
            "tp": c.tp, "pp": c.pp, "ep": c.ep, "attn_dp": c.attn_dp, "max_batch": c.batch,
            "replicas": replicas, "groups": n, "replicas_per_group": g.size,
            "gpus_per_replica": g.replica_gpus, "gpus": n * c.gpus,
            "requests_per_s_per_replica": g.goodput, "requests_per_s": c.rate * n,
            "goodput_per_replica_rps": g.goodput, "rate_per_replica_rps": share,
            "tpot_s": c.tpot_s, "ttft_s": c.ttft_s, "bottleneck": c.bottleneck,
            "slo_binding": g.binding, **checks,
        })
    margins = {binding_label(k): {"limit_s": lim, "worst_s": v, "margin": 1 - v / lim} for k, (v, lim) in worst.items()}
    return rows, {"load_factor": load, "margins": margins}


def annotate(plan: dict, problem: Problem, cands: list[Candidate], counts: dict[int, int],
             info: dict[Candidate, GroupInfo]) -> None:
    """Rewrite an ILP plan for traffic: rows in replicas with the SLO that binds for each replica kind
    and the stated SLOs at each one's share of the rate, the SLO margins of those values, how
    burstiness was treated, and why disaggregation was not considered."""
    traffic = problem.traffic_or_default()
    served = float(plan.get("served_rate") or 0.0)
    if problem.workload.arrival_rate:   # gpus/cost plans report what they could serve; the traffic is the target
        served = min(served, problem.workload.arrival_rate)
    rows, extra = allocation_rows(problem, cands, counts, info, served)
    plan["allocation"] = rows
    if problem.slo.targets:
        plan["slo_margins"] = extra["margins"]
    plan["traffic"] = {
        "arrival": traffic.arrival, "cv": traffic.cv,
        "replica_cv": {r["placement"]: traffic.cv / np.sqrt(r["replicas_per_group"]) for r in rows},
        "splitting": "round-robin within a group of replicas (cv^2 / group size per replica); each group's share "
                     "taken as bursty as the whole stream",
        "slos": [binding_label(t.name) for t in problem.slo.targets],
        "binding": sorted({r["slo_binding"] for r in rows}),
        "load_factor": extra["load_factor"],
    }
    notes = plan.setdefault("notes", [])
    if rows:
        notes.append(f"replicas are sized at their goodput under this traffic (arrival cv {traffic.cv:.2f}); the SLO "
                     "that binds just past it: " + "; ".join(f"{r['placement']} ({r['pool']}, groups of "
                                                             f"{r['replicas_per_group']}): {r['slo_binding']}"
                                                             for r in rows))
    d = plan.get("disaggregation")
    if isinstance(d, dict):
        d["considered"] = False
        d["reason"] = DISAGGREGATION_NOTE
    else:
        notes.append(DISAGGREGATION_NOTE)
