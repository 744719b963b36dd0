"""A large feasible cluster-planning problem, generated: DeepSeek-R1 on a fleet of many pools of five
GPU types (12,648 GPUs in 32 pools by default), for checks that the ILP keeps its time limit.

The pool sizes follow a fixed pattern (no randomness) scaled to the GPU count; prices differ a
little per pool so that the cost objective has no trivial ties. The default rate, 16,500 req/s,
is about 90% of what this fleet serves within the SLOs (the goodput optimum is about 18,500
req/s), so the plan is feasible but tight.
"""

from __future__ import annotations

HARDWARE = ("h100-sxm", "h200", "b200", "mi300x", "mi325x", "h200", "h100-sxm", "b200")
PRICE = {"h100-sxm": 2.5, "h200": 3.5, "b200": 5.0, "mi300x": 2.8, "mi325x": 3.2}


def fleet_problem(*, pools: int = 32, gpus: int = 12_648, rate: float = 16_500, objective: str = "cost",
                  time_limit_s: float = 2, solver: str = "cbc") -> str:
    """The problem file's text."""
    nodes = gpus // 8
    sizes = [20 + (i * 37) % 60 for i in range(pools)]
    sizes = [max(1, int(s * nodes / sum(sizes))) for s in sizes]
    sizes[-1] += nodes - sum(sizes)
    lines = [f"name: fleet-{pools}-pools", "model: deepseek-r1", "engine: reference",
             "precision: {weights: fp8, kv_cache: fp8}", "cluster:", "  pools:"]
    for i, n in enumerate(sizes):
        hw = HARDWARE[i % len(HARDWARE)]
        lines.append(f"    - {{name: p{i:02d}-{hw}, hardware: {hw}, nodes: {n}, gpus_per_node: 8, "
                     f"price_per_gpu_hour: {PRICE[hw] + (i % 5) * 0.1:.2f}}}")
    lines += [f"workload: {{input_tokens: 2048, output_tokens: 1024, arrival_rate: {rate:g}}}",
              "slo: {ttft_s: 3.0, tpot_s: 0.05}",
              f"ilp: {{objective: {objective}, time_limit_s: {time_limit_s:g}, solver: {solver}}}"]
    return "\n".join(lines) + "\n"
