"""`parasearch deploy`: the chosen placement as commands that start it and benchmark it."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import ParasearchError
from ._common import err, positive

ENGINES = ("vllm", "sglang", "trtllm")
FLAGS_PANEL = "Problem from flags (as `parasearch search` takes them; see its --help)"


def deploy(
    problem_file: Optional[str] = typer.Argument(None, metavar="[PROBLEM.yaml]",
                                                 help="Problem file; or the problem as flags, as `search` takes them."),
    engine: str = typer.Option(..., "--engine", "-e", help="vllm, sglang or trtllm, or an engine profile YAML of one "
                               "of them (e.g. one `parasearch calibrate` wrote)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder to write launch.sh, bench.sh and plan.json into."),
    pick: int = typer.Option(1, help="Row of the search's Pareto table to deploy (1: the top row)."),
    checkpoint: Optional[str] = typer.Option(None, help="Hugging Face repo or folder the engine loads (default: "
                                             "the model's repo; launch.sh's MODEL variable overrides it too)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", rich_help_panel=FLAGS_PANEL),
    hardware: Optional[str] = typer.Option(None, "--hardware", "-H", rich_help_panel=FLAGS_PANEL),
    nodes: Optional[int] = typer.Option(None, rich_help_panel=FLAGS_PANEL),
    gpus_per_node: Optional[int] = typer.Option(None, "--gpus-per-node", rich_help_panel=FLAGS_PANEL),
    input_tokens: Optional[int] = typer.Option(None, "--input-tokens", rich_help_panel=FLAGS_PANEL),
    output_tokens: Optional[int] = typer.Option(None, "--output-tokens", rich_help_panel=FLAGS_PANEL),
    ttft: Optional[float] = typer.Option(None, rich_help_panel=FLAGS_PANEL),
    tpot: Optional[float] = typer.Option(None, rich_help_panel=FLAGS_PANEL),
    weights: Optional[str] = typer.Option(None, rich_help_panel=FLAGS_PANEL),
    kv_cache: Optional[str] = typer.Option(None, "--kv-cache", rich_help_panel=FLAGS_PANEL),
    arrival_rate: Optional[float] = typer.Option(None, "--arrival-rate", rich_help_panel=FLAGS_PANEL),
    method: Optional[str] = typer.Option(None, help="Search method (default: the file's, else auto)."),
) -> None:
    """Write launch.sh (one command per node), bench.sh (the engine's own benchmark at the plan's
    load) and plan.json (the placement and its predictions) for row --pick of the search.

    The search runs with --engine's profile, so the placement is the best one for that engine.
    Node addresses are read from NODES when the scripts run: NODES="h0 h1" ./launch.sh RANK."""
    from dataclasses import replace
    from pathlib import Path

    from ..catalog.engines import load_engine
    from ..deploy import plan as P
    from ..deploy.write import engine_module, render, write
    from ..errors import InfeasibleError
    from ..report.fmt import compact, duration
    from ..search import METHODS, run_search
    from ..search.explain import explain_infeasible
    from ..spec.problem import Problem
    from .main import version
    from .search import _load

    positive("--pick", pick)
    if method is not None and method not in METHODS:
        raise ParasearchError(f"--method {method!r} is not a method", hint="allowed: " + ", ".join(METHODS))
    profile = load_engine(engine)
    eng_mod = engine_module(profile.framework)
    flags = {"--model": model, "--hardware": hardware, "--nodes": nodes, "--gpus-per-node": gpus_per_node,
             "--input-tokens": input_tokens, "--output-tokens": output_tokens, "--arrival-rate": arrival_rate,
             "--ttft": ttft, "--tpot": tpot, "--weights": weights, "--kv-cache": kv_cache}
    flags = {k: v for k, v in flags.items() if v is not None}
    if flags:
        flags["--engine"] = engine
    problem: Problem = _load(problem_file, flags, {})

    # The search runs with the deployed engine's profile; a problem's own overrides of that same
    # engine are kept, a profile file given to --engine wins.
    if problem.engine.framework != profile.framework or engine not in ENGINES:
        problem = replace(problem, engine=profile)
    # plan.json names the profile so that `validate` predicts with it again: a catalog name, or the
    # file's absolute path.
    profile_ref = engine if engine in ENGINES else str(Path(engine).resolve()) if Path(engine).is_file() else engine
    # Engines start a replica within one node or on whole nodes: deploy searches only such
    # placements (search.whole_replicas), so whatever it picks can be launched.
    problem = replace(problem, limits=replace(problem.limits, whole_replicas=True))
    result = run_search(problem, method or problem.method)
    if getattr(result, "plan", None) is not None:
        if pick != 1:
            raise ParasearchError("--pick applies to a Pareto table; this problem is planned as one cluster "
                                  "allocation (the ILP), which is deployed whole")
        dep = P.from_plan(problem, result, eng_mod, checkpoint, profile_ref)
    else:
        if len(result.front) == 0:
            raise InfeasibleError("nothing fits: " + explain_infeasible(problem, result.evaluation))
        dep = P.from_search(problem, result, pick, eng_mod, checkpoint, profile_ref)
    files = render(dep, version())
    written = write(files, out)
    say = lambda text: err.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    label = dep.placement.get("placement") or ("disaggregated plan" if dep.disaggregated else "cluster plan")
    say(f"deploy: {label} with {profile.framework} {profile.version}: {len(dep.servers)} server(s) on "
        f"{len({sl.node for s in dep.servers for sl in s.slots})} node(s)")
    pred = dep.predicted
    say(f"predicted: {compact(pred['output_tokens_per_s']['value'])} output tok/s, TTFT "
        f"{duration(pred['ttft_s']['value'])}, TPOT {duration(pred['tpot_s']['value'])}; expected error: "
        f"{(pred['output_tokens_per_s']['error_band'] or {}).get('text', 'unknown')}")
    for note in dep.notes:
        say(f"note: {note}")
    for path in written:
        say(f"wrote {path}")
