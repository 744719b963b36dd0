"""`parasearch sweep`: the reasoning-inference characterization, in one command."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import typer

from ..defaults import KV_CACHE
from ..errors import ParasearchError
from ._common import check_format, err, load_inputs, out, positive, precision_notes, print_json, write_file


def sweep(
    hardware: str = typer.Option("h100-sxm", "--hardware", "-H", help="GPU type of the cluster."),
    nodes: int = typer.Option(4, help="Nodes in the cluster."),
    gpus_per_node: int = typer.Option(8, "--gpus-per-node", help="GPUs per node."),
    models: Optional[str] = typer.Option(None, help="Comma-separated models (default: 8B, 32B, 70B, 405B, DeepSeek-R1)."),
    workloads: Optional[str] = typer.Option(None, help="Comma-separated workloads (default: all five)."),
    weights: Optional[str] = typer.Option(None, help="Weight format for every model: bf16, fp8, fp4 (NVFP4), mxfp4, int4 (default: each model's own)."),
    kv_cache: str = typer.Option(KV_CACHE, "--kv-cache", help="KV-cache format."),
    max_batch: Optional[int] = typer.Option(
        None, "--max-batch", help="Cap on sequences per replica (default: none, as many as the KV cache holds)."),
    engine: str = typer.Option("vllm", help="Engine profile (vllm, sglang, trtllm, ... or a YAML)."),
    calibration: Optional[str] = typer.Option(None, help="Calibration profile."),
    plots: Optional[str] = typer.Option(None, help="Folder for the PNG figures."),
    report: Optional[str] = typer.Option(None, help="Folder for a Markdown report with findings and figures."),
    as_json: bool = typer.Option(False, "--json", help="Print every point and the findings as JSON."),
) -> None:
    """Sweep model sizes x strategies x workloads; report throughput, TPOT, concurrency, KV share, what binds."""
    from ..study.findings import evaluate_findings
    from ..catalog.models import load_model
    from ..study.sweep import DEFAULT_MODELS, WORKLOADS, run_sweep

    for name, v in (("--nodes", nodes), ("--gpus-per-node", gpus_per_node), ("--max-batch", max_batch)):
        if v is not None:
            positive(name, v)
    from ..spec._schema import MAX_CLUSTER_GPUS
    if nodes * gpus_per_node > MAX_CLUSTER_GPUS:
        raise ParasearchError(f"--nodes x --gpus-per-node is {nodes * gpus_per_node:,} GPUs, more than any cluster "
                              f"has (at most {MAX_CLUSTER_GPUS:,})")
    if weights:
        check_format("weights", weights)
    check_format("kv_cache", kv_cache)
    model_list = tuple(m.strip() for m in models.split(",") if m.strip()) if models else DEFAULT_MODELS
    wl_list = tuple(w.strip() for w in workloads.split(",") if w.strip()) if workloads else tuple(WORKLOADS)
    for w in wl_list:
        if w not in WORKLOADS:
            raise ParasearchError(f"unknown workload {w!r}", hint="allowed: " + ", ".join(WORKLOADS))
    first, hw, eng = load_inputs(model_list[0], hardware, engine, calibration)
    natives = [first.native_weights] + [load_model(m).native_weights for m in model_list[1:]]  # fail early
    precision_notes([hw], [weights] if weights else sorted(set(natives)))
    points = run_sweep(hw, eng, nodes=nodes, gpus_per_node=gpus_per_node, models=model_list, workloads=wl_list,
                       max_batch=max_batch, weights=weights, kv_cache=kv_cache)
    findings = evaluate_findings(points)
    figures = []
    folder = report or plots
    if folder:
        from ..report.sweep_plots import write_figures
        write_file(folder, "the figures", lambda path: figures.extend(write_figures(points, path)))
    if report:
        from ..report.characterization import write_report
        setup = {"cluster": f"{nodes} nodes x {gpus_per_node} {hw.display_name} ({nodes * gpus_per_node} GPUs)",
                 "engine profile": f"{eng.name} ({eng.description})",
                 "precision": f"weights {weights or 'each model’s own (bf16; DeepSeek-R1 fp8)'}, KV cache {kv_cache}",
                 "batch cap": ("none: each replica holds as many sequences as its KV cache does" if max_batch is None
                               else f"{max_batch} sequences per replica; where it, not the KV cache, sets a point's "
                               "concurrency, the table, figures and verdicts say so"),
                 "strategies": "DP, TP-n, PP-n, TP x PP hybrids (and EP, EP + attention-DP for MoE); each fills the cluster",
                 "workloads": ", ".join(wl_list)}
        cmd = (f"parasearch sweep --hardware {hardware} --nodes {nodes} --gpus-per-node {gpus_per_node}"
               + (f" --models {','.join(model_list)}" if models else "")
               + (f" --workloads {','.join(wl_list)}" if workloads else "")
               + (f" --max-batch {max_batch}" if max_batch is not None else "")
               + (f" --engine {engine}" if engine != "vllm" else "") + f" --report {report}")
        write_file(report, "the report", lambda path: write_report(path, points, findings, setup, figures, cmd, eng.name))
        err.print(f"wrote {report}/README.md and {len(figures)} figures")
    elif figures:
        err.print(f"wrote {len(figures)} figures to {folder}")
    if as_json:
        print_json({"points": [asdict(p) for p in points], "findings": [asdict(f) for f in findings]})
        return
    _summary(points, findings)


def _summary(points, findings) -> None:
    from ..report.characterization import summary_rows
    from ..report.fmt import compact, duration, percent
    from ..report.table import BINDS, fitted_table

    out.print("Best strategy per model and workload (tok/s: output tokens per second)", markup=False)
    columns = [("model", "left"), ("workload", "left"), ("best", "left"), ("tok/s\n/GPU", "right"),
               ("TPOT", "right"), ("seq\n/GPU", "right"), ("KV\nshare", "right"), ("binds", "left"),
               ("DP tok/s\n/GPU", "right")]
    rows = [[r["model"], r["workload"], r["best"], compact(r["tok/s/GPU"]),
             duration(None if r["TPOT ms"] is None else r["TPOT ms"] / 1e3), compact(r["seq/GPU"]),
             percent(r["KV share"]), BINDS.get(r["binds"], r["binds"]), compact(r["DP tok/s/GPU"])]
            for r in summary_rows(points)]
    out.print(fitted_table(columns, rows, out.width, wrap=("model", "workload", "best"), styles={"binds": "yellow"}))
    for f in findings:
        out.print(f"[bold]{f.number}. {f.verdict}[/]: {f.claim}\n   {f.evidence}")
