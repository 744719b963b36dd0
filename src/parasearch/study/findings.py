"""The five findings of the source study (Arif, Maurya, Vazhkudai, Nicolae, arXiv 2605.19775),
each checked against a sweep: confirmed, partly confirmed or contradicted, with the numbers."""

from __future__ import annotations

from dataclasses import dataclass

from .sweep import WORKLOADS, SweepPoint, best, find

CHAT, REASON, LONG = "chat-1k/1k", "reasoning-1k/16k", "reasoning-1k/32k"
DP_TOLERANCE = 0.02  # finding 1: DP within this share of the best layout's tok/s/GPU counts as the most efficient


@dataclass
class Finding:
    number: int
    claim: str
    verdict: str        # confirmed | partly confirmed | contradicted | not tested
    evidence: str


def _pct(a: float, b: float) -> str:
    return f"{a / b - 1:+.1%}" if b else "n/a"


def _dense_fitting_dp(points: list[SweepPoint]) -> list[str]:
    seen = []
    for p in points:
        if p.kind == "dp" and p.fits and p.ep == 1 and p.model not in seen and "deepseek" not in p.model:
            seen.append(p.model)
    return seen


def _cap(p: SweepPoint | None, inside: bool = False) -> str:
    """A note on a point whose concurrency the sweep's batch cap, not its KV cache, set (`inside`:
    the note goes inside parentheses already open)."""
    if p is None or not p.cap_binds:
        return ""
    return ", cap-bound" if inside else " (cap-bound)"


def _cap_sentence(pts) -> str:
    """For a verdict whose ranking or comparison includes capped points: it shows the cap, not the hardware."""
    capped = []
    for p in pts:
        if p is not None and p.cap_binds and (key := f"{p.model} {p.strategy} on {p.workload}") not in capped:
            capped.append(key)
    if not capped:
        return ""
    cap = next(p.batch_cap for p in pts if p is not None and p.cap_binds)
    return (f". Cap-bound: the sweep's {cap:,}-sequence batch cap, not the KV cache, sets the concurrency of "
            f"{', '.join(capped)}, so comparisons with {'it' if len(capped) == 1 else 'them'} show the cap, not the "
            "hardware (run without --max-batch to lift it)")


def _missing(points, *workloads: str) -> str | None:
    absent = [w for w in workloads if not any(p.workload == w for p in points)]
    return f"needs the {' and '.join(absent)} workload{'s' if len(absent) > 1 else ''}" if absent else None


def finding1(points) -> Finding:
    claim = "Data parallelism is the most throughput-efficient layout for small models."
    if _missing(points, CHAT):
        return Finding(1, claim, "not tested", _missing(points, CHAT))
    small = _dense_fitting_dp(points)
    if not small:
        return Finding(1, claim, "not tested", "no model fits one GPU in this sweep")
    m = small[0]
    dp, top = find(points, m, CHAT, "DP"), best(points, m, CHAT)
    close = dp.tokens_per_s_per_gpu >= (1 - DP_TOLERANCE) * top.tokens_per_s_per_gpu
    verdict = "confirmed" if close else "contradicted"
    ev = (f"{m}, chat 1k/1k: DP{_cap(dp)} {dp.tokens_per_s_per_gpu:,.0f} tok/s/GPU; best {top.strategy}{_cap(top)} "
          f"{top.tokens_per_s_per_gpu:,.0f} ({_pct(dp.tokens_per_s_per_gpu, top.tokens_per_s_per_gpu)} for DP); "
          f"DP counts as the most efficient when within {DP_TOLERANCE:.0%} of the best layout")
    return Finding(1, claim, verdict, ev + _cap_sentence([p for p in points if p.model == m and p.workload == CHAT]))


def finding2(points) -> Finding:
    claim = ("On reasoning workloads DP hits a capacity trap: the KV cache fills, batches are throttled early and "
             "compute sits idle.")
    if _missing(points, CHAT, LONG):
        return Finding(2, claim, "not tested", _missing(points, CHAT, LONG))
    small = _dense_fitting_dp(points)
    rows = []
    trapped = 0
    for m in small:
        c, r = find(points, m, CHAT, "DP"), find(points, m, LONG, "DP")
        if not (c and r and c.fits and r.fits):
            continue
        falls = c.concurrency_per_replica / max(r.concurrency_per_replica, 1e-9)
        ok = r.bottleneck == "kv-capacity" and falls >= 4 and r.mfu < 0.05
        trapped += ok
        rows.append(f"{m}: DP concurrency {c.concurrency_per_replica:.0f}{_cap(c)} at 1k/1k -> "
                    f"{r.concurrency_per_replica:.0f}{_cap(r)} "
                    f"at 1k/32k ({falls:.0f}x fewer), binds {r.bottleneck}, KV pages reserved {r.kv_reserved_share:.0%} of "
                    f"memory (all the room the weights leave), "
                    f"model FLOP utilization {r.mfu:.1%} (vs {c.mfu:.1%} on chat)")
    if not rows:
        return Finding(2, claim, "not tested", "no model runs as pure DP here")
    verdict = "confirmed" if trapped == len(rows) else ("partly confirmed" if trapped else "contradicted")
    used = [find(points, m, w, "DP") for m in small for w in (CHAT, LONG)]
    return Finding(2, claim, verdict, "; ".join(rows) + _cap_sentence(used))


def _tp_ladder(points, model: str, workload: str) -> list[SweepPoint]:
    """The fitting pure-TP strategies of a model, by degree."""
    return sorted((p for p in points if p.model == model and p.workload == workload and p.kind == "tp" and p.fits),
                  key=lambda p: p.tp)


def finding3(points) -> Finding:
    """Three claims, each tested on its own: TP unlocks memory (more sequences per GPU than DP at
    1k/32k); its gains are sublinear (on chat, each doubling of the TP degree less than doubles a
    replica's throughput, so tok/s/GPU falls along the TP ladder); the crossover (the first model,
    in the sweep's order of size, whose best TP beats DP on chat tok/s/GPU) is the 32B model."""
    claim = "Tensor parallelism unlocks stranded memory, with sublinear gains, and a crossover near 32B."
    if _missing(points, CHAT, LONG):
        return Finding(3, claim, "not tested", _missing(points, CHAT, LONG))
    small = _dense_fitting_dp(points)
    rows, crossover, used = [], None, []
    unlock = sub = laddered = 0
    for m in small:
        dp_r = find(points, m, LONG, "DP")
        tp_r = best(points, m, LONG, kinds=("tp",))
        dp_c, tp_c = find(points, m, CHAT, "DP"), best(points, m, CHAT, kinds=("tp",))
        if not (dp_r and tp_r and dp_c and tp_c):
            continue
        used += [dp_r, tp_r, dp_c, tp_c]
        unlock += tp_r.concurrency_per_gpu > dp_r.concurrency_per_gpu
        ladder = _tp_ladder(points, m, CHAT)
        used += ladder
        steps = list(zip(ladder, ladder[1:]))
        if steps:
            laddered += 1
            sub += all(b.tokens_per_s_per_gpu < a.tokens_per_s_per_gpu for a, b in steps)
        if crossover is None and tp_c.tokens_per_s_per_gpu > dp_c.tokens_per_s_per_gpu:
            crossover = (m, tp_c, dp_c)
        on_chat = ", ".join(f"{p.strategy}{_cap(p)} {p.tokens_per_s_per_gpu:,.0f}" for p in ladder)
        rows.append(f"{m}: at 1k/32k {tp_r.strategy}{_cap(tp_r)} holds {tp_r.concurrency_per_gpu:.1f} sequences/GPU vs "
                    f"{dp_r.concurrency_per_gpu:.1f} for DP{_cap(dp_r)} "
                    f"({_pct(tp_r.tokens_per_s_per_gpu, dp_r.tokens_per_s_per_gpu)} tok/s/GPU); on chat "
                    f"{on_chat} tok/s/GPU against DP {dp_c.tokens_per_s_per_gpu:,.0f}")
    if not rows:
        return Finding(3, claim, "not tested", "needs models that fit one GPU")
    cross = (f"TP first beats DP on chat at {crossover[0]} ({crossover[1].strategy} "
             f"{crossover[1].tokens_per_s_per_gpu:,.0f} vs DP {crossover[2].tokens_per_s_per_gpu:,.0f} tok/s/GPU)"
             if crossover else "TP never beats DP on chat among these models")
    at_32 = crossover is not None and crossover[1].size == "32B"
    held = [unlock == len(rows), laddered > 0 and sub == laddered, at_32]
    verdict = "confirmed" if all(held) else ("partly confirmed" if any(held) else "contradicted")
    parts = [f"TP frees memory for more sequences per GPU in {unlock} of {len(rows)} models",
             (f"TP's gains are sublinear (each doubling of the TP degree less than doubles a replica's chat "
              f"throughput) in {sub} of {laddered} models" if laddered
              else "sublinearity not tested (no model has two TP degrees that fit)"),
             "the crossover is at 32B" if at_32 else "the crossover is not at 32B"]
    return Finding(3, claim, verdict, "; ".join(parts) + ". " + "; ".join(rows) + "; " + cross
                   + _cap_sentence(used))


def finding4(points) -> Finding:
    claim = "Dense frontier models (Llama-405B) are interconnect and memory-bandwidth bound and favour high-degree TP."
    m = next((p.model for p in points if "405b" in p.model), None)
    if m is None:
        return Finding(4, claim, "not tested", "405B not in this sweep")
    rows, high_tp, bw_bound, used4 = [], 0, 0, []
    wls = [w for w in WORKLOADS if any(p.workload == w for p in points if p.model == m)]
    for w in wls:
        b = best(points, m, w)
        if b is None:
            continue
        share = b.step_shares.get("memory", 0) + b.step_shares.get("interconnect", 0)
        high_tp += b.tp >= 8
        bw_bound += share >= 0.5
        used4 += [p for p in points if p.model == m and p.workload == w]
        rows.append(f"{w}: best {b.strategy}{_cap(b)} ({b.tokens_per_s_per_gpu:,.0f} tok/s/GPU), binds {b.bottleneck}, "
                    f"HBM + interconnect {share:.0%} of the step")
    if not rows:
        return Finding(4, claim, "not tested", "no layout of the 405B model fits this cluster")
    verdict = ("confirmed" if high_tp == len(rows) and bw_bound == len(rows)
               else "partly confirmed" if high_tp or bw_bound else "contradicted")
    head = (f"The best layout uses TP of 8 or more in {high_tp} of {len(rows)} workloads; HBM and interconnect take "
            f"at least half of the step in {bw_bound} of {len(rows)}")
    return Finding(4, claim, verdict, head + ". " + "; ".join(rows) + _cap_sentence(used4))


def finding5(points) -> Finding:
    claim = ("MoE models (DeepSeek-R1) are limited by routing and synchronization latency and benefit from hybrid "
             "strategies.")
    m = next((p.model for p in points if "deepseek" in p.model), None)
    if m is None:
        return Finding(5, claim, "not tested", "DeepSeek-R1 not in this sweep")
    rows, hybrid, latency_bound, used5 = [], 0, 0, []
    for w in [w for w in WORKLOADS if any(p.workload == w for p in points if p.model == m)]:
        b = best(points, m, w)
        ep_only = best(points, m, w, kinds=("ep",))
        tp_only = best(points, m, w, kinds=("tp", "hybrid"))
        if b is None:
            continue
        used5 += [p for p in points if p.model == m and p.workload == w]  # the ranking's every entrant
        sync = b.step_shares.get("latency", 0) + b.step_shares.get("interconnect", 0)
        hybrid += b.kind == "ep+adp"
        latency_bound += sync >= 0.5
        rows.append(f"{w}: best {b.strategy}{_cap(b)} {b.tokens_per_s_per_gpu:,.0f} tok/s/GPU"
                    + (f" vs EP alone {ep_only.tokens_per_s_per_gpu:,.0f} ({ep_only.strategy}{_cap(ep_only, True)})"
                       if ep_only else "")
                    + (f" vs TP/PP {tp_only.tokens_per_s_per_gpu:,.0f} ({tp_only.strategy}{_cap(tp_only, True)})"
                       if tp_only else "")
                    + f"; latency + interconnect {sync:.0%} of the step, binds {b.bottleneck}")
    if not rows:
        return Finding(5, claim, "not tested", "no layout of DeepSeek-R1 fits this cluster")
    if hybrid == len(rows) and latency_bound == len(rows):
        verdict = "confirmed"
    elif hybrid:
        verdict = "partly confirmed"
    else:
        verdict = "contradicted"
    head = (f"A hybrid (EP + attention-DP) is best in {hybrid} of {len(rows)} workloads; latency and interconnect "
            f"take at least half of the step in {latency_bound} of {len(rows)} (elsewhere streaming expert weights "
            f"and KV from HBM dominates)")
    return Finding(5, claim, verdict, head + ". " + "; ".join(rows) + _cap_sentence(used5))


def evaluate_findings(points: list[SweepPoint]) -> list[Finding]:
    return [f(points) for f in (finding1, finding2, finding3, finding4, finding5)]
