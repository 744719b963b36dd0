"""The cluster planner: exact against brute force, disaggregation only where it wins, clean stdout."""

import json
import re
import subprocess
import sys
from itertools import product

import pytest

from parasearch.search import choose_method, run_search
from parasearch.search.ilp.candidates import all_candidates, kv_bytes_per_request
from parasearch.search.ilp.formulation import solve
from parasearch.spec import load_problem, problem_from_text
from tests.conftest import ROOT


def _tiny(objective: str, rate: str, inp: int = 4096, out: int = 256) -> str:
    return f"""
model: llama-3.1-8b
cluster:
  pools:
    - {{name: a, hardware: h100-sxm, nodes: 1, gpus_per_node: 4, price_per_gpu_hour: 2}}
    - {{name: b, hardware: a100-sxm-80gb, nodes: 2, gpus_per_node: 2, price_per_gpu_hour: 1}}
workload: {{input_tokens: {inp}, output_tokens: {out}{rate}}}
slo: {{ttft_s: 2.0, tpot_s: 0.03}}
search: {{tp: [1, 2], pp: [1], max_batch: [16, 64, 256]}}
ilp: {{objective: {objective}}}
"""


def _allocations(cands, budget):
    """Every vector of replica counts whose GPUs fit each pool's budget (depth-first)."""
    x = [0] * len(cands)

    def rec(i):
        if i == len(cands):
            yield tuple(x)
            return
        c = cands[i]
        n = 0
        while True:
            yield from rec(i + 1)
            if budget[c.pool] < c.gpus:
                break
            budget[c.pool] -= c.gpus
            x[i] += 1
            n += 1
        budget[c.pool] += n * c.gpus
        x[i] = 0

    yield from rec(0)


def _brute(problem, cands, objective, target, allowed=None):
    """Every allocation of the candidates, checked against the same rules as the ILP (and
    `allowed`, a rule of the caller's)."""
    pools = {p.name: p for p in problem.pools}
    kvb = kv_bytes_per_request(problem)
    best = None
    for x in _allocations(cands, {n: p.gpus for n, p in pools.items()}):
        ok = True
        for name, p in pools.items():
            big = sum(n * c.gpus // p.gpus_per_node for n, c in zip(x, cands) if c.pool == name and c.gpus >= p.gpus_per_node)
            small = sum(n * c.gpus for n, c in zip(x, cands) if c.pool == name and c.gpus < p.gpus_per_node)
            if big + -(-small // p.gpus_per_node) > p.nodes:
                ok = False
        if not ok or (allowed and not allowed(x)):
            continue
        agg = sum(n * c.rate for n, c in zip(x, cands) if c.role == "aggregated")
        pre = sum(n * c.rate for n, c in zip(x, cands) if c.role == "prefill")
        dec = sum(n * c.rate for n, c in zip(x, cands) if c.role == "decode")
        lp = sum(n * c.kv_link_bytes_per_s for n, c in zip(x, cands) if c.role == "prefill")
        ld = sum(n * c.kv_link_bytes_per_s for n, c in zip(x, cands) if c.role == "decode")
        served = agg + min(pre, dec, lp / kvb, ld / kvb)
        gpus = sum(n * c.gpus for n, c in zip(x, cands))
        cost = sum(n * c.gpus * pools[c.pool].price_per_gpu_hour for n, c in zip(x, cands))
        if objective == "goodput":
            val = min(served, target) if target else served
            better = best is None or val > best + 1e-9
        else:
            if served < target - 1e-9:
                continue
            val = gpus if objective == "gpus" else cost
            better = best is None or val < best - 1e-9
        if better:
            best = val
    return best


@pytest.mark.parametrize("objective,rate", [("goodput", ""), ("goodput", ", arrival_rate: 3"),
                                            ("gpus", ", arrival_rate: 4"), ("cost", ", arrival_rate: 4")])
def test_ilp_optimum_equals_brute_force(objective, rate):
    p = problem_from_text(_tiny(objective, rate))
    cands = all_candidates(p)
    # Keep the brute force small: the three best candidates of each pool and role.
    keep = []
    for key in {(c.pool, c.role) for c in cands}:
        group = sorted((c for c in cands if (c.pool, c.role) == key), key=lambda c: -c.rate / c.gpus)
        keep.extend(group[:3])
    target = p.workload.arrival_rate
    a = solve(p, keep, objective=objective, target_rate=target, kv_bytes=kv_bytes_per_request(p))
    got = {"goodput": a.served_rate, "gpus": a.gpus, "cost": a.cost_per_hour}[objective]
    assert a.status == "optimal"
    assert got == pytest.approx(_brute(p, keep, objective, target), rel=1e-6)


def test_dominance_pruning_keeps_the_optimum():
    p = problem_from_text(_tiny("goodput", ""))
    full = all_candidates(p, prune=False)
    pruned = all_candidates(p)
    assert len(pruned) < len(full)
    kvb = kv_bytes_per_request(p)
    a = solve(p, full, objective="goodput", target_rate=None, kv_bytes=kvb)
    b = solve(p, pruned, objective="goodput", target_rate=None, kv_bytes=kvb)
    assert a.served_rate == pytest.approx(b.served_rate, rel=1e-9)


def test_disaggregation_chosen_for_long_prompts_under_a_tight_tpot():
    res = run_search(problem_from_text(_tiny("goodput", "", inp=8192, out=256)), "ilp")
    d = res.plan["disaggregation"]
    assert d["chosen"] and res.plan["disaggregated_rate"] > 0
    assert d["aggregated_only_rate"] < res.plan["served_rate"]
    assert d["reason"].startswith("disaggregation wins")
    assert {r["role"] for r in res.plan["allocation"]} >= {"prefill", "decode"}


def test_aggregated_chosen_for_short_prompts_and_long_outputs():
    res = run_search(problem_from_text(_tiny("goodput", "", inp=128, out=2048)), "ilp")
    d = res.plan["disaggregation"]
    assert not d["chosen"] and res.plan["disaggregated_rate"] == 0
    assert d["disaggregated_only_rate"] < res.plan["served_rate"]
    assert d["reason"].startswith("aggregated replicas win")
    assert {r["role"] for r in res.plan["allocation"]} == {"aggregated"}


def test_pareto_sweep_trades_rate_for_tpot():
    res = run_search(problem_from_text(_tiny("goodput", "")), "ilp")
    front = res.plan["pareto"]
    assert len(front) >= 2
    rates = [p["served_rate"] for p in front]
    tpots = [p["worst_tpot_s"] for p in front]
    assert rates == sorted(rates, reverse=True) and tpots == sorted(tpots, reverse=True)


def test_auto_uses_the_ilp_for_pools_and_rates():
    assert choose_method(problem_from_text(_tiny("goodput", "")), "auto") == "ilp"
    single = problem_from_text("model: llama-3.1-8b\ncluster: {hardware: h100-sxm}\n"
                               "workload: {input_tokens: 10, output_tokens: 10, arrival_rate: 5}\n")
    assert choose_method(single, "auto") == "ilp"


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_no_solver_output_reaches_stdout(solver, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(_tiny("cost", ", arrival_rate: 4"))
    r = subprocess.run([sys.executable, "-m", "parasearch", "search", str(f), "--solver", solver, "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)  # stdout is exactly one JSON document
    assert plan["solver"] == solver and plan["status"] == "optimal" and plan["served_rate"] >= 4 - 1e-9


def test_shipped_fleet_problem_is_solved_to_optimality():
    p = load_problem(ROOT / "problems" / "deepseek-r1-1k-gpus-3-pools.yaml")
    assert p.total_gpus >= 1000 and len(p.pools) == 3
    res = run_search(p)
    assert res.method == "ilp" and res.plan["status"] == "optimal"
    assert res.plan["served_rate"] >= 400 - 1e-6 and res.plan["disaggregation"]["chosen"]
    assert res.plan["gpus_used"] <= p.total_gpus


def test_infeasible_target_exits_4(tmp_path):
    from tests.conftest import run_cli
    f = tmp_path / "p.yaml"
    f.write_text(_tiny("cost", ", arrival_rate: 100000"))
    rc, out, err = run_cli("search", str(f))
    assert rc == 4 and "100000 req/s" in err and out == ""


def test_plan_rates_are_consistent_with_its_replicas():
    res = run_search(load_problem(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml"), "ilp")
    plan = res.plan
    cap = {role: sum(r["requests_per_s"] for r in plan["allocation"] if r["role"] == role)
           for role in ("aggregated", "prefill", "decode")}
    assert plan["disaggregated_rate"] <= min(cap["prefill"], cap["decode"]) + 1e-9
    assert plan["served_rate"] == pytest.approx(cap["aggregated"] + plan["disaggregated_rate"])
    assert plan["gpus_used"] == sum(r["gpus"] for r in plan["allocation"]) <= 8


def test_end_to_end_slo_holds_for_every_pairing():
    text = _tiny("goodput", "", inp=8192, out=256).replace("slo: {ttft_s: 2.0, tpot_s: 0.03}",
                                                          "slo: {ttft_s: 2.0, tpot_s: 0.03, e2e_s: 4.0}")
    plan = run_search(problem_from_text(text), "ilp").plan
    pre = [r["ttft_s"] for r in plan["allocation"] if r["role"] == "prefill"]
    dec = [r["tpot_s"] for r in plan["allocation"] if r["role"] == "decode"]
    if pre and dec:
        assert max(pre) + 255 * max(dec) <= 4.0 + 1e-9


def test_gpu_limits_bound_the_whole_plan():
    text = _tiny("goodput", "").replace("search: {tp: [1, 2], pp: [1], max_batch: [16, 64, 256]}",
                                        "search: {tp: [1, 2], pp: [1], max_batch: [16, 64, 256], max_gpus: 3}")
    plan = run_search(problem_from_text(text), "ilp").plan
    assert plan["gpus_used"] <= 3


def test_auto_switches_to_optuna_for_large_spaces(monkeypatch):
    import parasearch.search as S
    monkeypatch.setattr(S, "EXHAUSTIVE_LIMIT", 10)
    p = load_problem(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
    from dataclasses import replace
    p = replace(p, optuna=replace(p.optuna, trials=30))
    assert run_search(p, "auto", progress=False).method == "optuna"


@pytest.mark.parametrize("engine, held", [("vllm", "1,000 + 500 tokens"), ("trtllm", "1,000 + 1,000 tokens")])
def test_nothing_fits_names_the_kv_the_engine_holds_per_sequence(engine, held):
    """When no pool holds the weights and one sequence, the ILP's message gives the sequence's KV
    as the engine reserves it (vLLM: half the output on average; TensorRT-LLM: all of it)."""
    from parasearch.errors import InfeasibleError

    p = problem_from_text(f"""
model: llama-3.1-405b
engine: {engine}
cluster:
  pools:
    - {{name: a, hardware: l40s, nodes: 1, gpus_per_node: 2}}
    - {{name: b, hardware: l40s, nodes: 1, gpus_per_node: 1}}
workload: {{input_tokens: 1000, output_tokens: 1000, arrival_rate: 1}}
""")
    with pytest.raises(InfeasibleError, match=re.escape(f"one sequence ({held}, the output {engine} reserves)")):
        run_search(p, "ilp")
