"""`parasearch search`: from a problem file, or the same problem given as flags, to the
Pareto-optimal placements with reasons."""

from __future__ import annotations

import csv
from typing import Optional

import typer

from ..errors import InfeasibleError, ParasearchError
from ._common import check_format, err, out, positive, precision_note, precision_notes, print_json, write_file

RANKS = ("cluster", "per-gpu")

# Flag -> where its value goes in a problem file. A problem from flags is that file's dictionary,
# loaded by the same loader, so the two give the same answer.
PROBLEM_FLAGS = {
    "--model": ("model",), "--hardware": ("cluster", "hardware"), "--nodes": ("cluster", "nodes"),
    "--gpus-per-node": ("cluster", "gpus_per_node"), "--input-tokens": ("workload", "input_tokens"),
    "--output-tokens": ("workload", "output_tokens"), "--arrival-rate": ("workload", "arrival_rate"),
    "--ttft": ("slo", "ttft_s"), "--tpot": ("slo", "tpot_s"), "--engine": ("engine",),
    "--weights": ("precision", "weights"), "--kv-cache": ("precision", "kv_cache"),
}


def search(
    problem_file: Optional[str] = typer.Argument(None, metavar="[PROBLEM.yaml]",
                                                 help="Problem file (see problems/); or describe the problem with the flags below."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Problem from flags: catalog name, Hugging Face id or config.json.", rich_help_panel="Problem from flags"),
    hardware: Optional[str] = typer.Option(None, "--hardware", "-H", help="GPU (see `parasearch catalog hardware`).", rich_help_panel="Problem from flags"),
    nodes: Optional[int] = typer.Option(None, help="Nodes in the cluster (default 1).", rich_help_panel="Problem from flags"),
    gpus_per_node: Optional[int] = typer.Option(None, "--gpus-per-node", help="GPUs per node (default 8).", rich_help_panel="Problem from flags"),
    input_tokens: Optional[int] = typer.Option(None, "--input-tokens", help="Prompt tokens per request.", rich_help_panel="Problem from flags"),
    output_tokens: Optional[int] = typer.Option(None, "--output-tokens", help="Generated tokens per request.", rich_help_panel="Problem from flags"),
    ttft: Optional[float] = typer.Option(None, help="SLO on time to first token, seconds.", rich_help_panel="Problem from flags"),
    tpot: Optional[float] = typer.Option(None, help="SLO on time per output token, seconds.", rich_help_panel="Problem from flags"),
    engine: Optional[str] = typer.Option(None, help="Engine profile (see `parasearch catalog engines`).", rich_help_panel="Problem from flags"),
    weights: Optional[str] = typer.Option(None, help="Weight format (default: the model's own).", rich_help_panel="Problem from flags"),
    kv_cache: Optional[str] = typer.Option(None, "--kv-cache", help="KV-cache format.", rich_help_panel="Problem from flags"),
    arrival_rate: Optional[float] = typer.Option(None, "--arrival-rate", help="Target requests/s for the whole cluster.", rich_help_panel="Problem from flags"),
    method: Optional[str] = typer.Option(None, help="auto, exhaustive, optuna or ilp (default: the file's, else auto)."),
    trials: Optional[int] = typer.Option(None, help="Optuna: finished trials the study should hold."),
    seed: Optional[int] = typer.Option(None, help="Optuna: sampler seed."),
    sampler: Optional[str] = typer.Option(None, help="Optuna: nsga2 or tpe."),
    storage: Optional[str] = typer.Option(None, help="Optuna: journal file path or RDB URL (sqlite:///x.db, "
                                          "postgresql://...); default: $PARASEARCH_STORAGE."),
    study: Optional[str] = typer.Option(None, help="Optuna: study name, to resume or to share between workers."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="ILP: solver time limit in seconds."),
    solver: Optional[str] = typer.Option(None, help="ILP: highs (default) or cbc (bundled with PuLP)."),
    rank: Optional[str] = typer.Option(None, help="cluster (whole-cluster tok/s; default for a fixed cluster) or per-gpu (tok/s per GPU; default when an arrival rate or a GPU range sizes the fleet)."),
    top: Optional[int] = typer.Option(None, help="Show only the first N rows of the table."),
    explain: bool = typer.Option(False, "--explain", help="Say under the table why every row binds, and what the columns mean."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout."),
    csv_file: Optional[str] = typer.Option(None, "--csv", help="Write the Pareto front to this CSV file."),
    plot: Optional[str] = typer.Option(None, help="Write a PNG of throughput (as ranked) against tokens/s per user; under "
                                                  "traffic, goodput per GPU and latency-against-load curves."),
) -> None:
    """Search the placements of a problem and print the Pareto front with the binding resource of each.

    The problem is a file, or flags: parasearch search -m llama-3.1-70b -H h100-sxm --input-tokens 128
    --output-tokens 2048 (a file and problem flags together are refused)."""
    import os

    from ..search import METHODS, run_search
    from ..search.storage import ENV
    from ..spec._schema import SEED_MAX, STUDY_NAME, STUDY_NAME_RULE

    positive("--trials", trials)
    positive("--time-limit", time_limit, integer=False)
    positive("--top", top)
    if time_limit is not None and time_limit > 86_400:
        raise ParasearchError(f"--time-limit must be at most 86,400 s (a day), got {time_limit:g}")
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ParasearchError(f"--seed must be an integer from 0 to {SEED_MAX:,}, got {str(seed)[:40]}")
    if study is not None and not STUDY_NAME.match(study):
        raise ParasearchError(f"--study: {STUDY_NAME_RULE}; got {study[:40]!r}")
    storage = storage or os.environ.get(ENV) or None
    if method is not None and method not in METHODS:
        raise ParasearchError(f"--method {method!r} is not a method", hint="allowed: " + ", ".join(METHODS))
    if sampler is not None and sampler not in ("nsga2", "tpe"):
        raise ParasearchError(f"--sampler {sampler!r} is not a sampler", hint="allowed: nsga2, tpe")
    if solver is not None and solver not in ("cbc", "highs"):
        raise ParasearchError(f"--solver {solver!r} is not a solver", hint="allowed: cbc, highs")
    if rank is not None and rank not in RANKS:
        raise ParasearchError(f"--rank {rank!r} is not a ranking", hint="allowed: " + ", ".join(RANKS))
    overrides = {"trials": trials, "seed": seed, "sampler": sampler, "storage": storage, "study": study}
    flags = {"--model": model, "--hardware": hardware, "--nodes": nodes, "--gpus-per-node": gpus_per_node,
             "--input-tokens": input_tokens, "--output-tokens": output_tokens, "--arrival-rate": arrival_rate,
             "--ttft": ttft, "--tpot": tpot, "--engine": engine, "--weights": weights, "--kv-cache": kv_cache}
    problem = _load(problem_file, {k: v for k, v in flags.items() if v is not None}, overrides)
    for note in problem.extras.get("notes", []):
        err.print(f"note: {note}")
    precision_notes([q.hardware for q in problem.pools], [problem.precision.weights])
    from dataclasses import replace
    if time_limit or solver:
        problem = replace(problem, ilp=replace(problem.ilp, time_limit_s=time_limit or problem.ilp.time_limit_s,
                                               solver=solver or problem.ilp.solver))
    if rank:
        problem = replace(problem, ranking=rank)
    precision_note(problem.model, problem.precision.weights)
    result = run_search(problem, method or problem.method)
    _warn_ignored(result.method, {"--trials": trials, "--seed": seed, "--sampler": sampler, "--storage": storage,
                                  "--study": study, "--time-limit": time_limit, "--solver": solver})
    if getattr(result, "plan", None) is not None:
        from ..report.plan import plan_outputs
        plan_outputs(problem, result, as_json=as_json, csv_file=csv_file, plot=plot, console=out, err=err)
        return
    from ..report.rows import result_dict
    res = result_dict(problem, result)
    if not res["pareto"] and result.method == "optuna":
        info = result.info
        raise InfeasibleError(
            f"optuna found no feasible placement: {info['trials']} trials evaluated {result.evaluated} distinct "
            f"placements of {info['space_size']:,}, and none meets memory, the SLOs and the rate",
            hint=f"run --method exhaustive (all {info['space_size']:,} placements) or raise --trials")
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
        from ..report.table import pareto_table
        pareto_table(problem, res, out, top=top, explain=explain)
    for path, what in ((csv_file, "CSV"), (plot, "plot")):
        if path:
            err.print(f"wrote {what} to {path}")


def _load(problem_file: str | None, flags: dict, overrides: dict):
    from ..spec.problem import load_problem
    if problem_file is not None and flags:
        raise ParasearchError(f"give a problem file or problem flags ({', '.join(flags)}), not both",
                              hint="put the values in the file, or drop the file")
    if problem_file is not None:
        return load_problem(problem_file, overrides=overrides)
    if not flags:
        raise ParasearchError("no problem given", hint="give PROBLEM.yaml, or --model, --hardware, --input-tokens "
                                                       "and --output-tokens; see parasearch search --help")
    missing = [f for f in ("--model", "--hardware", "--input-tokens", "--output-tokens") if f not in flags]
    if missing:
        raise ParasearchError(f"a problem from flags needs {', '.join(missing)}")
    return problem_from_flags(flags, overrides)


def problem_dict(flags: dict) -> dict:
    """The problem file's dictionary that `flags` ({"--model": ..., ...}) describe."""
    data: dict = {}
    for flag, value in flags.items():
        *parents, key = PROBLEM_FLAGS[flag]
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
    return data


def problem_from_flags(flags: dict, overrides: dict | None = None):
    from pathlib import Path

    from ..catalog._yaml import Located
    from ..errors import SpecError
    from ..spec.problem import problem_from_doc

    for name in ("--nodes", "--gpus-per-node", "--input-tokens", "--output-tokens"):
        positive(name, flags.get(name))
    for name in ("--ttft", "--tpot", "--arrival-rate"):
        positive(name, flags.get(name), integer=False)
    for name, kind in (("--weights", "weights"), ("--kv-cache", "kv_cache")):
        if name in flags:
            check_format(kind, flags[name])
    data = problem_dict(flags)
    m = str(flags["--model"]).rstrip("/").split("/")[-1].removesuffix(".json")
    data["name"] = f"{m}-{flags.get('--nodes', 1)}x{flags.get('--gpus-per-node', 8)}-{flags['--hardware']}"
    try:
        return problem_from_doc(Located(data, {}, "<flags>"), Path.cwd(), overrides)
    except SpecError as exc:
        field = tuple((exc.field or "").split("."))
        flag = next((f for f, path in PROBLEM_FLAGS.items() if path == field[:len(path)]), None)
        raise ParasearchError(f"{flag}: {exc.message}" if flag else exc.message, hint=exc.hint) from None


_OPTIONS_OF = {"optuna": ("--trials", "--seed", "--sampler", "--storage", "--study"),
               "ilp": ("--time-limit", "--solver")}


def _warn_ignored(method: str, given: dict) -> None:
    """Options of another method than the one that ran do nothing: say so rather than let a
    user believe a --trials or a --storage took effect."""
    own = _OPTIONS_OF.get(method, ())
    unused = [k for k, v in given.items() if v is not None and k not in own]
    if unused:
        verb = "does not apply" if len(unused) == 1 else "do not apply"
        err.print(f"note: {', '.join(unused)} {verb} to the {method} method; ignored")


def _write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
