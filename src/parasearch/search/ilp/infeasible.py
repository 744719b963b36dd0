"""When a cluster plan cannot be made: which constraint binds, and by how much."""

from __future__ import annotations

from dataclasses import replace

from ...spec.problem import Problem, Slo
from .candidates import Candidate, all_candidates


def _where(c: Candidate) -> str:
    return f"{c.pool}: {c.label}, batch {c.batch}"


def no_candidates(problem: Problem, roles, priced: dict | None = None) -> str:
    """No replica configuration meets the SLOs its role sees: name the SLO that binds and what the
    best configuration reaches, or say that nothing fits in memory. `priced`: as `all_candidates`
    takes it (the SLOs are dropped here, nothing else changes)."""
    loose = all_candidates(replace(problem, slo=Slo()), roles, priced=priced)
    lim = problem.limits
    if not loose and (lim.max_gpus or lim.min_gpus):
        unbounded = all_candidates(replace(problem, slo=Slo(), limits=replace(lim, max_gpus=None, min_gpus=None)),
                                   roles)
        if unbounded:
            smallest = min(unbounded, key=lambda c: c.gpus)
            return (f"search.max_gpus is {lim.max_gpus}, and the smallest replica that holds the model "
                    f"({_where(smallest)}) needs {smallest.gpus} GPUs" if lim.max_gpus and smallest.gpus > lim.max_gpus
                    else f"search.min_gpus/max_gpus ({lim.min_gpus}/{lim.max_gpus}) exclude every replica size")
    if not loose:
        from ...cost.serving import reserved_context

        biggest = max(problem.pools, key=lambda q: q.gpus)
        wl = problem.workload
        held = float(reserved_context(problem.engine.on(biggest.hardware), wl)) - wl.input_tokens
        return (f"no replica configuration of any pool holds the weights of {problem.model.name} and the KV cache of "
                f"one sequence ({wl.input_tokens:,.0f} + {held:,.0f} tokens, the output {problem.engine.name} "
                "reserves), "
                f"even in {biggest.name} ({biggest.gpus} GPUs of {biggest.hardware.name}); add GPUs, quantize, or "
                "allow more TP/PP (try `parasearch search` on one pool for the numbers)")
    slo, tail = problem.slo, problem.workload.output_tokens - 1
    agg = [c for c in loose if c.role == "aggregated"]
    pre = [c for c in loose if c.role == "prefill"]
    dec = [c for c in loose if c.role == "decode"]
    parts = []
    for name, limit, pool, value in (("TPOT", slo.tpot_s, agg + dec, lambda c: c.tpot_s),
                                     ("TTFT", slo.ttft_s, agg + pre, lambda c: c.ttft_s)):
        if limit and pool:
            best = min(pool, key=value)
            if value(best) > limit:
                parts.append(f"the {name} SLO of {limit:g} s is out of reach: the fastest replica ({_where(best)}) "
                             f"reaches {value(best):.4g} s ({value(best) / limit - 1:.0%} over)")
    if slo.e2e_s and not parts:
        options = [(c.e2e_s, _where(c)) for c in agg]
        if pre and dec:
            p, d = min(pre, key=lambda c: c.ttft_s), min(dec, key=lambda c: c.tpot_s)
            options.append((p.ttft_s + tail * d.tpot_s, f"prefill {_where(p)} with decode {_where(d)}"))
        if options:
            e2e, where = min(options)
            if e2e > slo.e2e_s:
                parts.append(f"the end-to-end SLO of {slo.e2e_s:g} s is out of reach: the fastest ({where}) takes "
                             f"{e2e:.4g} s ({e2e / slo.e2e_s - 1:.0%} over)")
    if parts:
        return "; ".join(parts)
    # Each SLO alone can be met, not all by one configuration: show the closest.
    def miss(c: Candidate) -> float:
        checks = [(slo.tpot_s, c.tpot_s if c.role != "prefill" else 0.0),
                  (slo.ttft_s, c.ttft_s if c.role != "decode" else 0.0),
                  (slo.e2e_s, c.e2e_s if c.role == "aggregated" else 0.0)]
        return max((got / limit - 1 for limit, got in checks if limit), default=0.0)
    c = min(loose, key=miss)
    return (f"no replica configuration meets every SLO at once; the closest ({c.role}, {_where(c)}) misses by "
            f"{miss(c):.0%} (TTFT {c.ttft_s:.3g} s, TPOT {c.tpot_s:.3g} s)")


def unplaceable(problem: Problem, cands: list[Candidate], roles, priced: dict | None = None) -> str:
    """The best plan serves nothing: no candidate serves on its own (prefill without any decode
    that meets TPOT, or the reverse), or none can be placed (the GPU limits, the pool sizes)."""
    serving = [c for c in cands if c.role == "aggregated"]
    if not serving and not ({"prefill", "decode"} <= {c.role for c in cands}):
        return no_candidates(problem, roles, priced)
    smallest = min(cands, key=lambda c: c.gpus)
    lim = problem.limits
    if lim.max_gpus and smallest.gpus > lim.max_gpus:
        return (f"search.max_gpus is {lim.max_gpus}, and the smallest replica that meets the SLOs "
                f"({_where(smallest)}) needs {smallest.gpus} GPUs")
    return f"the smallest replica that meets the SLOs ({_where(smallest)}) needs {smallest.gpus} GPUs; no pool has them"


def short_of_target(problem: Problem, most: float | None) -> str:
    """A `gpus`/`cost` plan cannot reach the target rate: how much the fleet serves at best."""
    target = problem.workload.arrival_rate
    if most is None:
        return (f"no allocation of the pools serves {target:g} req/s within the SLOs (the solver proved it; the most "
                "the fleet serves was not found within the time limit)")
    return (f"no allocation of the pools serves {target:g} req/s within the SLOs: the most the fleet serves is "
            f"{most:.4g} req/s ({most / target:.0%} of the target); add GPUs, relax the SLOs, or lower the rate")
