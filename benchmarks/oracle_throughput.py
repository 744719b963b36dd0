"""How many placements per second the vectorized oracle evaluates (serving metrics, full composition).

Run: python benchmarks/oracle_throughput.py
"""

from __future__ import annotations

import time

import numpy as np

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.cost.serving import Workload, serve


def bench(model: str, n: int, moe: bool) -> None:
    rng = np.random.default_rng(0)
    m, hw, e = load_model(model), load_hardware("h200"), load_engine("reference")
    tp = rng.choice([1, 2, 4, 8], n)
    pp = rng.choice([1, 2, 4], n)
    ep = rng.choice([1, 2, 4, 8], n) if moe else np.ones(n, int)
    adp = (rng.random(n) < 0.5) & (ep > 1)
    lay = Layout.of(tp, pp, ep, 1, adp)
    batch = rng.choice([16, 64, 256, 1024], n)
    serve(m, hw, e, lay.take(slice(0, 10)), Precision("fp8", "fp8"), Workload(1024, 8192), batch[:10])  # warm-up
    t0 = time.perf_counter()
    serve(m, hw, e, lay, Precision("fp8", "fp8"), Workload(1024, 8192), batch)
    dt = time.perf_counter() - t0
    print(f"{model:16s} {n:>7,} placements  {dt * 1e3:8.1f} ms  {n / dt:>12,.0f} placements/s")


if __name__ == "__main__":
    for model, moe in (("llama-3.1-70b", False), ("deepseek-r1", True)):
        for n in (1_000, 10_000, 100_000):
            bench(model, n, moe)
