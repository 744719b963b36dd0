"""The ILP's disaggregation decision: ties go to the simpler aggregated plan, and the reason names
the constraint whose relaxation alone reverses the decision (re-solved, not templated)."""

import pytest

from parasearch.search import run_search
from parasearch.search.ilp import decision, plan
from parasearch.search.ilp.candidates import Candidate, kv_bytes_per_request
from parasearch.search.ilp.formulation import allocation
from parasearch.spec import problem_from_text


def _one_pool(inp, out, ttft, tpot, kv_bw=None):
    bw = f", kv_transfer_bytes_per_s: {kv_bw:g}" if kv_bw else ""
    return problem_from_text(f"""
model: llama-3.1-8b
cluster:
  pools:
    - {{name: a, hardware: h100-sxm, nodes: 1, gpus_per_node: 8, price_per_gpu_hour: 2}}
workload: {{input_tokens: {inp}, output_tokens: {out}}}
slo: {{ttft_s: {ttft}, tpot_s: {tpot}}}
search: {{tp: [1, 2], pp: [1], max_batch: [16, 64, 256]}}
ilp: {{objective: goodput, pareto_points: 2{bw}}}
""")


def _decided_part(reason: str) -> str:
    assert "; decided by " in reason, reason
    return reason.split("; decided by ", 1)[1]


# A pool of 4 GPUs at $2.50/h and a 3 req/s target. One aggregated GPU serves 1 req/s; a prefill
# GPU and a decode GPU together serve 2 req/s. Three aggregated replicas and one aggregated replica
# next to a prefill/decode pair both cost $7.50/h on 3 GPUs: a tie.
TIE = """
model: llama-3.1-8b
cluster:
  pools: [{name: a, hardware: h100-sxm, nodes: 1, gpus_per_node: 4, price_per_gpu_hour: 2.5}]
workload: {input_tokens: 1024, output_tokens: 256, arrival_rate: 3}
slo: {ttft_s: 2.0, tpot_s: 0.05}
ilp: {objective: cost, pareto_points: 1}
"""


def _tie_candidates(problem=None, roles=("aggregated", "prefill", "decode"), prune=True, priced=None):
    def c(role, rate):
        return Candidate("a", role, 1, 1, 1, False, 8, 1, rate, 0.0 if role == "prefill" else 0.02,
                         0.0 if role == "decode" else 0.5, 5.0, 0.0 if role == "aggregated" else 1e15, "memory")
    return [x for x in (c("aggregated", 1.0), c("prefill", 2.0), c("decode", 2.0)) if x.role in roles]


def test_a_tie_on_the_objective_goes_to_the_aggregated_plan():
    p = problem_from_text(TIE)
    cands = _tie_candidates()
    kw = dict(objective="cost", target_rate=3.0, kv_bytes=kv_bytes_per_request(p), solver="cbc")
    mixed = allocation(p, cands, {0: 1, 1: 1, 2: 1}, "cost", 3.0, kw["kv_bytes"], "optimal", 0.0, 0.0)
    agg = allocation(p, cands[:1], {0: 3}, "cost", 3.0, kw["kv_bytes"], "optimal", 0.0, 0.0)
    assert mixed.disaggregated_rate == pytest.approx(2.0) and mixed.cost_per_hour == agg.cost_per_hour == 7.5
    chosen, _, tied = decision.prefer_aggregated(p, cands, mixed, agg, kw, 1.0)
    assert tied is mixed and not decision.is_disaggregated(chosen) and chosen.counts == {0: 3}
    # a strictly cheaper split is kept
    dearer = allocation(p, cands[:1], {0: 4}, "cost", 3.0, kw["kv_bytes"], "optimal", 0.0, 0.0)
    dearer = type(dearer)(**{**dearer.__dict__, "cost_per_hour": 10.0})
    chosen, _, tied = decision.prefer_aggregated(p, cands, mixed, dearer, kw, 1.0)
    assert tied is None and chosen is mixed


def test_goodput_ties_are_settled_on_gpus_then_go_to_aggregated():
    p = problem_from_text(TIE)
    cands = _tie_candidates()
    a = allocation(p, cands, {0: 2}, "goodput", None, 1.0, "optimal", 0.0, 0.0)
    b = allocation(p, cands, {1: 1, 2: 1}, "goodput", None, 1.0, "optimal", 0.0, 0.0)
    c = allocation(p, cands, {0: 3}, "goodput", None, 1.0, "optimal", 0.0, 0.0)
    assert a.served_rate == b.served_rate == 2.0
    assert decision.compare(a, b, "goodput") == 0  # same rate, same GPUs
    assert decision.compare(a, c, "goodput") == -1 and decision.compare(c, a, "goodput") == 1


@pytest.mark.parametrize("lands_on_the_split", [False, True])
def test_no_tie_is_reported_as_a_win(monkeypatch, lands_on_the_split):
    """Both optima cost $7.50/h on 3 GPUs; whichever the solver lands on, the plan is aggregated.
    `lands_on_the_split` makes the main solve return the mixed optimum, as a solver may."""
    monkeypatch.setattr(plan, "all_candidates", _tie_candidates)
    monkeypatch.setattr(decision, "all_candidates", _tie_candidates)
    if lands_on_the_split:
        real = plan.solve

        def solve(problem, cands, **kw):
            a = real(problem, cands, **kw)
            if len(cands) == 3 and kw.get("fewest_gpus", True):  # the main solve
                a = allocation(problem, cands, {0: 1, 1: 1, 2: 1}, "cost", 3.0, kw["kv_bytes"], "optimal", 0.0, 0.0)
            return a
        monkeypatch.setattr(plan, "solve", solve)
    res = run_search(problem_from_text(TIE), "ilp")
    d = res.plan["disaggregation"]
    assert res.plan["cost_per_hour"] == pytest.approx(7.5) and res.plan["gpus_used"] == 3
    assert not d["chosen"] and res.plan["disaggregated_rate"] == 0
    assert {r["role"] for r in res.plan["allocation"]} == {"aggregated"}
    assert d["reason"].startswith("aggregated replicas win: $7.50/h (3 GPUs)"), d["reason"]
    assert "disaggregation wins" not in d["reason"]
    tie = "a plan with a split ties ($7.50/h (3 GPUs)): a tie on the objective goes to the simpler aggregated plan"
    assert (tie in d["reason"]) == lands_on_the_split


def test_kv_transfer_bound_case_names_kv_transfer():
    free = run_search(_one_pool(1024, 256, 5.0, 0.03), "ilp").plan["disaggregation"]
    assert free["chosen"]  # with the scale-out links the split wins here
    slow = run_search(_one_pool(1024, 256, 5.0, 0.03, kv_bw=1e9), "ilp").plan["disaggregation"]
    assert not slow["chosen"] and slow["reason"].startswith("aggregated replicas win")
    why = _decided_part(slow["reason"])
    assert why.startswith("KV-transfer bandwidth") and "1 GB/s per GPU" in why
    assert "TTFT" not in why and "TPOT" not in why and "% of the tokens" not in slow["reason"]


def test_ttft_bound_case_names_ttft():
    tight = run_search(_one_pool(8192, 256, 0.35, 0.2), "ilp").plan
    d = tight["disaggregation"]
    assert d["chosen"] and d["aggregated_only_rate"] < tight["served_rate"]
    why = _decided_part(d["reason"])
    assert why.startswith("the TTFT SLO (0.35 s)") and "TPOT" not in why and "KV" not in why
    # the re-solve it reports agrees with solving the problem without a TTFT limit
    loose = run_search(_one_pool(8192, 256, 1e3, 0.2), "ilp").plan["disaggregation"]
    assert not loose["chosen"]


def test_relaxed_decisions_recut_the_prices_instead_of_pricing_again(monkeypatch):
    """The oracle prices each pool class and role once per plan; re-deciding with an SLO or the
    KV link relaxed cuts those figures again (decision.relaxations), and gives the same reason
    as pricing afresh."""
    from parasearch.search.ilp import candidates as C
    calls = []
    real = C._price
    monkeypatch.setattr(C, "_price", lambda *a: calls.append(a[2]) or real(*a))
    p = _one_pool(8192, 256, 0.35, 0.2)
    d = run_search(p, "ilp").plan["disaggregation"]
    assert sorted(calls) == ["aggregated", "decode", "prefill"]
    assert _decided_part(d["reason"]).startswith("the TTFT SLO (0.35 s)")
    fresh, _ = decision.relaxations(p, C.all_candidates(p), d["chosen"], dict(
        objective="goodput", target_rate=None, kv_bytes=kv_bytes_per_request(p), solver="highs"), lambda: 30.0)
    assert [r.name for r in fresh if r.decides] == ["the TTFT SLO"]


def test_explaining_that_nothing_meets_the_slos_does_not_price_again(monkeypatch):
    """With no candidate within the SLOs, the reason is found on the same figures, SLOs dropped."""
    from parasearch.errors import InfeasibleError
    from parasearch.search.ilp import candidates as C
    calls = []
    real = C._price
    monkeypatch.setattr(C, "_price", lambda *a: calls.append(a[2]) or real(*a))
    with pytest.raises(InfeasibleError, match="TPOT SLO of 0.0001 s is out of reach"):
        run_search(_one_pool(1024, 256, 5.0, 1e-4), "ilp")
    assert sorted(calls) == ["aggregated", "decode", "prefill"]
