"""One dictionary per placement: the shared shape of tables, JSON and CSV."""

from __future__ import annotations

import math

import numpy as np

from ..cost.step import RESOURCES
from ..search.evaluate import Evaluation
from ..search.result import SearchResult
from ..space.label import placement_label


def why(ev: Evaluation, i: int) -> str:
    """One phrase on what binds and how hard."""
    s = ev.serving
    b = str(s.bottleneck[i])
    bd = s.breakdown if s.breakdown is not None else s.step.breakdown
    total = sum(float(getattr(bd, r)[i]) for r in RESOURCES) or 1.0
    share = {r: float(getattr(bd, r)[i]) / total for r in RESOURCES}
    batch = int(s.batch[i])
    if b == "kv-capacity":
        reserved = float(s.kv_reserved[i]) / ev.space.pool.hardware.hbm_bytes
        return (f"KV cache holds only {int(s.kv_limit[i])} sequences (cap {int(ev.space.max_batch[i])}); "
                f"their reserved pages fill {reserved:.0%} of memory")
    if b == "memory":
        return f"HBM bandwidth: {share['memory']:.0%} of the time streams weights and KV at batch {batch}"
    if b == "compute":
        return f"compute: {share['compute']:.0%} of the time is math at batch {batch}"
    if b == "interconnect":
        return f"interconnect: collectives take {share['interconnect']:.0%} of the time"
    if b == "latency":
        return f"fixed latency: launches and collective start-up take {share['latency']:.0%} of the time at batch {batch}"
    return b


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def row(ev: Evaluation, i: int, band=None) -> dict:
    lay, s = ev.space.layout, ev.serving
    tp, pp, ep, dp, adp = (int(lay.tp[i]), int(lay.pp[i]), int(lay.ep[i]), int(lay.dp[i]), bool(lay.attn_dp[i]))
    return {
        "placement": placement_label(tp, pp, ep, dp, adp),
        "pool": ev.space.pool.name,
        "hardware": ev.space.pool.hardware.name,
        "dp": dp, "tp": tp, "pp": pp, "ep": ep, "attn_dp": adp,
        "max_batch": int(ev.space.max_batch[i]),
        "batch": int(s.batch[i]),
        "gpus": int(lay.gpus[i]),
        "output_tokens_per_s": _num(s.output_tokens_per_s[i]),
        "output_tokens_per_s_per_gpu": _num(s.per_gpu[i]),
        "tokens_per_s_per_user": _num(s.per_user[i]),
        "ttft_s": _num(s.ttft_s[i]),
        "tpot_s": _num(s.tpot_s[i]),
        "e2e_latency_s": _num(s.e2e_s[i]),
        "usd_per_million_tokens": _num(ev.usd_per_mtok[i]) if not np.isnan(ev.usd_per_mtok[i]) else None,
        "memory_headroom": _num(ev.headroom[i]),
        "kv_share_of_memory": _num(s.kv_share[i]),
        "bottleneck": str(s.bottleneck[i]),
        "why": why(ev, i),
        "feasible": bool(ev.feasible[i]),
        "pruned_by": str(ev.reason[i]) or None,
        # How far estimates of this kind have landed from published measurements.
        "expected_error": band.error if band else None,
        "error_band": band.text if band else None,
    }


def result_dict(problem, result: SearchResult) -> dict:
    from ..calibration.bands import for_placements

    ev = result.evaluation
    front = [int(i) for i in result.front]
    bands = for_placements(problem.engine, ev.space.pool.hardware, problem.model, ev.space.layout.take(front)) \
        if front else []
    return {
        "problem": problem.name,
        "model": problem.model.name,
        "engine": problem.engine.name,
        "method": result.method,
        "objectives": list(problem.objectives),
        # Rows are ranked by the whole cluster's output tok/s ("cluster") or by tok/s per GPU ("per-gpu").
        "ranking": "cluster" if ev.fleet_gpus else "per-gpu",
        "cluster_gpus": problem.total_gpus,
        "pareto": [row(ev, i, b) for i, b in zip(front, bands)],
        "evaluated": int(result.evaluated),
        "pruned": result.pruned,
        "seconds": round(result.seconds, 4),
        "notes": result.notes,
        **({"info": result.info} if result.info else {}),
    }
