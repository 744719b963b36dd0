"""One placement's estimate as plain, JSON-ready dictionaries (for the CLI and for scripts)."""

from __future__ import annotations

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from .layout import Layout
from .memory import (kv_bytes_per_sequence, kv_bytes_per_token, page_round, plan_memory, realized,
                     sequences_that_fit)
from .precision import Precision
from .serving import Workload, reserved_context, serve
from .iteration import decode_step, prefill_step
from .step import RESOURCES


def _f(x) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def _placement(layout: Layout) -> dict:
    return {"tp": int(layout.tp[0]), "pp": int(layout.pp[0]), "ep": int(layout.ep[0]), "dp": int(layout.dp[0]),
            "attn_dp": bool(layout.attn_dp[0]), "gpus": int(layout.gpus[0])}


def _memory(model, hw, engine, layout, prec, context, sequences) -> dict:
    # The model as the engine stores it: sliding windows save KV only where its KV manager frees them.
    model = realized(model, engine.on(hw))
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    per_seq = kv_bytes_per_sequence(model, layout, prec.kv_cache, page_round(context, engine.kv_block_tokens))
    groups = layout.attn_groups
    need = per_seq * np.ceil(np.asarray(sequences, float) / groups)
    return {
        "hbm_bytes_per_gpu": hw.hbm_bytes,
        "weights_bytes_per_gpu": _f(plan.weights),
        "activation_bytes_per_gpu": _f(plan.activations),
        "runtime_reserve_bytes_per_gpu": plan.reserve,
        "kv_budget_bytes_per_gpu": max(_f(plan.kv_budget), 0.0),
        "kv_bytes_per_token_per_gpu": _f(kv_bytes_per_token(model, layout, prec.kv_cache, context)),
        "kv_bytes_needed_per_gpu": _f(need),
        "max_sequences_at_context": int(_f(sequences_that_fit(plan, per_seq, layout))),
        "fits": bool(_f(plan.kv_budget) > 0 and _f(need) <= _f(plan.kv_budget)),
    }


def _header(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision) -> dict:
    return {"model": model.name, "hardware": hw.name, "engine": engine.name,
            "precision": {"weights": prec.weights, "kv_cache": prec.kv_cache}, "placement": _placement(layout)}


def step_summary(model, hw, engine, layout: Layout, prec: Precision, phase: str, batch: int, context: int) -> dict:
    fn = decode_step if phase == "decode" else prefill_step
    sc = fn(model, hw, engine, layout, prec, batch, context)
    held = context + (1 if phase == "decode" else 0)
    out = _header(model, hw, engine, layout, prec)
    out.update({
        "phase": phase, "batch": batch, "context": context,
        "step_time_s": _f(sc.tick),
        "bottleneck": str(sc.bottleneck[0]),
        "breakdown_s": {r: _f(getattr(sc.breakdown, r)) for r in RESOURCES},
        "memory": _memory(model, hw, engine, layout, prec, held, batch),
    })
    if not out["memory"]["fits"]:
        out["bottleneck"] = "weights-memory" if _f(plan_memory(model, hw, engine, layout, prec.weights).kv_budget) <= 0 \
            else "kv-capacity"
    return out


def serving_summary(model, hw, engine, layout: Layout, prec: Precision, wl: Workload, max_batch: int) -> dict:
    s = serve(model, hw, engine, layout, prec, wl, max_batch)
    fits = bool(s.fits[0])
    out = _header(model, hw, engine, layout, prec)
    out.update({
        "input_tokens": wl.input_tokens, "output_tokens": wl.output_tokens, "max_batch": max_batch,
        "output_tokens_per_s": _f(s.output_tokens_per_s),
        "output_tokens_per_s_per_gpu": _f(s.per_gpu),
        "tokens_per_s_per_user": _f(s.per_user),
        "batch": int(_f(s.batch)),
        "kv_limited_batch": int(_f(s.kv_limit)),
        # Latencies of a batch that cannot be held mean nothing: none when not even one sequence fits.
        "tpot_s": _f(s.tpot_s) if fits else None,
        "ttft_s": _f(s.ttft_s) if fits else None,
        "e2e_latency_s": _f(s.e2e_s) if fits else None,
        "bottleneck": str(s.bottleneck[0]),
        "kv_share_of_memory": _f(s.kv_share),
        "breakdown_s": {r: _f(getattr(s.step.breakdown, r)) for r in RESOURCES},
        "memory": _memory(model, hw, engine, layout, prec, _f(reserved_context(engine.on(hw), wl)), s.batch),
    })
    out["memory"]["fits"] = fits and out["memory"]["fits"]
    if not fits:
        out["kv_share_of_memory"] = 0.0
    return out
