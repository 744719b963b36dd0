"""Aggregated or disaggregated, and why: the tie-break and the constraint that decides.

Tie-break (lexicographic). Plans are compared on the ILP's objective: goodput (served rate, then
fewest GPUs, as the solve ranks them), GPUs, or cost. Disaggregation is chosen only when its plan
is strictly better than the best plan of aggregated replicas alone; on a tie the simpler
aggregated plan is kept. The aggregated-only plan is the second solve that decides it.

Reason. The decision is re-made with one constraint relaxed at a time:

- KV-transfer bandwidth: prefill and decode replicas get unlimited links, so the KV-transfer rows
  vanish and handing a prompt's KV cache over takes no time;
- the TTFT SLO, the TPOT SLO and the end-to-end SLO (those the problem sets): candidates are
  rebuilt without the limit.

A constraint decides when relaxing it alone turns the decision around; the reason names every
such constraint with the numbers of both plans, or says that none alone does. Nothing is read from
the workload's shape: a reason is only what the re-solves showed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...spec.problem import Problem
from .candidates import Candidate, all_candidates
from .formulation import MIN_SOLVE_S, Allocation, solve

REL_TOL = 1e-6  # objective values this close (relatively) are a tie
UNLIMITED_LINK = 1e30  # bytes/s: a KV transfer that takes no time and binds nothing
TIME_SHARE = 0.4  # of the time the main plan and the comparisons leave, for the relaxed re-solves


def _usable(a: Allocation | None, objective: str) -> bool:
    if a is None or a.status in ("infeasible", "no-solution"):
        return False
    return bool(a.counts) or objective == "goodput"


def _close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=1e-9)


def compare(a: Allocation | None, b: Allocation | None, objective: str) -> int:
    """+1 when plan a is strictly better than b on the objective, 0 on a tie, -1 when worse.
    A missing or infeasible plan is worse than any plan."""
    ua, ub = _usable(a, objective), _usable(b, objective)
    if not (ua and ub):
        return int(ua) - int(ub)
    if objective == "goodput":
        if not _close(a.served_rate, b.served_rate):
            return 1 if a.served_rate > b.served_rate else -1
        return 0 if a.gpus == b.gpus else (1 if a.gpus < b.gpus else -1)
    va, vb = (a.gpus, b.gpus) if objective == "gpus" else (a.cost_per_hour, b.cost_per_hour)
    if va is None or vb is None or _close(float(va), float(vb)):
        return 0
    return 1 if va < vb else -1


def is_disaggregated(a: Allocation | None) -> bool:
    return a is not None and a.disaggregated_rate > 1e-9


def _aggregated_subset(cands: list[Candidate]) -> tuple[list[Candidate], list[int]]:
    idx = [i for i, c in enumerate(cands) if c.role == "aggregated"]
    return [cands[i] for i in idx], idx


def _remap(a: Allocation, idx: list[int]) -> Allocation:
    """An allocation over a subset, with counts indexed into the full candidate list."""
    return replace(a, counts={idx[i]: n for i, n in a.counts.items()})


def prefer_aggregated(problem: Problem, cands: list[Candidate], best: Allocation, agg_only: Allocation | None,
                      kw: dict, budget: float) -> tuple[Allocation, Allocation | None, Allocation | None]:
    """(plan, aggregated-only plan, the disaggregated plan it tied with or None): the aggregated-only
    plan replaces a disaggregated optimum it matches on the objective. Under goodput a rate tie is
    settled on GPUs, so the aggregated-only plan is re-solved with its fewest-GPU stage first.
    `agg_only` indexes the aggregated subset."""
    if not is_disaggregated(best) or not _usable(agg_only, kw["objective"]):
        return best, agg_only, None
    sub, idx = _aggregated_subset(cands)
    cand = agg_only
    if kw["objective"] == "goodput" and _close(agg_only.served_rate, best.served_rate) and budget >= MIN_SOLVE_S:
        cand = solve(problem, sub, **{**kw, "time_limit": budget}, fewest_gpus=True)
        if not _usable(cand, "goodput") or compare(cand, agg_only, "goodput") < 0:
            cand = agg_only
    if compare(best, cand, kw["objective"]) > 0:
        return best, agg_only, None
    return _remap(cand, idx), cand, best


@dataclass
class Relaxed:
    name: str            # "KV-transfer bandwidth", "the TTFT SLO", ...
    limit: str           # the value relaxed, as text
    decides: bool        # relaxing it alone turns the decision around
    plan: Allocation     # the relaxed problem's plan (after the tie-break)
    other: Allocation | None  # the best plan of the other kind in the relaxed problem


def _relaxations(problem: Problem, kv_bytes: float) -> list[tuple[str, str, Problem, tuple[str, ...], float]]:
    """(name, the limit as text, relaxed problem, roles whose candidates change, KV bytes)."""
    slo, out = problem.slo, []
    if kv_bytes > 0:
        per_gpu = problem.ilp.kv_transfer_bytes_per_s
        text = (f"{kv_bytes / 1e6:,.1f} MB per request over "
                + (f"{per_gpu / 1e9:g} GB/s per GPU" if per_gpu else "the GPUs' scale-out links"))
        out.append(("KV-transfer bandwidth", text,
                    replace(problem, ilp=replace(problem.ilp, kv_transfer_bytes_per_s=UNLIMITED_LINK)),
                    ("prefill", "decode"), 0.0))
    for field, name, roles in (("ttft_s", "the TTFT SLO", ("aggregated", "prefill")),
                               ("tpot_s", "the TPOT SLO", ("aggregated", "decode")),
                               ("e2e_s", "the end-to-end SLO", ("aggregated",))):
        value = getattr(slo, field)
        if value:
            out.append((name, f"{value:g} s", replace(problem, slo=replace(slo, **{field: None})), roles, kv_bytes))
    return out


def relaxations(problem: Problem, cands: list[Candidate], chosen_dis: bool, kw: dict,
                left, priced: dict | None = None) -> tuple[list[Relaxed], list[str]]:
    """Re-make the decision with each constraint relaxed in turn (see the module docstring), within
    `left()` seconds: (the constraints checked, those the time left no room for). A check whose
    solves were not proven optimal counts as not checked. `priced`: the oracle's figures the
    candidates were cut from (`all_candidates`), cut again under each relaxation."""
    objective = kw["objective"]
    todo = _relaxations(problem, kw["kv_bytes"])
    results: list[Relaxed] = []
    for k, (name, limit, relaxed, roles, kv_bytes) in enumerate(todo):
        budget = left() / (2 * (len(todo) - k))
        if budget < MIN_SOLVE_S:
            return results, [t[0] for t in todo[k:]]
        fresh = all_candidates(relaxed, roles, priced=priced)
        rc = [c for c in cands if c.role not in roles] + [c for c in fresh if c.role in roles]
        rkw = {**kw, "kv_bytes": kv_bytes}
        full = solve(relaxed, rc, **rkw, time_limit=budget, fewest_gpus=True)
        agg = None
        if is_disaggregated(full):
            sub, idx = _aggregated_subset(rc)
            agg = solve(relaxed, sub, **rkw, time_limit=max(left() / (2 * (len(todo) - k) - 1), MIN_SOLVE_S),
                        fewest_gpus=True) if sub else None
        if any(a is not None and a.status != "optimal" for a in (full, agg)):
            return results, [t[0] for t in todo[k:]]
        if agg is None:
            plan, other, dis = full, None, False
        else:
            dis = compare(full, agg, objective) > 0
            plan, other = (full, agg) if dis else (_remap(agg, idx), full)
        results.append(Relaxed(name, limit, dis != chosen_dis, plan, other))
    return results, []


def fmt(a: Allocation | None, problem: Problem, objective: str) -> str:
    if a is None:
        return "no plan (not solved within the time limit)"
    if a.status == "infeasible" or (objective != "goodput" and not a.counts and a.status != "no-solution"):
        return "no feasible plan"
    if a.status == "no-solution":
        return "no plan found within the time limit"
    if objective == "cost" and problem.workload.arrival_rate and a.cost_per_hour is not None:
        return f"${a.cost_per_hour:,.2f}/h ({a.gpus} GPUs)"
    if objective == "gpus" and problem.workload.arrival_rate:
        return f"{a.gpus} GPUs"
    return f"{a.served_rate:.4g} req/s on {a.gpus} GPUs"


def reason(problem: Problem, best: Allocation, agg: Allocation | None, dis: Allocation | None, objective: str,
           tied: Allocation | None, relaxed: list[Relaxed], unchecked: list[str]) -> str:
    """The decision, the plans it compared, and the constraints whose relaxation alone reverses it."""
    f = lambda a: fmt(a, problem, objective)  # noqa: E731
    if is_disaggregated(best):
        head = f"disaggregation wins: {f(best)} against {f(agg)} with aggregated replicas only"
        flip = "aggregated replicas alone would do at least as well"
    else:
        head = f"aggregated replicas win: {f(best)} against {f(dis)} with prefill and decode split"
        if tied is not None:
            head += (f", and a plan with a split ties ({f(tied)}): a tie on the objective goes to the simpler "
                     "aggregated plan")
        flip = "disaggregation would win"
    late = (f" ({_join(unchecked, 'and')} not checked: the time limit left no room for "
            f"{'its' if len(unchecked) == 1 else 'their'} re-solves)") if unchecked else ""
    if not relaxed:
        if unchecked:
            return head + "; which constraint decides was not checked: the time limit left no room for the re-solves"
        return head + "; the problem sets no SLO and no KV transfer to relax"
    deciding = [r for r in relaxed if r.decides]
    if not deciding:
        names = _join([r.name for r in relaxed])
        still = ("disaggregation still wins" if is_disaggregated(best)
                 else "aggregated replicas still do at least as well")
        return head + f"; no single constraint decides it: with {names} relaxed in turn, {still}" + late
    parts = [f"{r.name} ({r.limit}): without it {flip} ({f(r.plan)}"
             + (f" against {f(r.other)})" if r.other is not None else "; no plan with a split does better)")
             for r in deciding]
    return head + "; decided by " + "; and by ".join(parts) + late


def _join(names: list[str], word: str = "or") -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]
