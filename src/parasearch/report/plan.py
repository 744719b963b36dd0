"""Reporting a cluster plan (the ILP's answer): allocation table, decision, front, JSON/CSV/plot."""

from __future__ import annotations

import csv

from rich.console import Console
from rich.table import Table



def _ms(x) -> str:
    return "-" if x is None else (f"{x:.2f} s" if x >= 1 else f"{x * 1e3:.1f} ms")


def plan_table(problem, plan: dict, console: Console) -> None:
    wl = problem.workload
    pools = ", ".join(f"{p['name']}: {p['nodes']}x{p['gpus_per_node']} {p['hardware']}" for p in plan["pools"])
    target = f"target {plan['target_rate']:g} req/s" if plan["target_rate"] else "no target rate (maximize)"
    t = Table(title=f"{problem.model.name}  |  {wl.input_tokens:g} in / {problem.output_description} out  |  "
                    f"{target}  |  pools {pools}", title_justify="left")
    for c in ("pool", "role", "placement", "batch", "replicas", "GPUs", "req/s", "TTFT", "TPOT", "binds"):
        t.add_column(c, justify="left" if c in ("pool", "role", "placement", "binds") else "right")
    for r in plan["allocation"]:
        batch = r.get("max_batch", r.get("prompts_per_pass"))
        t.add_row(r["pool"], r["role"], r["placement"], str(batch), str(r["replicas"]), str(r["gpus"]),
                  f"{r['requests_per_s']:.3g}", _ms(r["ttft_s"]), _ms(r["tpot_s"]), r["bottleneck"])
    console.print(t)
    cost = f", ${plan['cost_per_hour']:,.2f}/h" if plan["cost_per_hour"] is not None else ""
    gap = "" if plan["status"] == "optimal" else f" (gap {plan['gap']:.2%})" if plan["gap"] is not None else ""
    console.print(f"served {plan['served_rate']:.4g} req/s ({plan['served_output_tokens_per_s']:,.0f} output tok/s) on "
                  f"{plan['gpus_used']} of {plan['gpus_available']} GPUs{cost}; objective {plan['objective']}; "
                  f"solver {plan['solver']}: {plan['status']}{gap} in {plan['solve_seconds']:.2f} s "
                  f"({plan['candidates']} candidate configurations)")
    for k, m in plan["slo_margins"].items():
        console.print(f"SLO {k.upper()}: worst {_ms(m['worst_s'])} of {_ms(m['limit_s'])} ({m['margin']:.0%} margin)")
    console.print(f"[bold]disaggregation:[/] {plan['disaggregation']['reason']}")
    for n in plan.get("notes", []):
        console.print(f"note: {n}")
    if plan["pareto"]:
        f = Table(title="Pareto front: served rate vs TPOT (epsilon-constraint)", title_justify="left")
        for c in ("TPOT bound", "worst TPOT", "tok/s/user", "req/s", "GPUs", "disaggregated"):
            f.add_column(c, justify="right")
        for p in plan["pareto"]:
            f.add_row(_ms(p["tpot_bound_s"]), _ms(p["worst_tpot_s"]), f"{p['tokens_per_s_per_user']:.1f}",
                      f"{p['served_rate']:.4g}", str(p["gpus"]), "yes" if p["disaggregated"] else "no")
        console.print(f)


def plan_outputs(problem, result, *, as_json: bool, csv_file: str | None, plot: str | None, console, err) -> None:
    from ..cli._common import print_json

    from ..cli._common import write_file

    plan = result.plan
    if csv_file:
        write_file(csv_file, "the CSV", lambda path: _write_csv(path, plan["allocation"]))
        err.print(f"wrote CSV to {csv_file}")
    if plot:
        write_file(plot, "the plot", lambda path: _plot(problem, plan, path))
        err.print(f"wrote plot to {plot}")
    if as_json:
        print_json(plan)
    else:
        plan_table(problem, plan, console)


def _write_csv(path: str, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:  # prefill rows say prompts_per_pass where the others say max_batch
        keys.extend(k for k in r if k not in keys)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _plot(problem, plan: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = plan["pareto"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if pts:
        x = [p["tokens_per_s_per_user"] for p in pts]
        y = [p["served_rate"] for p in pts]
        ax.plot(x, y, "-o", c="#d62728")
        for p, xi, yi in zip(pts, x, y):
            ax.annotate(f"{p['gpus']} GPUs{' disagg' if p['disaggregated'] else ''}", (xi, yi), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("tokens/s per user (1 / worst TPOT)")
    ax.set_ylabel("served requests/s")
    ax.set_title(f"{problem.model.name}: cluster plan front", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
