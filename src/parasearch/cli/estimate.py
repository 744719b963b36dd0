"""`parasearch estimate`: one placement's step time, memory, or serving throughput."""

from __future__ import annotations

from typing import Optional

import typer

from ..defaults import KV_CACHE
from ..errors import ParasearchError
from ._common import (check_context, check_format, fmt_bytes, fmt_s, load_inputs, out, positive, precision_note,
                      precision_notes, print_json)

PHASES = ("decode", "prefill")


def estimate(
    model: str = typer.Option(..., "--model", "-m", help="Catalog name (see `parasearch catalog`) or path to a Hugging Face config.json."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="Catalog name, e.g. h100-sxm, h200, b200, mi300x."),
    tp: int = typer.Option(1, help="Tensor-parallel degree."),
    pp: int = typer.Option(1, help="Pipeline stages."),
    ep: int = typer.Option(1, help="Expert-parallel degree (MoE models)."),
    dp: int = typer.Option(1, help="Data-parallel replicas."),
    attn_dp: bool = typer.Option(False, "--attn-dp", help="Attention data parallelism across the ep ranks (MoE)."),
    weights: Optional[str] = typer.Option(None, help="Weight format: bf16, fp8, fp4 (NVFP4), mxfp4, int4 (default: the model checkpoint's own)."),
    kv_cache: str = typer.Option(KV_CACHE, "--kv-cache", help="KV-cache format: bf16, fp8."),
    phase: Optional[str] = typer.Option(None, help="decode or prefill: time one step."),
    batch: Optional[int] = typer.Option(None, help="Sequences (decode) or prompts (prefill) per replica."),
    context: Optional[int] = typer.Option(None, help="Decode: tokens already cached; prefill: prompt length."),
    input_tokens: Optional[int] = typer.Option(None, "--input-tokens", help="Serving: prompt length."),
    output_tokens: Optional[int] = typer.Option(None, "--output-tokens", help="Serving: generated tokens per request."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Serving: cap on sequences in flight per replica "
                                            "(default: the engine's own, e.g. vLLM's max_num_seqs on this GPU, per attention-DP rank)."),
    engine: str = typer.Option("vllm", help="Engine profile: vllm (default), sglang, trtllm, trtllm-trt, vllm-v0, "
                               "reference (the calibration harness), or an engine YAML."),
    calibration: Optional[str] = typer.Option(None, help="Calibration profile from `parasearch calibrate`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimate one placement: a decode/prefill step (--phase) or steady-state serving (--input-tokens/--output-tokens)."""
    from ..cost.layout import Layout
    from ..cost.precision import Precision
    from ..cost.serving import Workload
    from ..cost.summary import serving_summary, step_summary
    from ..space.rules import check_placement

    for name, v in (("--tp", tp), ("--pp", pp), ("--ep", ep), ("--dp", dp), ("--batch", batch), ("--context", context),
                    ("--input-tokens", input_tokens), ("--output-tokens", output_tokens), ("--max-batch", max_batch)):
        positive(name, v)
    if weights is not None:
        check_format("weights", weights)
    check_format("kv_cache", kv_cache)
    serving = input_tokens is not None or output_tokens is not None
    if serving and phase is not None:
        raise ParasearchError("give either --phase (one step) or --input-tokens/--output-tokens (serving), not both")
    if serving and (input_tokens is None or output_tokens is None):
        raise ParasearchError("serving needs both --input-tokens and --output-tokens")
    if not serving:
        if phase is None:
            raise ParasearchError("nothing to estimate", hint="give --phase decode|prefill with --batch and --context, "
                                  "or --input-tokens and --output-tokens")
        if phase not in PHASES:
            raise ParasearchError(f"--phase {phase!r} is not a phase", hint="allowed: decode, prefill")
        if batch is None or context is None:
            raise ParasearchError(f"--phase {phase} needs --batch and --context")
    m, hw, eng = load_inputs(model, hardware, engine, calibration)
    prec = Precision(weights or m.native_weights, kv_cache)
    precision_note(m, prec.weights)
    if serving:
        check_context(m, input_tokens + output_tokens, "--input-tokens + --output-tokens")
    else:
        check_context(m, context, f"--context ({phase})")
    check_placement(m, tp, pp, ep, dp, attn_dp)
    precision_notes([hw], [prec.weights])
    layout = Layout.of(tp, pp, ep, dp, attn_dp)
    if serving:
        if max_batch is None:
            max_batch = int(eng.on(hw).max_batch * layout.attn_groups[0])
        res = serving_summary(m, hw, eng, layout, prec, Workload(float(input_tokens), float(output_tokens)), max_batch)
    else:
        res = step_summary(m, hw, eng, layout, prec, phase, batch, context)
    from ..calibration.bands import for_placements

    band = for_placements(eng, hw, m, layout)[0]
    res["expected_error"], res["error_band"] = band.error, band.text
    if as_json:
        print_json(res)
    else:
        _table(res, serving)


def _table(r: dict, serving: bool) -> None:
    from rich.table import Table

    from ..space.label import placement_label

    p = r["placement"]
    label = placement_label(p["tp"], p["pp"], p["ep"], p["dp"], p["attn_dp"])
    title = (f"{r['model']} on {p['gpus']}x {r['hardware']}  {label}  weights {r['precision']['weights']}, "
             f"KV {r['precision']['kv_cache']}  [{r['engine']} engine]")
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    mem = r["memory"]
    if serving:
        t.add_row("output tokens/s (all GPUs)", f"{r['output_tokens_per_s']:,.0f}")
        t.add_row("output tokens/s per GPU", f"{r['output_tokens_per_s_per_gpu']:,.0f}")
        t.add_row("tokens/s per user", f"{r['tokens_per_s_per_user']:,.1f}")
        t.add_row("batch in flight (KV limit)", f"{r['batch']:,} ({r['kv_limited_batch']:,})")
        t.add_row("TPOT", fmt_s(r["tpot_s"]))
        t.add_row("TTFT", fmt_s(r["ttft_s"]))
        t.add_row("end-to-end latency", fmt_s(r["e2e_latency_s"]))
        t.add_row("KV share of memory", f"{r['kv_share_of_memory']:.0%}")
    else:
        t.add_row(f"{r['phase']} step (batch {r['batch']}, context {r['context']})", fmt_s(r["step_time_s"]))
        for k, v in r["breakdown_s"].items():
            t.add_row(f"  {k}", fmt_s(v))
    t.add_row("binding resource", f"[bold yellow]{r['bottleneck']}[/]")
    t.add_row("weights per GPU", fmt_bytes(mem["weights_bytes_per_gpu"]))
    t.add_row("KV bytes per token per GPU", f"{mem['kv_bytes_per_token_per_gpu']:,.0f} B")
    t.add_row("KV budget per GPU", fmt_bytes(mem["kv_budget_bytes_per_gpu"]))
    t.add_row("fits", "yes" if mem["fits"] else "[red]no[/]")
    t.add_row("expected error", r["error_band"])
    out.print(t)
