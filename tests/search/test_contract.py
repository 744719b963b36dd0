"""Every engine against the exhaustive reference on the shipped small problems."""

from dataclasses import replace

import numpy as np
import pytest

from parasearch.search import run_search
from parasearch.search.pareto import hypervolume_2d
from parasearch.spec import load_problem
from tests.conftest import ROOT

SMALL = ["llama-3.1-8b-chat-h100", "llama-3.1-70b-fp8-h100", "llama-3.1-70b-fp8-h200", "qwen3-235b-moe-h200",
         "deepseek-r1-reasoning-4xh200"]


def _objectives(ev):
    """The two objectives as the search sees them: throughput per GPU of the whole (fixed) cluster
    and tokens/s per user."""
    return np.stack([ev.metric("fleet_per_gpu"), ev.serving.per_user], axis=1)


def _front_points(res):
    return _objectives(res.evaluation)[res.front]


def _keys(res):
    ev = res.evaluation
    lay = ev.space.layout
    return {(int(lay.tp[i]), int(lay.pp[i]), int(lay.ep[i]), int(lay.dp[i]), bool(lay.attn_dp[i]),
             round(float(ev.serving.per_gpu[i]), 6), round(float(ev.serving.per_user[i]), 6)) for i in res.front}


@pytest.fixture(scope="module")
def reference():
    return {n: run_search(load_problem(ROOT / "problems" / f"{n}.yaml"), "exhaustive") for n in SMALL}


@pytest.mark.parametrize("name", SMALL)
def test_exhaustive_front_is_non_dominated_and_feasible(reference, name):
    res = reference[name]
    pts = _front_points(res)
    assert len(pts) >= 3 and np.all(res.evaluation.feasible[res.front])
    feas = res.evaluation.feasible
    allpts = _objectives(res.evaluation)[feas]
    for p in pts:  # nothing feasible strictly dominates a front point
        assert not np.any(np.all(allpts >= p, axis=1) & np.any(allpts > p, axis=1))


SINGLE_POOL = sorted(f.stem for f in (ROOT / "problems").glob("*.yaml") if not load_problem(f).declared_pools)
_EXHAUSTIVE: dict = {}


def _exhaustive_hv(name):
    if name not in _EXHAUSTIVE:
        _EXHAUSTIVE[name] = hypervolume_2d(_front_points(run_search(load_problem(ROOT / "problems" / f"{name}.yaml"),
                                                                    "exhaustive")))
    return _EXHAUSTIVE[name]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", SINGLE_POOL)
def test_optuna_reaches_95_percent_of_the_exhaustive_hypervolume(name, seed):
    """500 trials, seeds 0-4, every shipped single-pool problem (docs/search.md)."""
    p = load_problem(ROOT / "problems" / f"{name}.yaml")
    p = replace(p, optuna=replace(p.optuna, trials=500, seed=seed))
    res = run_search(p, "optuna", progress=False)
    ref = _exhaustive_hv(name)
    got = hypervolume_2d(_front_points(res))
    assert got >= 0.95 * ref
    assert got <= ref * (1 + 1e-9)  # optuna cannot beat the exhaustive front


def test_the_largest_space_is_not_covered_by_the_trials():
    """The quality test means something: on the largest shipped space 500 trials see a small share."""
    p = load_problem(ROOT / "problems" / "deepseek-r1-reasoning-16xh200.yaml")
    p = replace(p, optuna=replace(p.optuna, trials=500, seed=0))
    res = run_search(p, "optuna", progress=False)
    assert res.evaluated <= 500 and res.info["space_size"] > 10 * res.evaluated
    assert 0 < res.info["warm_start_trials"] <= 250


@pytest.mark.parametrize("sampler", ["nsga2", "tpe"])
def test_optuna_is_seeded(sampler):
    p = load_problem(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
    p = replace(p, optuna=replace(p.optuna, trials=60, seed=7, sampler=sampler))
    a, b = run_search(p, "optuna", progress=False), run_search(p, "optuna", progress=False)
    assert _keys(a) == _keys(b)
