"""How well the analytic load model's goodput and percentiles agree with the scheduler simulator,
how fast the search runs with a trace, and how fast the simulator replays requests.

Run: python benchmarks/traffic_accuracy.py [--quick]

For each shipped single-node problem the workload is replaced by the sample of the public Azure
conversation trace (data/traces/) and the SLOs by percentiles (P99 TTFT, and P90 or P99 TPOT at the
problem's TPOT limit). `parasearch search` runs on it (timed), and for the placements of its Pareto
front the simulator finds the goodput by bisection on the arrival rate (the trace replayed, time
scaled to each rate, split round-robin over the replicas). Each (placement, SLO set) is one pair; the
goodput of the pair sets its load. At 40%, 70% and 90% of the simulated goodput the model's P50/P90/P99
TTFT and TPOT are compared with the simulated ones too. Engine: `reference`, so the figures do not
move with the default engine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from parasearch.catalog.engines import load_engine
from parasearch.search import run_search
from parasearch.simulate.run import goodput as sim_goodput
from parasearch.simulate.run import replica, simulate
from parasearch.spec import load_problem
from parasearch.spec.problem import problem_from_text

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv"
PROBLEMS = ("llama-3.1-8b-chat-h100", "llama-3.1-70b-fp8-h100", "llama-3.1-70b-fp8-h200")


def traced(name: str, tpot_stat: str):
    base = load_problem(ROOT / "problems" / f"{name}.yaml")
    tpot = base.slo.tpot_s
    text = (f"model: {base.model.name}\nprecision: {{weights: {base.precision.weights}, "
            f"kv_cache: {base.precision.kv_cache}}}\n"
            f"cluster: {{hardware: {base.pool.hardware.name}, nodes: {base.pool.nodes}, "
            f"gpus_per_node: {base.pool.gpus_per_node}}}\nengine: reference\n"
            f"workload: {{trace: {TRACE}}}\nslo: {{ttft_s: {{p99: 2.0}}, tpot_s: {{{tpot_stat}: {tpot}}}}}\n")
    return problem_from_text(text, file=f"{name}+azure-conv")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer placements and requests")
    ap.add_argument("--requests", type=int, default=None)
    ap.add_argument("--timing-only", action="store_true", help="only the search and simulator timings")
    args = ap.parse_args()
    if args.timing_only:
        timings()
        return
    per_front = 3 if args.quick else 6
    requests = args.requests or (4000 if args.quick else 10000)
    engine = load_engine("reference")
    pairs, pct_err = [], []
    print(f"{'problem':24s} {'SLO':18s} {'placement':16s} {'model rps':>10s} {'sim rps':>9s} {'error':>7s} "
          f"{'binds':>9s}")
    for name in PROBLEMS:
        for stat in ("p90", "p99"):
            problem = traced(name, stat)
            res = run_search(problem, "exhaustive", progress=False)
            ev = res.evaluation
            front = [int(i) for i in res.front if ev.load.goodput[i] > 0]
            # Spread the picks over the front: its ends and evenly between.
            picks = sorted(set(np.linspace(0, len(front) - 1, min(per_front, len(front))).round().astype(int)))
            targets = problem.slo.targets
            traffic = problem.traffic
            for j in picks:
                i = front[j]
                lay = ev.space.layout.take([i])
                mb = int(ev.space.max_batch[i])
                rep = replica(problem.model, ev.space.pool.hardware, engine, problem.precision, lay, mb, traffic)

                def run(rate, n=requests):
                    return simulate(problem.model, ev.space.pool.hardware, engine, problem.precision, lay, mb,
                                    traffic, rate, requests=n, rep=rep)

                model_g = float(ev.load.goodput[i])
                sim_g = sim_goodput(run, targets, hi=model_g * 1.3, lo=model_g * 0.3, steps=9)
                err = model_g / sim_g - 1 if sim_g > 0 else float("inf")
                label = f"{lay_label(lay)} b{mb}"
                pairs.append((name, stat, label, model_g, sim_g, err))
                print(f"{name:24s} {'P99 TTFT+' + stat.upper() + ' TPOT':18s} {label:16s} {model_g:10.3g} "
                      f"{sim_g:9.3g} {err:+7.1%} {ev.load.binding[i]:>9s}")
                for share in (0.4, 0.7, 0.9):
                    rate = share * sim_g
                    sim = run(rate)
                    got = ev.load.percentiles([i], rate)[0]
                    for m in ("ttft", "tpot"):
                        for q in (50, 90, 99):
                            s = sim.percentile(m, q / 100)
                            if np.isfinite(s) and s > 0:
                                pct_err.append((m, q, share, got[f"{m}_p{q}_s"] / s - 1))
    errs = np.array([abs(p[5]) for p in pairs])
    print(f"\ngoodput, model vs simulator, over {len(pairs)} placement-load pairs: median |error| "
          f"{np.median(errs):.1%}, P90 {np.percentile(errs, 90):.1%}, max {errs.max():.1%}; "
          f"model above the simulator in {sum(p[5] > 0 for p in pairs)} of {len(pairs)}")
    print("\npercentiles, model vs simulator: median |error| [P90 |error|] (median signed error) at 40% / 70% / 90% "
          "of the simulated goodput:")
    for m in ("ttft", "tpot"):
        for q in (50, 90, 99):
            cells = []
            for share in (0.4, 0.7, 0.9):
                s = np.array([x[3] for x in pct_err if x[0] == m and x[1] == q and x[2] == share])
                e = np.abs(s)
                cells.append(f"{np.median(e):5.1%} [{np.percentile(e, 90):5.1%}] ({np.median(s):+5.1%})"
                             if e.size else "-")
            print(f"  P{q:<2d} {m.upper():4s}  " + "   ".join(cells))
    timings()


def timings() -> None:
    print("\nsearch with the trace (exhaustive, in-process, best of 3; then the CLI end to end, with Python "
          "start-up, and its CPU time):")
    for name in PROBLEMS:
        for stat in ("p90", "p99"):
            problem = traced(name, stat)
            best = min(_timed(lambda: run_search(problem, "exhaustive", progress=False)) for _ in range(3))
            print(f"  {name:24s} {stat.upper()} TPOT  {best:.2f} s")
    shipped = ROOT / "problems" / "llama-3.1-8b-azure-conv-h100.yaml"
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "parasearch", "search", str(shipped)], check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"  parasearch search {shipped.relative_to(ROOT)}: {wall:.2f} s wall, {cpu:.2f} s CPU "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    # Simulator speed: 100k requests of the trace on one placement at 80% of its goodput.
    name, stat = PROBLEMS[0], "p90"
    problem = traced(name, stat)
    engine = load_engine("reference")
    res = run_search(problem, "exhaustive", progress=False)
    i = int(res.front[0])
    ev = res.evaluation
    lay, mb = ev.space.layout.take([i]), int(ev.space.max_batch[i])
    t0 = time.perf_counter()
    sim = simulate(problem.model, ev.space.pool.hardware, engine, problem.precision, lay, mb, problem.traffic,
                   0.8 * float(ev.load.goodput[i]), requests=100_000)
    total = time.perf_counter() - t0
    print(f"\nsimulator: 100,000 requests ({name}, {lay_label(lay)} b{mb}, {sim.stats['events']:,} events) in "
          f"{total:.2f} s including the step table, {sim.seconds:.2f} s replaying")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def lay_label(lay) -> str:
    from parasearch.report.rows import placement_label

    return placement_label(int(lay.tp[0]), int(lay.pp[0]), int(lay.ep[0]), int(lay.dp[0]), bool(lay.attn_dp[0]))


if __name__ == "__main__":
    main()
