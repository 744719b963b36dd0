"""When nothing is feasible: which constraint binds, and by how much."""

from __future__ import annotations

import numpy as np

from ..space.label import placement_label
from .evaluate import Evaluation


def _label(ev: Evaluation, i: int) -> str:
    lay = ev.space.layout
    return (f"{placement_label(int(lay.tp[i]), int(lay.pp[i]), int(lay.ep[i]), int(lay.dp[i]), bool(lay.attn_dp[i]))}"
            f", batch cap {int(ev.space.max_batch[i])}")


def explain_infeasible(problem, ev: Evaluation) -> str:
    s = ev.serving
    mem = s.memory
    hbm = ev.space.pool.hardware.hbm_bytes
    if not np.any(mem.fits):
        i = int(np.argmax(mem.kv_budget))
        need = float(mem.weights[i] + mem.activations[i] + mem.reserve)
        return (f"weights do not fit: even {_label(ev, i)} ({int(ev.space.layout.gpus[i])} GPUs) needs "
                f"{need / 1e9:.1f} GB per GPU for weights, workspace and runtime, and the GPU has {hbm / 1e9:.1f} GB "
                f"(short by {(need - hbm) / 1e9:.1f} GB, {need / hbm - 1:.0%}); add GPUs, allow more TP/PP, or quantize")
    if not np.any(s.fits):
        ok = np.flatnonzero(mem.fits)
        wl = problem.workload
        i = int(ok[np.argmax(mem.kv_budget[ok])])
        from ..cost.memory import kv_bytes_per_sequence, page_round, realized
        from ..cost.serving import reserved_context
        # What the engine holds per sequence (its reservation, its sliding-window handling): the
        # same figure the batch was sized with.
        engine = problem.engine.on(ev.space.pool.hardware)
        ctx = float(reserved_context(engine, wl))
        per = float(kv_bytes_per_sequence(realized(problem.model, engine), ev.space.layout.take([i]),
                                          problem.precision.kv_cache, page_round(ctx, engine.kv_block_tokens))[0])
        left = float(mem.kv_budget[i])
        held = (f"{wl.input_tokens:,.0f} prompt + {ctx - wl.input_tokens:,.0f} output tokens, what {engine.name} "
                f"reserves" if ctx - wl.input_tokens < wl.reserved_output else "prompt + output")
        return (f"KV cache: one sequence of {ctx:,.0f} tokens ({held}) needs {per / 1e9:.2f} GB per GPU, but at best "
                f"({_label(ev, i)}) only {left / 1e9:.2f} GB is left after the weights ({per / max(left, 1):.1f}x short)")
    base = s.fits.copy()
    slo = problem.slo
    parts = []
    for name, limit, got in (("TTFT", slo.ttft_s, s.ttft_s), ("TPOT", slo.tpot_s, s.tpot_s), ("E2E latency", slo.e2e_s,
                                                                                                 s.e2e_s)):
        if not limit:
            continue
        cand = np.flatnonzero(base)
        i = int(cand[np.argmin(got[cand])])
        best = float(got[i])
        if best > limit:
            parts.append(f"the {name} SLO of {limit:g} s is out of reach: the fastest placement ({_label(ev, i)}) gives "
                         f"{best:.4g} s ({best / limit - 1:.0%} over)")
    if parts:
        return "; ".join(parts)
    meets_slo = base.copy()
    for limit, got in ((slo.ttft_s, s.ttft_s), (slo.tpot_s, s.tpot_s), (slo.e2e_s, s.e2e_s)):
        if limit:
            meets_slo &= got <= limit
    if problem.workload.arrival_rate and np.any(meets_slo):
        cand = np.flatnonzero(meets_slo)
        cap = problem.workload.arrival_rate / s.utilization[cand]
        j = int(cand[np.argmax(cap)])
        return (f"the arrival rate of {problem.workload.arrival_rate:g} req/s exceeds every placement that meets the "
                f"SLOs; the most capable ({_label(ev, j)}) serves {float(np.max(cap)):.3g} req/s")
    # Each SLO is reachable alone but not together: show the placement closest to meeting all of them.
    viol = np.zeros(len(ev))
    for limit, got in ((slo.ttft_s, s.ttft_s), (slo.tpot_s, s.tpot_s), (slo.e2e_s, s.e2e_s)):
        if limit:
            viol = np.maximum(viol, got / limit - 1)
    viol = np.where(base, viol, np.inf)
    i = int(np.argmin(viol))
    return (f"no placement meets every SLO at once; the closest ({_label(ev, i)}) misses by {float(viol[i]):.0%} "
            f"(TTFT {float(s.ttft_s[i]):.3g} s, TPOT {float(s.tpot_s[i]):.3g} s)")
