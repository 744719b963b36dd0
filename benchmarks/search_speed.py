"""Search wall time and placements evaluated per second for every shipped problem.

Run: python benchmarks/search_speed.py   (prints a table; the CLI column includes Python start-up)

For scale, the issue that asked for this benchmark reports NVIDIA AIConfigurator 0.12 on this
2-core machine at 7.9 s for Llama-3.1-70B on 8xH200 and 24 s for DeepSeek-R1 on 16xH200.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from parasearch.search import run_search
from parasearch.spec import load_problem

ROOT = Path(__file__).resolve().parents[1]
PEER_SECONDS = {"llama-3.1-70b-fp8-h200": 7.9, "deepseek-r1-2xh200": 24.0}


def main() -> None:
    print(f"{'problem':34s} {'GPUs':>5s} {'method':>10s} {'placements':>11s} {'search s':>9s} "
          f"{'placements/s':>13s} {'CLI s':>7s} {'front':>6s}")
    for f in sorted((ROOT / "problems").glob("*.yaml")):
        problem = load_problem(f)
        if problem.declared_pools:
            continue  # cluster plans: benchmarks/ilp_speed.py
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            p = load_problem(f)
            res = run_search(p, "auto", progress=False)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "parasearch", "search", str(f), "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        cli = time.perf_counter() - t0
        rate = res.evaluated / best if best else float("inf")
        print(f"{f.stem:34s} {problem.total_gpus:5d} {res.method:>10s} {res.evaluated:11,d} {best:9.3f} "
              f"{rate:13,.0f} {cli:7.2f} {len(res.front):6d}")
        if f.stem in PEER_SECONDS:
            print(f"{'':34s} AIConfigurator 0.12 (reported): {PEER_SECONDS[f.stem]:.1f} s -> "
                  f"{PEER_SECONDS[f.stem] / cli:.0f}x faster end to end")


if __name__ == "__main__":
    main()
