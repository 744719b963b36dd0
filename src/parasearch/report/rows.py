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


def under_load(ev: Evaluation, rows: list[dict], idx) -> list[dict]:
    """Under traffic, each row's latencies and rates are those at its operating rate (the target rate,
    else the goodput), with the percentiles and the SLO that binds past the goodput."""
    load = ev.load
    pct = load.percentiles(idx)
    gpus = ev.space.layout.gpus
    for r, i, p in zip(rows, idx, pct):
        rate = float(load.rate[i])
        tpot = p.get("tpot_mean_s")
        r.update({
            "goodput_rps": _num(load.goodput[i]),
            "goodput_per_gpu_rps": _num(load.goodput[i] / gpus[i]),
            "rate_rps": _num(rate),
            "slo_binding": str(load.binding[i]),
            "output_tokens_per_s": _num(rate * load.mean_output),
            "output_tokens_per_s_per_gpu": _num(rate * load.mean_output / gpus[i]),
            "tokens_per_s_per_user": _num(1.0 / tpot) if tpot else None,
            "ttft_s": p.get("ttft_mean_s"), "tpot_s": tpot, "e2e_latency_s": p.get("e2e_mean_s"),
            "batch": int(round(float(p.get("batch", r["batch"])))),
            **{k: _num(v) for k, v in p.items() if k.endswith("_s") and "_mean_" not in k},
        })
    return rows


def result_dict(problem, result: SearchResult) -> dict:
    from ..calibration.bands import for_placements

    ev = result.evaluation
    front = [int(i) for i in result.front]
    bands = for_placements(problem.engine, ev.space.pool.hardware, problem.model, ev.space.layout.take(front)) \
        if front else []
    rows = [row(ev, i, b) for i, b in zip(front, bands)]
    if ev.load is not None and front:
        rows = under_load(ev, rows, front)
    return {
        "problem": problem.name,
        "model": problem.model.name,
        "engine": problem.engine.name,
        "method": result.method,
        "objectives": list(problem.objectives),
        # Rows are ranked by the whole cluster's output tok/s ("cluster") or by tok/s per GPU ("per-gpu").
        "ranking": "cluster" if ev.fleet_gpus else "per-gpu",
        "cluster_gpus": problem.total_gpus,
        **({"traffic": _traffic(problem, ev)} if ev.load is not None else {}),
        "pareto": rows,
        "evaluated": int(result.evaluated),
        "pruned": result.pruned,
        "seconds": round(result.seconds, 4),
        "notes": result.notes,
        **({"info": result.info} if result.info else {}),
    }


def _traffic(problem, ev: Evaluation) -> dict:
    t = problem.traffic_or_default()
    return {"description": t.description, "arrival": t.arrival, "cv": t.cv, "target_rate_rps": t.rate,
            "slo": [{"metric": x.metric, "stat": x.stat, "limit_s": x.limit} for x in ev.load.targets]}
