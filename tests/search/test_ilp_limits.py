"""Solver limits that keep their word: one deadline for the whole ILP run, a time-out is never
"infeasible", every solve keeps a plan, gaps are never negative, and infeasible problems say
which constraint binds and by how much."""

from __future__ import annotations

import json

import pulp
import pytest

from parasearch.search import run_search
from parasearch.search.ilp import formulation as F
from parasearch.search.ilp import decision as D
from parasearch.search.ilp import plan as P
from parasearch.search.ilp.candidates import all_candidates, kv_bytes_per_request
from parasearch.search.ilp.greedy import greedy_plan
from parasearch.spec import problem_from_text
from tests.conftest import run_cli
from tests.search._fleet import fleet_problem
from tests.search.test_ilp import _brute, _tiny


class _Gives:
    """A stand-in solver that ends as a real one can: with the given status, after no work."""

    def __init__(self, status, sol_status):
        self.status, self.sol_status = status, sol_status

    def actualSolve(self, lp, **kw):  # noqa: N802 (PuLP's name)
        lp.assignStatus(self.status, self.sol_status)
        return self.status


@pytest.fixture
def pools():
    return problem_from_text(_tiny("goodput", ", arrival_rate: 3"))


def test_a_solver_without_a_plan_in_time_leaves_the_greedy_plan(monkeypatch, pools):
    monkeypatch.setattr(F, "_solver", lambda *a, **k: _Gives(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound))
    cands = all_candidates(pools)
    a = F.solve(pools, cands, objective="goodput", target_rate=3.0, kv_bytes=kv_bytes_per_request(pools))
    g = greedy_plan(pools, cands, "goodput", 3.0, kv_bytes_per_request(pools))
    assert a.status == "time-limited" and a.counts == g.counts and a.served_rate > 0
    assert "greedy plan" in a.notes[0]


@pytest.mark.parametrize("objective", ["goodput", "gpus"])
def test_infeasible_after_a_time_out_is_not_believed(monkeypatch, pools, objective):
    monkeypatch.setattr(F, "_solver", lambda *a, **k: _Gives(pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible))
    cands = all_candidates(pools)
    kw = dict(objective=objective, target_rate=3.0, kv_bytes=kv_bytes_per_request(pools))
    # Serving nothing is a plan under goodput: that objective is never infeasible.
    assert F.solve(pools, cands, **kw).status == ("time-limited" if objective == "goodput" else "infeasible")
    # A solver that used (nearly) all its time may call a model it had no time for infeasible.
    monkeypatch.setattr(F.time, "perf_counter", _clock(step=10.0))
    assert F.solve(pools, cands, **kw, time_limit=5).status != "infeasible"


def _clock(step: float):
    t = [0.0]

    def tick():
        t[0] += step
        return t[0]
    return tick


def test_gaps_are_never_negative():
    assert F.relative_gap(18996.66, 19000.0) == pytest.approx(3.34 / 18996.66)
    assert F.relative_gap(-18996.66, -19000.0) >= 0 and F.relative_gap(10.0, 10.0) == 0
    assert F.relative_gap(None, 1.0) is None and F.relative_gap(1.0, float("inf")) is None


def _kept(p):
    keep = []
    for key in sorted({(c.pool, c.role) for c in all_candidates(p)}):
        group = sorted((c for c in all_candidates(p) if (c.pool, c.role) == key), key=lambda c: -c.rate / c.gpus)
        keep.extend(group[:3])
    return keep


def test_the_end_to_end_rows_are_exact_against_brute_force():
    text = _tiny("goodput", "", inp=8192, out=256)
    loose = _kept(problem_from_text(text))
    sums = sorted(a.ttft_s + 255 * d.tpot_s for a in loose if a.role == "prefill" for d in loose
                  if d.role == "decode")
    e2e = round(sums[len(sums) // 2], 4)  # half the pairings clash
    p = problem_from_text(text.replace("tpot_s: 0.03}", f"tpot_s: 0.03, e2e_s: {e2e}}}"))
    keep = _kept(p)
    pre = [c for c in keep if c.role == "prefill"]
    dec = [c for c in keep if c.role == "decode"]
    clashes = [(a, d) for a in pre for d in dec if a.ttft_s + 255 * d.tpot_s > e2e]
    assert clashes and len(clashes) < len(pre) * len(dec)  # the constraint cuts, and leaves a choice
    a = F.solve(p, keep, objective="goodput", target_rate=None, kv_bytes=kv_bytes_per_request(p))

    def e2e_ok(x):
        used = [c for n, c in zip(x, keep) if n]
        return all(u.ttft_s + 255 * v.tpot_s <= e2e for u in used if u.role == "prefill"
                   for v in used if v.role == "decode")
    assert a.status == "optimal"
    assert a.served_rate == pytest.approx(_brute(p, keep, "goodput", None, allowed=e2e_ok), rel=1e-6)
    used = [keep[i] for i in a.counts]
    assert e2e_ok([1 if c in used else 0 for c in keep])


def test_one_deadline_for_the_whole_run(monkeypatch):
    """Every solve after the main one gets only what is left of the limit, so a run with many
    solves cannot multiply the limit (it once ran 227-297 s at time_limit_s: 30)."""
    p = problem_from_text(fleet_problem(pools=3, gpus=192, rate=200, objective="goodput", time_limit_s=4))
    calls = []  # (when, seconds given)
    real = F.solve

    def spy(*a, time_limit, **k):
        calls.append((P.time.perf_counter(), time_limit))
        return real(*a, time_limit=time_limit, **k)
    monkeypatch.setattr(P, "solve", spy)
    monkeypatch.setattr(D, "solve", spy)  # the re-solves behind the disaggregation reason
    plan = run_search(p, "ilp").plan
    assert plan["status"] in ("optimal", "time-limited") and plan["served_rate"] > 0
    assert plan["gap"] is None or plan["gap"] >= 0
    first, main = calls[0]
    assert len(calls) > 3 and main <= 4 * P.MAIN_SHARE + 1e-9
    deadline = first + 4  # the run started before its first solve
    assert all(when + given <= deadline + 1e-6 for when, given in calls[1:])
    assert all(pt["status"] in ("optimal", "time-limited") for pt in plan["pareto"])


def test_a_fleet_plan_under_a_tight_limit_is_a_plan(tmp_path):
    f = tmp_path / "fleet.yaml"
    f.write_text(fleet_problem(pools=8, gpus=1024, rate=1500, objective="cost", time_limit_s=1))
    rc, out, err = run_cli("search", str(f), "--json")
    assert rc == 0, err
    plan = json.loads(out)
    assert plan["status"] in ("optimal", "time-limited") and plan["served_rate"] >= 1500 - 1e-6
    assert plan["gap"] is None or plan["gap"] >= 0


def test_a_tpot_no_pool_reaches_is_named_with_the_best_reached(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(_tiny("goodput", "").replace("tpot_s: 0.03", "tpot_s: 0.0005"))
    rc, out, err = run_cli("search", str(f))
    assert rc == 4 and out == ""
    assert "the TPOT SLO of 0.0005 s is out of reach: the fastest replica" in err and "% over)" in err


def test_a_target_beyond_the_fleet_says_what_the_fleet_serves(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(_tiny("gpus", ", arrival_rate: 100000"))
    rc, _, err = run_cli("search", str(f))
    most = run_search(problem_from_text(_tiny("goodput", "")), "ilp").plan["served_rate"]
    assert rc == 4 and f"the most the fleet serves is {most:.4g} req/s" in err


def test_a_gpu_cap_below_every_replica_is_named(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(_tiny("goodput", "").replace("max_batch: [16, 64, 256]}", "max_batch: [16, 64, 256], tp: [2], "
                                              "max_gpus: 1}").replace("tp: [1, 2], ", ""))
    rc, _, err = run_cli("search", str(f))
    assert rc == 4 and "search.max_gpus is 1" in err and "needs 2 GPUs" in err


def test_optuna_that_finds_nothing_says_what_it_tried(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("model: llama-3.1-70b\ncluster: {hardware: h100-sxm, nodes: 2}\nmethod: optuna\n"
                 "workload: {input_tokens: 1024, output_tokens: 256}\nslo: {tpot_s: 0.001}\nengine: reference\n")
    rc, _, err = run_cli("search", str(f), "--trials", "10")
    assert rc == 4 and "optuna found no feasible placement: " in err
    assert "run --method exhaustive" in err and "raise --trials" in err and "out of reach" not in err
