"""`parasearch sweep`: the reasoning-inference characterization, in one command."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import typer
from rich.table import Table

from ..errors import ParasearchError
from ._common import check_format, err, load_inputs, out, positive, print_json, write_file


def sweep(
    hardware: str = typer.Option("h100-sxm", "--hardware", "-H", help="GPU type of the cluster."),
    nodes: int = typer.Option(4, help="Nodes in the cluster."),
    gpus_per_node: int = typer.Option(8, "--gpus-per-node", help="GPUs per node."),
    models: Optional[str] = typer.Option(None, help="Comma-separated models (default: 8B, 32B, 70B, 405B, DeepSeek-R1)."),
    workloads: Optional[str] = typer.Option(None, help="Comma-separated workloads (default: all five)."),
    weights: Optional[str] = typer.Option(None, help="Weight format for every model (default: each model's own)."),
    kv_cache: str = typer.Option("bf16", "--kv-cache", help="KV-cache format."),
    max_batch: int = typer.Option(512, "--max-batch", help="Engine cap on sequences per replica."),
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
        positive(name, v)
    if weights:
        check_format("weights", weights)
    check_format("kv_cache", kv_cache)
    model_list = tuple(m.strip() for m in models.split(",") if m.strip()) if models else DEFAULT_MODELS
    wl_list = tuple(w.strip() for w in workloads.split(",") if w.strip()) if workloads else tuple(WORKLOADS)
    for w in wl_list:
        if w not in WORKLOADS:
            raise ParasearchError(f"unknown workload {w!r}", hint="allowed: " + ", ".join(WORKLOADS))
    _, hw, eng = load_inputs(model_list[0], hardware, engine, calibration)
    for m in model_list[1:]:
        load_model(m)  # fail early, one line, on an unknown model
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
                 "engine": f"{eng.name} ({eng.description})",
                 "precision": f"weights {weights or 'each model’s own (bf16; DeepSeek-R1 fp8)'}, KV cache {kv_cache}",
                 "batch cap": f"{max_batch} sequences per replica",
                 "strategies": "DP, TP-n, PP-n, TP x PP hybrids (and EP, EP + attention-DP for MoE); each fills the cluster",
                 "workloads": ", ".join(wl_list)}
        cmd = (f"parasearch sweep --hardware {hardware} --nodes {nodes} --gpus-per-node {gpus_per_node}"
               + (f" --models {','.join(model_list)}" if models else "")
               + (f" --workloads {','.join(wl_list)}" if workloads else "") + f" --report {report}")
        write_file(report, "the report", lambda path: write_report(path, points, findings, setup, figures, cmd))
        err.print(f"wrote {report}/README.md and {len(figures)} figures")
    elif figures:
        err.print(f"wrote {len(figures)} figures to {folder}")
    if as_json:
        print_json({"points": [asdict(p) for p in points], "findings": [asdict(f) for f in findings]})
        return
    _summary(points, findings)


def _summary(points, findings) -> None:
    from ..report.characterization import summary_rows

    t = Table(title="Best strategy per model and workload", title_justify="left")
    for c in ("model", "workload", "best", "tok/s/GPU", "TPOT", "seq/GPU", "KV share", "binds", "DP tok/s/GPU"):
        t.add_column(c, justify="left" if c in ("model", "workload", "best", "binds") else "right")
    for r in summary_rows(points):
        t.add_row(r["model"], r["workload"], r["best"], f"{r['tok/s/GPU']:,.0f}",
                  "-" if r["TPOT ms"] is None else f"{r['TPOT ms']:.1f} ms", f"{r['seq/GPU']:.1f}",
                  "-" if r["KV share"] is None else f"{r['KV share']:.0%}", r["binds"],
                  "-" if r["DP tok/s/GPU"] is None else f"{r['DP tok/s/GPU']:,.0f}")
    out.print(t)
    for f in findings:
        out.print(f"[bold]{f.number}. {f.verdict}[/]: {f.claim}\n   {f.evidence}")
