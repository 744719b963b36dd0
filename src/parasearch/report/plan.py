"""Reporting a cluster plan (the ILP's answer): allocation table, decision, front, JSON/CSV/plot."""

from __future__ import annotations

import csv

from rich.console import Console

from .fmt import compact, duration
from .table import BINDS, fitted_table, print_header


def plan_table(problem, plan: dict, console: Console) -> None:
    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    print_header(problem, console)
    target = f"target {plan['target_rate']:g} req/s" if plan["target_rate"] else "no target rate (maximize)"
    say(f"cluster plan: {target}, objective {plan['objective']}")
    columns = [("pool", "left"), ("role", "left"), ("placement", "left"), ("batch", "right"), ("GPUs", "right"),
               ("req/s", "right"), ("TTFT", "right"), ("TPOT", "right"), ("binds", "left")]
    rows = [[r["pool"], r["role"], r["placement"], str(r.get("max_batch", r.get("prompts_per_pass"))), str(r["gpus"]),
             compact(r["requests_per_s"]), duration(r["ttft_s"]), duration(r["tpot_s"]),
             BINDS.get(r["bottleneck"], r["bottleneck"])] for r in plan["allocation"]]
    console.print(fitted_table(columns, rows, console.width, wrap=("placement",), styles={"binds": "yellow"}))
    cost = f", ${plan['cost_per_hour']:,.2f}/h" if plan["cost_per_hour"] is not None else ""
    gap = "" if plan["status"] == "optimal" else f" (gap {plan['gap']:.2%})" if plan["gap"] is not None else ""
    say(f"served {plan['served_rate']:.4g} req/s ({plan['served_output_tokens_per_s']:,.0f} output tok/s) on "
        f"{plan['gpus_used']} of {plan['gpus_available']} GPUs{cost}; solver {plan['solver']}: {plan['status']}{gap} "
        f"in {plan['solve_seconds']:.2f} s ({plan['candidates']} candidate configurations)")
    for k, m in plan["slo_margins"].items():
        say(f"SLO {k.upper()}: worst {duration(m['worst_s'])} of {duration(m['limit_s'])} ({m['margin']:.0%} margin)")
    say(f"disaggregation: {plan['disaggregation']['reason']}")
    for n in plan.get("notes", []):
        say(f"note: {n}")
    if plan["pareto"]:
        say("Pareto front of served rate against TPOT (epsilon-constraint):")
        columns = [("TPOT\nbound", "right"), ("worst\nTPOT", "right"), ("tok/s\n/user", "right"),
                   ("req/s", "right"), ("GPUs", "right"), ("disagg.", "left")]
        rows = [[duration(p["tpot_bound_s"]), duration(p["worst_tpot_s"]), compact(p["tokens_per_s_per_user"]),
                 compact(p["served_rate"]), str(p["gpus"]), "yes" if p["disaggregated"] else "no"]
                for p in plan["pareto"]]
        console.print(fitted_table(columns, rows, console.width))


def plan_outputs(problem, result, *, as_json: bool, csv_file: str | None, plot: str | None, console, err) -> None:
    from ..cli._common import print_json, write_file

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
