"""`parasearch search`: from a problem file to the Pareto-optimal placements, with reasons."""

from __future__ import annotations

import csv
from typing import Optional

import typer

from ..errors import InfeasibleError, ParasearchError
from ..report.rows import result_dict
from ..report.table import pareto_table
from ._common import err, out, positive, print_json, write_file


def search(
    problem_file: str = typer.Argument(..., metavar="PROBLEM.yaml", help="Problem file (see problems/)."),
    method: Optional[str] = typer.Option(None, help="auto, exhaustive, optuna or ilp (default: the file's, else auto)."),
    trials: Optional[int] = typer.Option(None, help="Optuna: finished trials the study should hold."),
    seed: Optional[int] = typer.Option(None, help="Optuna: sampler seed."),
    sampler: Optional[str] = typer.Option(None, help="Optuna: nsga2 or tpe."),
    storage: Optional[str] = typer.Option(None, help="Optuna: journal file path or RDB URL (sqlite:///x.db, postgresql://...)."),
    study: Optional[str] = typer.Option(None, help="Optuna: study name, to resume or to share between workers."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="ILP: solver time limit in seconds."),
    solver: Optional[str] = typer.Option(None, help="ILP: cbc (bundled with PuLP) or highs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    csv_file: Optional[str] = typer.Option(None, "--csv", help="Write the Pareto front to this CSV file."),
    plot: Optional[str] = typer.Option(None, help="Write a PNG of throughput per GPU against tokens/s per user; under "
                                                  "traffic, goodput per GPU and latency-against-load curves."),
) -> None:
    """Search the placements of a problem and print the Pareto front with the binding resource of each."""
    from ..search import METHODS, run_search
    from ..spec import load_problem

    positive("--trials", trials)
    positive("--time-limit", time_limit, integer=False)
    if method is not None and method not in METHODS:
        raise ParasearchError(f"--method {method!r} is not a method", hint="allowed: " + ", ".join(METHODS))
    if sampler is not None and sampler not in ("nsga2", "tpe"):
        raise ParasearchError(f"--sampler {sampler!r} is not a sampler", hint="allowed: nsga2, tpe")
    if solver is not None and solver not in ("cbc", "highs"):
        raise ParasearchError(f"--solver {solver!r} is not a solver", hint="allowed: cbc, highs")
    problem = load_problem(problem_file, overrides={"trials": trials, "seed": seed, "sampler": sampler,
                                                    "storage": storage, "study": study})
    if time_limit or solver:
        from dataclasses import replace
        problem = replace(problem, ilp=replace(problem.ilp, time_limit_s=time_limit or problem.ilp.time_limit_s,
                                               solver=solver or problem.ilp.solver))
    result = run_search(problem, method or problem.method)
    if getattr(result, "plan", None) is not None:
        from ..report.plan import plan_outputs
        plan_outputs(problem, result, as_json=as_json, csv_file=csv_file, plot=plot, console=out, err=err)
        return
    res = result_dict(problem, result)
    if not res["pareto"]:
        from ..search.explain import explain_infeasible
        raise InfeasibleError("nothing fits: " + explain_infeasible(problem, result.evaluation))
    if csv_file:
        write_file(csv_file, "the CSV", lambda path: _write_csv(path, res["pareto"]))
    if plot:
        if result.evaluation.load is not None:
            from ..report.load_plot import search_load_plot
            write_file(plot, "the plot", lambda path: search_load_plot(problem, result, path))
        else:
            from ..report.plot import pareto_plot
            write_file(plot, "the plot", lambda path: pareto_plot(problem, result, path))
    if as_json:
        print_json(res)
    else:
        pareto_table(problem, res, out)
    for path, what in ((csv_file, "CSV"), (plot, "plot")):
        if path:
            err.print(f"wrote {what} to {path}")


def _write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
