"""The characterization report: findings with verdicts and numbers, a summary table, the figures."""

from __future__ import annotations

from pathlib import Path

from ..study.findings import Finding
from ..study.sweep import WORKLOADS, SweepPoint, best, find


def summary_rows(points: list[SweepPoint]) -> list[dict]:
    rows = []
    models = []
    for p in points:
        if p.model not in models:
            models.append(p.model)
    for m in models:
        for w in [w for w in WORKLOADS if any(p.workload == w for p in points if p.model == m)]:
            b = best(points, m, w)
            dp = find(points, m, w, "DP")
            rows.append({
                "model": m, "workload": w,
                "best": b.strategy if b else "nothing fits",
                "tok/s/GPU": b.tokens_per_s_per_gpu if b else 0.0,
                "TPOT ms": b.tpot_s * 1e3 if b else None,
                "seq/GPU": b.concurrency_per_gpu if b else 0.0,
                "KV share": b.kv_reserved_share if b else None,
                "binds": ("batch cap" if b.cap_binds else b.bottleneck) if b else "-",
                "DP tok/s/GPU": dp.tokens_per_s_per_gpu if dp and dp.fits else None,
            })
    return rows


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def write_report(folder: str | Path, points: list[SweepPoint], findings: list[Finding], setup: dict,
                 figures: list[Path], command: str, engine: str = "an") -> Path:
    folder = Path(folder)
    lines = [
        "# Reasoning-inference characterization, reproduced by parasearch's oracle",
        "",
        "The study *Understanding Inference Scaling for LLMs: Bottlenecks, Trade-offs, and Performance Principles* "
        "(Arif, Maurya, Vazhkudai, Nicolae, arXiv 2605.19775, 2026) measured LLM serving from 8B to 671B "
        "parameters under reasoning workloads and stated five findings. This report sweeps parasearch's analytic "
        "oracle over the same kinds of models, strategies and workloads, and says for each finding whether the "
        f"model confirms or contradicts it. Every number below is an estimate, not a measurement, made with "
        f"{engine if engine == 'an' else f'the `{engine}`'} engine profile (see Setup).",
        "",
        "Regenerate it with:",
        "",
        f"    {command}",
        "",
        "## Setup",
        "",
    ]
    for k, v in setup.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Findings", ""]
    for f in findings:
        lines += [f"### {f.number}. {f.claim}", "", f"**{f.verdict.capitalize()}.** {f.evidence}", ""]
    cap = next((p.batch_cap for p in points if p.cap_binds), None)
    lines += ["## Best strategy per model and workload", "",
              "KV share: KV-cache pages reserved for the running batch, as a share of GPU memory."
              + (f" Binds `batch cap`: the sweep's {cap:,}-sequence batch cap, not the KV cache, sets the "
                 "concurrency." if cap else ""), "",
              "| model | workload | best | tok/s/GPU | TPOT ms | seq/GPU | KV share | binds | DP tok/s/GPU |",
              "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for r in summary_rows(points):
        ks = r["KV share"]
        lines.append(f"| {r['model']} | {r['workload']} | {r['best']} | {_fmt(r['tok/s/GPU'])} | {_fmt(r['TPOT ms'])} | "
                     f"{_fmt(r['seq/GPU'])} | {'-' if ks is None else f'{ks:.0%}'} | {r['binds']} | "
                     f"{_fmt(r['DP tok/s/GPU'])} |")
    lines += ["", "## Figures", ""]
    captions = {
        "reasoning_cliff.png": "Throughput per GPU against output length, per strategy (the reasoning cliff).",
        "capacity_trap.png": "Sequences in flight per GPU against output length (the capacity trap).",
        "tp_scaling.png": "Throughput per GPU against TP degree for each model size (the crossover).",
        "moe_strategies.png": "DeepSeek-R1: MoE strategies side by side.",
    }
    for fig in figures:
        lines += [f"![{fig.stem}]({fig.name})", "", captions.get(fig.name, ""), ""]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path
