"""Plan a cluster: the ILP optimum, the disaggregation decision with its reason, and an
epsilon-constraint sweep giving the Pareto front of served rate against TPOT.

`ilp.time_limit_s` is a deadline for the whole run, counted from the start: candidate generation,
model building and every solve share it. The main plan gets most of what the candidates left;
the comparison plans (aggregated-only, disaggregated-only) and the front's points split the rest
and are skipped, with a note, once it is spent. A solve never discards a plan it found."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ...errors import InfeasibleError, ParasearchError
from ...space.label import placement_label
from ...spec.problem import Problem, Slo
from . import decision, infeasible, traffic
from .candidates import Candidate, all_candidates, kv_bytes_per_request
from .formulation import MIN_SOLVE_S, Allocation, solve

MAIN_SHARE = 0.6  # of the time the candidates leave, for the main plan when comparisons follow


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


def ilp_search(problem: Problem) -> PlanResult:
    t0 = time.perf_counter()
    o = problem.ilp
    deadline = t0 + o.time_limit_s

    def left() -> float:
        return deadline - time.perf_counter()

    roles = ("aggregated",) if problem.limits.disaggregation is False else ("aggregated", "prefill", "decode")
    # Under load, aggregated replicas rated at their goodput (ilp/traffic.py).
    binding = None
    priced: dict = {}  # the oracle's figures per pool and role, cut again wherever only SLOs change
    if traffic.applies(problem):
        roles = ("aggregated",)
        cands, binding = traffic.load_candidates(problem, priced=priced)
        if not cands and all_candidates(replace(problem, slo=Slo()), roles, priced=priced):
            raise InfeasibleError("nothing fits: " + traffic.no_candidates_reason(problem, priced))
    else:
        cands = all_candidates(problem, roles, priced=priced)
    if not cands:
        raise InfeasibleError("nothing fits: " + infeasible.no_candidates(problem, roles, priced))
    target = problem.workload.arrival_rate
    kvb = kv_bytes_per_request(problem)
    kw = dict(objective=o.objective, target_rate=target, kv_bytes=kvb, solver=o.solver)
    comparisons = len(roles) > 1
    later = (2 if comparisons else 0) + min(o.pareto_points, len(cands))
    # The main plan always gets a share, even when the candidates took the whole limit: a run
    # that ends without a plan would waste what was spent.
    main_s = max(left() * (MAIN_SHARE if later else 1.0), MIN_SOLVE_S * 2, o.time_limit_s * 0.25)
    best = solve(problem, cands, **kw, time_limit=main_s)
    if best.status == "infeasible":
        raise InfeasibleError("nothing fits: " + infeasible.short_of_target(problem, _most(problem, cands, kvb, left)))
    if best.status == "no-solution":
        raise ParasearchError(f"the solver found no plan within the time limit of {o.time_limit_s:g} s "
                              f"(the candidates took {_candidates_seconds(t0, best):.1f} s of it)",
                              hint="raise ilp.time_limit_s or --time-limit")
    if not best.counts:
        raise InfeasibleError("nothing fits: " + infeasible.unplaceable(problem, cands, roles, priced))
    skipped: list[str] = []

    def aux(subset: list[Candidate], share: int, what: str) -> Allocation | None:
        budget = left() / max(share, 1)
        if not subset:
            return None
        if budget < MIN_SOLVE_S:
            skipped.append(what)
            return None
        a = solve(problem, subset, **{**kw, "time_limit": budget}, fewest_gpus=False)
        return a if a.counts or a.status == "infeasible" else None

    agg_only = dis_only = None
    if comparisons:
        agg_only = aux([c for c in cands if c.role == "aggregated"], later, "the aggregated-only plan")
        dis_only = aux([c for c in cands if c.role != "aggregated"], later - 1, "the disaggregated-only plan")
    tied, relaxed, unchecked = None, [], []
    if comparisons:
        # Ties go to the simpler aggregated plan; the constraint that decided is found by re-solving
        # with each relaxed in turn, within a share of the time left (decision.py).
        best, agg_only, tied = decision.prefer_aggregated(problem, cands, best, agg_only, kw, left() / later)
        until = time.perf_counter() + left() * decision.TIME_SHARE
        relaxed, unchecked = decision.relaxations(problem, cands, decision.is_disaggregated(best), kw,
                                                  lambda: until - time.perf_counter(), priced)
    front = _sweep(problem, cands, kvb, left, skipped)
    notes = list(best.notes)
    if target and best.served_rate < target * (1 - 1e-6):
        notes.append(f"the pools serve at most {best.served_rate:.4g} of the {target:g} req/s target within the SLOs "
                     f"({best.served_rate / target:.0%})" + ("" if best.status == "optimal" else
                                                              " in the plan found within the time limit"))
    if best.status != "optimal":
        gap = f" (gap {best.gap:.2%} to the best bound)" if best.gap is not None else ""
        notes.append(f"time-limited: the best plan found in {o.time_limit_s:g} s{gap}; raise ilp.time_limit_s "
                     "for a proven optimum")
    if skipped:
        notes.append("the time limit left no room for " + ", ".join(skipped))
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
        "time_limit_s": o.time_limit_s,
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
            "reason": decision.reason(problem, best, agg_only, dis_only, o.objective, tied, relaxed, unchecked)
            if len(roles) > 1
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
    if binding is not None:  # under traffic: what binds, percentiles at each replica's share
        traffic.annotate(plan, problem, cands, best.counts, binding)
    plan["seconds"] = round(time.perf_counter() - t0, 4)
    return PlanResult("ilp", plan, time.perf_counter() - t0, cands, best)


def _candidates_seconds(t0: float, best: Allocation) -> float:
    """Seconds from the start of the run to the start of the main solve (the candidates' time)."""
    return max(time.perf_counter() - t0 - best.seconds, 0.0)


def _most(problem: Problem, cands: list[Candidate], kvb: float, left) -> float | None:
    """The most the fleet serves within the SLOs (goodput with no target), if time allows."""
    budget = max(left(), MIN_SOLVE_S * 2, problem.ilp.time_limit_s * 0.25)
    a = solve(problem, cands, objective="goodput", target_rate=None, kv_bytes=kvb, solver=problem.ilp.solver,
              time_limit=budget, fewest_gpus=False)
    return a.served_rate if a.counts or a.status == "optimal" else None


def _sweep(problem: Problem, cands: list[Candidate], kvb: float, left, skipped: list[str]) -> list[dict]:
    """Epsilon-constraint: the most traffic the cluster serves when every token must come within
    a TPOT bound, for bounds from loose to tight. Each point gets an equal share of the time left."""
    o = problem.ilp
    tpots = np.unique([c.tpot_s for c in cands if c.role != "prefill"])
    if tpots.size == 0:
        return []
    k = min(o.pareto_points, tpots.size)
    bounds = np.unique(np.quantile(tpots, np.linspace(1.0, 0.0, k), method="higher"))[::-1]
    points = []
    for j, eps in enumerate(bounds):
        budget = left() / (len(bounds) - j)
        if budget < MIN_SOLVE_S:
            skipped.append(f"{len(bounds) - j} of the {len(bounds)} points of the TPOT front")
            break
        sub = [c for c in cands if c.role == "prefill" or c.tpot_s <= eps]
        a = solve(problem, sub, objective="goodput", target_rate=None, kv_bytes=kvb, solver=o.solver,
                  time_limit=budget, fewest_gpus=False)
        if a.status in ("infeasible", "no-solution") or not a.counts:
            continue
        worst = max(sub[i].tpot_s for i in a.counts if sub[i].role != "prefill") if any(
            sub[i].role != "prefill" for i in a.counts) else float(eps)
        points.append({"tpot_bound_s": float(eps), "worst_tpot_s": worst, "served_rate": a.served_rate,
                       "tokens_per_s_per_user": 1 / worst if worst else None, "gpus": a.gpus,
                       "disaggregated": a.disaggregated_rate > 1e-9, "status": a.status, "gap": a.gap})
    # keep the non-dominated points: more traffic or a tighter TPOT
    points.sort(key=lambda p: (-p["served_rate"], p["worst_tpot_s"]))
    front, best_tpot = [], float("inf")
    for p in points:
        if p["worst_tpot_s"] < best_tpot - 1e-12:
            front.append(p)
            best_tpot = p["worst_tpot_s"]
    return front
