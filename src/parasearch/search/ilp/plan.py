"""Plan a cluster: the ILP optimum, the disaggregation decision with its reason, and an
epsilon-constraint sweep giving the Pareto front of served rate against TPOT."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import InfeasibleError
from ...space.label import placement_label
from ...spec.problem import Problem
from .candidates import Candidate, all_candidates, kv_bytes_per_request
from .formulation import Allocation, solve


@dataclass
class PlanResult:
    method: str
    plan: dict
    seconds: float
    candidates: list[Candidate] = field(default_factory=list)
    allocation: Allocation | None = None


def _alloc_rows(cands: list[Candidate], alloc: Allocation, problem: Problem) -> list[dict]:
    rows = []
    pools = {p.name: p for p in problem.pools}
    for i, n in sorted(alloc.counts.items(), key=lambda kv: (cands[kv[0]].pool, cands[kv[0]].role)):
        c = cands[i]
        rows.append({
            "pool": c.pool, "hardware": pools[c.pool].hardware.name, "role": c.role,
            "placement": placement_label(c.tp, c.pp, c.ep, n, c.attn_dp),  # DP = its replicas, as everywhere
            "tp": c.tp, "pp": c.pp, "ep": c.ep, "attn_dp": c.attn_dp,
            ("prompts_per_pass" if c.role == "prefill" else "max_batch"): c.batch,
            "replicas": n, "gpus_per_replica": c.gpus, "gpus": n * c.gpus,
            "requests_per_s_per_replica": c.rate, "requests_per_s": c.rate * n,
            "tpot_s": c.tpot_s if c.role != "prefill" else None,
            "ttft_s": c.ttft_s if c.role != "decode" else None,
            "bottleneck": c.bottleneck,
        })
    return rows


def _margins(problem: Problem, cands: list[Candidate], alloc: Allocation) -> dict:
    """How far inside each SLO the plan's worst used replica is (fraction of the limit)."""
    slo = problem.slo
    used = [cands[i] for i in alloc.counts]
    out = {}
    for name, limit, vals in (("ttft", slo.ttft_s, [c.ttft_s for c in used if c.role != "decode"]),
                              ("tpot", slo.tpot_s, [c.tpot_s for c in used if c.role != "prefill"])):
        if limit and vals:
            out[name] = {"limit_s": limit, "worst_s": max(vals), "margin": 1 - max(vals) / limit}
    return out


def _reason(problem: Problem, best: Allocation, agg: Allocation | None, dis: Allocation | None, objective: str) -> str:
    wl = problem.workload
    share = wl.input_tokens / (wl.input_tokens + wl.output_tokens)

    def fmt(a: Allocation | None) -> str:
        if a is None or a.status == "infeasible":
            return "no feasible plan"
        if objective == "gpus" and wl.arrival_rate:
            return f"{a.gpus} GPUs"
        if objective == "cost" and wl.arrival_rate and a.cost_per_hour is not None:
            return f"${a.cost_per_hour:,.2f}/h ({a.gpus} GPUs)"
        return f"{a.served_rate:.3g} req/s"

    chosen = best.disaggregated_rate > 1e-9
    if chosen:
        gain = ""
        if agg and agg.status != "infeasible" and agg.served_rate > 0 and objective == "goodput":
            gain = f" ({best.served_rate / agg.served_rate - 1:+.0%})"
        return (f"disaggregation wins: {fmt(best)}{gain} against {fmt(agg)} with aggregated replicas only; prompts are "
                f"{share:.0%} of the tokens, and mixing their prefill into decode steps would slow every token "
                f"(TPOT), so separate prefill replicas let decode replicas run larger batches within the SLO")
    loss = ""
    if dis and dis.status != "infeasible" and best.served_rate > 0 and objective == "goodput":
        loss = f" ({dis.served_rate / best.served_rate - 1:+.0%})"
    return (f"aggregated replicas win: {fmt(best)} against {fmt(dis)}{loss} disaggregated; prompts are only "
            f"{share:.0%} of the tokens, so a split would leave prefill GPUs idle and pay "
            f"{kv_bytes_per_request(problem) / 1e6:.1f} MB of KV transfer per request")


def ilp_search(problem: Problem) -> PlanResult:
    t0 = time.perf_counter()
    o = problem.ilp
    roles = ("aggregated",) if problem.limits.disaggregation is False else ("aggregated", "prefill", "decode")
    cands = all_candidates(problem, roles)
    if not cands:
        raise InfeasibleError("nothing fits: no replica configuration of any pool meets the memory limits and SLOs "
                              "(try `parasearch search` on one pool for the binding constraint)")
    target = problem.workload.arrival_rate
    kvb = kv_bytes_per_request(problem)
    kw = dict(objective=o.objective, target_rate=target, kv_bytes=kvb, solver=o.solver, time_limit=o.time_limit_s)
    best = solve(problem, cands, **kw)
    if best.status == "infeasible" or not best.counts:
        raise InfeasibleError(f"nothing fits: no allocation of the pools serves {target:g} req/s within the SLOs"
                              if target else "nothing fits: no allocation serves any traffic within the SLOs")
    agg_only = dis_only = None
    if len(roles) > 1:
        agg_c = [c for c in cands if c.role == "aggregated"]
        dis_c = [c for c in cands if c.role != "aggregated"]
        agg_only = solve(problem, agg_c, **kw, fewest_gpus=False) if agg_c else None
        dis_only = solve(problem, dis_c, **kw, fewest_gpus=False) if dis_c else None
    front = _sweep(problem, cands, kvb)
    notes = []
    if target and best.served_rate < target * (1 - 1e-6):
        notes.append(f"the pools serve at most {best.served_rate:.4g} of the {target:g} req/s target within the SLOs "
                     f"({best.served_rate / target:.0%})")
    if problem.limits.dp:
        notes.append("search.dp is ignored by the ILP: replica counts are what it decides")
    if problem.slo.e2e_s and len(roles) > 1:
        notes.append("the end-to-end SLO holds for every prefill/decode pairing the plan uses")
    plan = {
        "method": "ilp",
        "solver": o.solver,
        "objective": o.objective,
        "status": best.status,
        "gap": best.gap,
        "solve_seconds": round(best.seconds, 4),
        "target_rate": target,
        "served_rate": best.served_rate,
        "served_output_tokens_per_s": best.served_rate * problem.workload.output_tokens,
        "aggregated_rate": best.aggregated_rate,
        "disaggregated_rate": best.disaggregated_rate,
        "gpus_used": best.gpus,
        "gpus_available": problem.total_gpus,
        "cost_per_hour": best.cost_per_hour,
        "slo_margins": _margins(problem, cands, best),
        "allocation": _alloc_rows(cands, best, problem),
        "disaggregation": {
            "chosen": best.disaggregated_rate > 1e-9,
            "considered": len(roles) > 1,
            "reason": _reason(problem, best, agg_only, dis_only, o.objective) if len(roles) > 1
            else "disaggregation disabled by search.disaggregation: false",
            "aggregated_only_rate": agg_only.served_rate if agg_only else None,
            "disaggregated_only_rate": dis_only.served_rate if dis_only else None,
            "kv_bytes_per_request": kvb,
        },
        "pareto": front,
        "candidates": len(cands),
        "notes": notes,
        "pools": [{"name": p.name, "hardware": p.hardware.name, "nodes": p.nodes, "gpus_per_node": p.gpus_per_node,
                   "price_per_gpu_hour": p.price_per_gpu_hour} for p in problem.pools],
    }
    plan["seconds"] = round(time.perf_counter() - t0, 4)
    return PlanResult("ilp", plan, time.perf_counter() - t0, cands, best)


def _sweep(problem: Problem, cands: list[Candidate], kvb: float) -> list[dict]:
    """Epsilon-constraint: the most traffic the cluster serves when every token must come within
    a TPOT bound, for bounds from loose to tight."""
    o = problem.ilp
    tpots = np.unique([c.tpot_s for c in cands if c.role != "prefill"])
    if tpots.size == 0:
        return []
    k = min(o.pareto_points, tpots.size)
    bounds = np.unique(np.quantile(tpots, np.linspace(1.0, 0.0, k), method="higher"))[::-1]
    points = []
    for eps in bounds:
        sub = [c for c in cands if c.role == "prefill" or c.tpot_s <= eps]
        a = solve(problem, sub, objective="goodput", target_rate=None, kv_bytes=kvb, solver=o.solver,
                  time_limit=o.time_limit_s, fewest_gpus=False)
        if a.status == "infeasible" or not a.counts:
            continue
        worst = max(sub[i].tpot_s for i in a.counts if sub[i].role != "prefill") if any(
            sub[i].role != "prefill" for i in a.counts) else float(eps)
        points.append({"tpot_bound_s": float(eps), "worst_tpot_s": worst, "served_rate": a.served_rate,
                       "tokens_per_s_per_user": 1 / worst if worst else None, "gpus": a.gpus,
                       "disaggregated": a.disaggregated_rate > 1e-9, "status": a.status})
    # keep the non-dominated points: more traffic or a tighter TPOT
    points.sort(key=lambda p: (-p["served_rate"], p["worst_tpot_s"]))
    front, best_tpot = [], float("inf")
    for p in points:
        if p["worst_tpot_s"] < best_tpot - 1e-12:
            front.append(p)
            best_tpot = p["worst_tpot_s"]
    return front
