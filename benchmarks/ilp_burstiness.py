"""How many GPUs burstiness costs: the ILP's fewest-GPU plan for Gamma arrivals of cv 0.5, 1 (Poisson),
2 and 4 at a few mean rates, on the shipped Azure-trace problem's model, hardware, request lengths and
percentile SLOs (problems/llama-3.1-8b-azure-conv-h100.yaml) with a pool of several nodes.

Each cell is the GPUs of the plan (objective `gpus`), and in brackets the largest round-robin group
the plan uses and the SLO that binds for it. See docs/traffic.md, "The ILP under traffic".

Run: python benchmarks/ilp_burstiness.py [--nodes 8] [--rates 10,30,100,300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from parasearch.errors import ParasearchError
from parasearch.search import run_search
from parasearch.spec import problem_from_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "problems" / "llama-3.1-8b-azure-conv-h100.yaml"
CVS = (0.5, 1.0, 2.0, 4.0)


def problem_text(cv: float, rate: float, nodes: int, ttft_p99: float | None = None) -> str:
    doc = yaml.safe_load(SHIPPED.read_text())
    if ttft_p99 is not None:
        doc["slo"]["ttft_s"] = {"p99": ttft_p99}
    trace = (SHIPPED.parent / doc["workload"]["trace"]).resolve()
    cluster = doc["cluster"]
    doc["name"] = f"{doc['name']}-cv{cv:g}-rate{rate:g}"
    doc["cluster"] = {"pools": [{"name": "pool", "hardware": cluster["hardware"], "nodes": nodes,
                                 "gpus_per_node": cluster["gpus_per_node"]}]}
    doc["workload"] = {"trace": str(trace), "arrival": "gamma", "cv": cv, "rate": rate}
    doc["ilp"] = {"objective": "gpus", "pareto_points": 1}
    doc.pop("price_per_gpu_hour", None)
    return yaml.safe_dump(doc, sort_keys=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--rates", default="10,30,100,300")
    ap.add_argument("--ttft", default="shipped,0.5,0.25", help="P99 TTFT limits (s) to tabulate; shipped: the file's")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    for ttft in args.ttft.split(","):
        table(rates, args.nodes, None if ttft == "shipped" else float(ttft))
        print()


def table(rates: list[float], nodes: int, ttft_p99: float | None) -> None:
    doc = yaml.safe_load(problem_text(1.0, 1.0, nodes, ttft_p99))
    pool = doc["cluster"]["pools"][0]
    gpus = nodes * pool["gpus_per_node"]
    print(f"{doc['model']} on {nodes} x {pool['gpus_per_node']} {pool['hardware']} "
          f"({gpus} GPUs), Azure conversation lengths, SLO {doc['slo']}; GPUs of the fewest-GPU plan "
          "[largest group, SLO that binds]")
    print(f"{'req/s':>7s} " + " ".join(f"{'cv ' + format(cv, 'g'):>26s}" for cv in CVS) + f" {'cv2/cv1':>8s} {'s':>6s}")
    for rate in rates:
        cells, used = [], {}
        t0 = time.perf_counter()
        for cv in CVS:
            try:
                plan = run_search(problem_from_text(problem_text(cv, rate, nodes, ttft_p99)), "ilp").plan
            except ParasearchError as exc:  # InfeasibleError: the pool is too small; a SpecError would be a bug
                if type(exc).__name__ == "SpecError":
                    raise
                cells.append(f"{'> ' + str(gpus):>26s}")
                continue
            used[cv] = plan["gpus_used"]
            top = max(plan["allocation"], key=lambda r: r["replicas_per_group"])
            cells.append(f"{plan['gpus_used']:>5d} [{top['replicas_per_group']:>2d}, {top['slo_binding']:<8s}]".rjust(26))
        ratio = f"{used[2.0] / used[1.0]:.2f}" if 1.0 in used and 2.0 in used else "-"
        print(f"{rate:7g} " + " ".join(cells) + f" {ratio:>8s} {time.perf_counter() - t0:6.2f}")


if __name__ == "__main__":
    main()
