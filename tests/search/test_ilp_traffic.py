"""The ILP under traffic: replicas rated at their goodput from the load model, burst headroom, the
SLO that binds named, and plans whose replicas meet the percentiles at their share of the rate."""

from dataclasses import replace

import numpy as np
import pytest

from parasearch.cost import load as L
from parasearch.search import choose_method, run_search
from parasearch.search.evaluate import evaluate
from parasearch.search.ilp import traffic
from parasearch.space.enumerate import enumerate_space
from parasearch.spec import problem_from_text
from tests.conftest import ROOT

TRACE = ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv"


def _synthetic(cv: float, rate: float = 40, ttft: float = 0.5, tpot: float = 0.05, objective: str = "gpus") -> str:
    """Llama-3.1-8B with 4k prompts on four 8xH100 nodes, Gamma arrivals (cv 1 is Poisson)."""
    return f"""
name: burst
model: llama-3.1-8b
engine: reference
cluster:
  pools:
    - {{name: h100, hardware: h100-sxm, nodes: 4, gpus_per_node: 8, price_per_gpu_hour: 2.5}}
workload: {{input_tokens: 4096, output_tokens: 256, arrival: gamma, cv: {cv}, rate: {rate}}}
slo: {{ttft_s: {{p99: {ttft}}}, tpot_s: {{p90: {tpot}}}}}
search: {{tp: [1, 2], pp: [1, 2], max_batch: [64, 256]}}
ilp: {{objective: {objective}, pareto_points: 2}}
"""


def _traced(rate: float, ttft: float = 2.0, tpot: float = 0.05) -> str:
    """The shipped trace problem's model, hardware and traffic, on two nodes."""
    return f"""
name: traced
model: llama-3.1-8b
engine: reference
cluster:
  pools:
    - {{name: h100, hardware: h100-sxm, nodes: 2, gpus_per_node: 8}}
workload: {{trace: {TRACE}, rate: {rate}}}
slo: {{ttft_s: {{p99: {ttft}}}, tpot_s: {{p90: {tpot}}}}}
search: {{tp: [1, 2], pp: [1], max_batch: [32, 128, 512]}}
ilp: {{pareto_points: 2}}
"""


def _plan(text: str) -> dict:
    return run_search(problem_from_text(text), "ilp").plan


def test_bursty_arrivals_need_more_gpus_than_poisson():
    gpus = {cv: _plan(_synthetic(cv, rate=20))["gpus_used"] for cv in (0.5, 1, 2, 4)}
    assert gpus[2] > gpus[1]                   # the done-when: cv = 2 needs more GPUs than Poisson
    assert gpus[0.5] <= gpus[1] and gpus[4] >= gpus[2]
    # Why: no replica group serves more under bursty arrivals than under Poisson ones.
    poisson, _ = traffic.load_candidates(problem_from_text(_synthetic(1)), prune=False)
    bursty, _ = traffic.load_candidates(problem_from_text(_synthetic(2)), prune=False)
    rate = {(c.tp, c.pp, c.batch, c.gpus): c.rate for c in bursty}
    shared = [c for c in poisson if (c.tp, c.pp, c.batch, c.gpus) in rate]
    assert shared and all(rate[(c.tp, c.pp, c.batch, c.gpus)] <= c.rate * (1 + 1e-9) for c in shared)
    assert any(rate[(c.tp, c.pp, c.batch, c.gpus)] < c.rate * 0.95 for c in shared)


def test_groups_thin_burstiness_as_round_robin_does():
    """A group of j replicas gets cv^2 / j per replica: larger groups serve more per replica."""
    cands, info = traffic.load_candidates(problem_from_text(_synthetic(2)), prune=False)
    per = {}
    for c in cands:
        per.setdefault((c.tp, c.pp, c.batch), {})[info[c].size] = info[c].goodput
    grown = [g for g in per.values() if 1 in g and 4 in g]
    assert grown and all(g[4] >= g[1] * (1 - 1e-6) for g in grown) and any(g[4] > g[1] * 1.02 for g in grown)


def test_the_binding_percentile_is_named_and_is_the_one_that_fails_past_the_goodput():
    tight_ttft = _plan(_traced(40, ttft=0.15))
    tight_tpot = _plan(_traced(40, ttft=30.0, tpot=0.012))
    for plan, expect in ((tight_ttft, "p99 TTFT"), (tight_tpot, "p90 TPOT")):
        assert plan["allocation"] and plan["traffic"]["binding"] == [expect]
        assert all(r["slo_binding"] == expect for r in plan["allocation"])
        assert expect in " ".join(plan["notes"]) and expect in plan["slo_margins"]
    # Independently of the ILP: just past a row's goodput the load model fails that very SLO.
    p = problem_from_text(_traced(40, ttft=0.15))
    for r in tight_ttft["allocation"]:
        lm = traffic.load_model(p, p.pools[0], [(r["tp"], r["pp"], r["ep"], r["attn_dp"], r["max_batch"])],
                                [r["replicas_per_group"]])
        ca2 = p.traffic.cv ** 2 / r["replicas_per_group"]
        past = L.state(lm, np.array([r["goodput_per_replica_rps"] * 1.03]), ca2)
        at = L.state(lm, np.array([r["goodput_per_replica_rps"] * 0.999]), ca2)
        assert L.failing(lm, past, p.slo.targets)[0] == "p99-ttft"
        assert L.meets(lm, at, p.slo.targets)[0]


@pytest.mark.parametrize("text", [_synthetic(2, rate=60), _traced(60)], ids=["gamma-cv2", "azure-trace"])
def test_plan_replicas_meet_the_slos_at_their_share_of_the_rate(text):
    """Cross-check with the single-pool engine's evaluation (search/goodput.py): each row's placement,
    with its group's replicas as dp, carries the group's share of the rate within every SLO."""
    problem = problem_from_text(text)
    plan = run_search(problem, "ilp").plan
    rows = plan["allocation"]
    assert rows and plan["served_rate"] >= problem.workload.arrival_rate * (1 - 1e-6)
    assert sum(r["rate_per_replica_rps"] * r["replicas"] for r in rows) >= problem.workload.arrival_rate * (1 - 1e-6)
    for r in rows:
        j = r["replicas_per_group"]
        assert r["replicas"] % j == 0 and r["rate_per_replica_rps"] <= r["goodput_per_replica_rps"] * (1 + 1e-9)
        one = replace(problem, limits=replace(problem.limits, tp=(r["tp"],), pp=(r["pp"],), ep=(r["ep"],), dp=(j,),
                                              attn_dp=(r["attn_dp"],), max_batch=(r["max_batch"],)))
        space = enumerate_space(one, problem.pools[0])
        assert len(space) == 1
        ev = evaluate(one, space).load
        group_rate = r["rate_per_replica_rps"] * j
        # Within the bisection's resolution (0.005%) and the batch grid of the step table, which spans
        # the largest slot count of the placements tabulated together (all candidates there, one here).
        assert group_rate <= ev.goodput[0] * (1 + 1e-3)
        at = ev.percentiles([0], group_rate)[0]
        for t in problem.slo.percentiles:
            assert at[f"{t.metric}_{t.stat}_s"] <= t.limit * (1 + 1e-3), (r["placement"], t.name)
        for t in problem.slo.targets:   # what the plan itself reports at the share
            assert r[f"{t.metric}_{t.stat}_at_share_s"] <= t.limit * (1 + 1e-3)


def test_auto_plans_traffic_with_a_target_rate_and_searches_without_one():
    single = ("model: llama-3.1-8b\ncluster: {hardware: h100-sxm}\n"
              "workload: {input_tokens: 512, output_tokens: 128, arrival: gamma, cv: 2%s}\n"
              "slo: {ttft_s: {p99: 1.0}}\n")
    assert choose_method(problem_from_text(single % ", rate: 20"), "auto") == "ilp"
    assert choose_method(problem_from_text(single % ""), "auto", 100) == "exhaustive"
    plan = _plan(_synthetic(2, objective="goodput"))
    assert plan["disaggregation"]["considered"] is False and "aggregated replicas only" in plan["disaggregation"]["reason"]
    assert plan["served_rate"] == pytest.approx(40, rel=1e-6)   # the target, no more: min(capacity, target)
