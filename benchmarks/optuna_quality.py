"""Optuna's hypervolume against the exhaustive front, by trial count and seed.

Run: python benchmarks/optuna_quality.py [problem.yaml ...] [--trials 100,200,500,1000] [--seeds 0-4]

Without problem files it runs the largest shipped single-pool space (most placements). Prints, per
problem, the share of the exhaustive front's hypervolume (throughput per GPU x tokens/s per user,
the search's two objectives) that Optuna's front reaches, for every seed and trial count, and the
worst seed. docs/search.md quotes these figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from parasearch.search import run_search
from parasearch.search.pareto import hypervolume_2d
from parasearch.space.enumerate import enumerate_space
from parasearch.spec import load_problem

ROOT = Path(__file__).resolve().parents[1]


def single_pool_problems() -> list[Path]:
    return [f for f in sorted((ROOT / "problems").glob("*.yaml")) if not load_problem(f).declared_pools]


def front_hv(res) -> float:
    ev = res.evaluation
    pts = np.stack([ev.metric("fleet_per_gpu"), ev.serving.per_user], axis=1)[res.front]
    return hypervolume_2d(pts)


def ratio(problem, reference_hv: float, trials: int, seed: int) -> float:
    p = replace(problem, optuna=replace(problem.optuna, trials=trials, seed=seed))
    return front_hv(run_search(p, "optuna", progress=False)) / reference_hv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("problems", nargs="*")
    ap.add_argument("--trials", default="100,200,300,500,1000")
    ap.add_argument("--seeds", default="0-4")
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    counts = [int(t) for t in a.trials.split(",")]
    files = [Path(f) for f in a.problems] or [max(single_pool_problems(),
                                                   key=lambda f: len(enumerate_space(load_problem(f))))]
    for f in files:
        problem = load_problem(f)
        if problem.declared_pools:
            print(f"{f.stem}: skipped, {len(problem.pools)} GPU pools (the exhaustive reference searches one)")
            continue
        ref = front_hv(run_search(problem, "exhaustive", progress=False))
        print(f"{f.stem}: {len(enumerate_space(problem)):,} placements, sampler {problem.optuna.sampler}")
        print(f"{'trials':>7s} " + " ".join(f"{'seed ' + str(s):>7s}" for s in seeds) + f" {'worst':>7s} {'s/run':>6s}")
        for n in counts:
            t0 = time.perf_counter()
            r = [ratio(problem, ref, n, s) for s in seeds]
            dt = (time.perf_counter() - t0) / len(seeds)
            print(f"{n:7d} " + " ".join(f"{x:7.3f}" for x in r) + f" {min(r):7.3f} {dt:6.2f}")


if __name__ == "__main__":
    main()
