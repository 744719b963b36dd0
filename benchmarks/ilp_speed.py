"""Cluster planning time for the shipped pool problems, with CBC (bundled with PuLP) and HiGHS.

Run: python benchmarks/ilp_speed.py
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from parasearch.search import run_search
from parasearch.spec import load_problem

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    print(f"{'problem':34s} {'GPUs':>5s} {'pools':>5s} {'solver':>6s} {'cands':>6s} {'status':>13s} "
          f"{'main solve s':>12s} {'total s':>8s} {'GPUs used':>9s} {'$/h':>9s}")
    for f in sorted((ROOT / "problems").glob("*.yaml")):
        p = load_problem(f)
        if not p.declared_pools:
            continue
        for solver in ("cbc", "highs"):
            q = replace(p, ilp=replace(p.ilp, solver=solver))
            t0 = time.perf_counter()
            res = run_search(q, "ilp")
            total = time.perf_counter() - t0
            plan = res.plan
            cost = f"{plan['cost_per_hour']:,.0f}" if plan["cost_per_hour"] is not None else "-"
            print(f"{f.stem:34s} {p.total_gpus:5d} {len(p.pools):5d} {solver:>6s} {plan['candidates']:6d} "
                  f"{plan['status']:>13s} {plan['solve_seconds']:12.2f} {total:8.2f} {plan['gpus_used']:9d} {cost:>9s}")


if __name__ == "__main__":
    main()
