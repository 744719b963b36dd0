"""Exhaustive search with and without an arrival rate: placements evaluated per second.

Run: python benchmarks/rate_speed.py   (best of three runs per row, in-process)

Without a rate, per-GPU metrics do not depend on the replica count, so one dp per shape is
evaluated; with a rate, dp sets the load per replica and is searched, and every placement runs
the load model. The issue that asked for this (issue 10, part 5) wants the rate path within 3x
of the rate-free speed in placements per second.
"""

from __future__ import annotations

import time
from pathlib import Path

from parasearch.search import run_search
from parasearch.spec import load_problem

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ["deepseek-r1-reasoning-16xh200", "deepseek-r1-2xh200", "llama-3.1-70b-fp8-h200"]
RATES = {"deepseek-r1-reasoning-16xh200": 20.0, "deepseek-r1-2xh200": 4.0, "llama-3.1-70b-fp8-h200": 2.0}


def _timed(problem) -> tuple[float, int]:
    best, n = None, 0
    for _ in range(3):
        t0 = time.perf_counter()
        res = run_search(problem, "exhaustive", progress=False)
        dt = time.perf_counter() - t0
        best, n = (dt, res.evaluated) if best is None or dt < best else (best, n)
    return best, n


def main() -> None:
    print(f"{'problem':32s} {'rate':>6s} {'placements':>11s} {'seconds':>8s} {'placements/s':>13s} {'slowdown':>9s}")
    for name in PROBLEMS:
        text = (ROOT / "problems" / f"{name}.yaml").read_text()
        free = None
        for rate in (None, RATES[name]):
            src = text if rate is None else text.replace("output_tokens:", f"arrival_rate: {rate}, output_tokens:", 1)
            path = Path("/tmp") / f"rate-speed-{name}.yaml"
            path.write_text(src)
            seconds, n = _timed(load_problem(path))
            speed = n / seconds
            free = free or speed
            slow = "" if rate is None else f"{free / speed:.2f}x"
            print(f"{name:32s} {rate or '-':>6} {n:>11,} {seconds:>8.3f} {speed:>13,.0f} {slow:>9s}")


if __name__ == "__main__":
    main()
