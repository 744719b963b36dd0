"""The lines above every result: model, cluster, engine, workload, SLOs, how rows are ranked, and
which GPUs run on default (unfitted) kernel efficiencies, so the numbers are read with that in mind."""

from __future__ import annotations

from ..spec.problem import Problem


def _cluster(problem: Problem) -> str:
    def one(p) -> str:
        nodes = f"{p.nodes} node{'s' if p.nodes > 1 else ''}"
        return f"{p.gpus}x {p.hardware.name} ({nodes})"
    if len(problem.pools) == 1 and not problem.declared_pools:
        return one(problem.pool)
    return " + ".join(f"{p.name}: {one(p)}" for p in problem.pools)


def _slo(problem: Problem) -> str:
    slo = problem.slo
    parts = [f"{k} <= {v:g} s" for k, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s), ("E2E", slo.e2e_s)) if v]
    parts += [f"{x.stat.upper()} {x.metric.upper()} <= {x.limit:g} s" for x in getattr(slo, "percentiles", ())]
    return "SLO " + ", ".join(parts) if parts else "no SLO"


def ranking(problem: Problem) -> str:
    """How the rows of a single-pool search are ordered, in words."""
    if problem.fixed_fleet:
        return f"ranked by output tok/s of the whole cluster ({problem.total_gpus} GPUs; idle ones add nothing)"
    why = ("--rank per-gpu" if problem.ranking else "a target arrival rate" if problem.workload.arrival_rate
           else "a GPU-count range" if (problem.limits.min_gpus or problem.limits.max_gpus) else "several pools")
    return f"ranked by output tok/s per GPU: per-GPU efficiency, the fleet size being chosen ({why})"


def default_efficiency_gpus(problem: Problem) -> list[str]:
    """GPUs of the problem whose kernel efficiencies are defaults, not fitted to that GPU."""
    out = []
    for p in problem.pools:
        if p.hardware.efficiency.source.upper().startswith("DEFAULT") and p.hardware.name not in out:
            out.append(p.hardware.name)
    return out


def problem_header(problem: Problem) -> list[tuple[str, str | None]]:
    """(line, rich style) pairs; print them with markup off (model names are the user's text)."""
    wl = problem.workload
    rate = f" at {wl.arrival_rate:g} req/s" if wl.arrival_rate else ""
    prec = problem.precision
    lines: list[tuple[str, str | None]] = [
        (f"{problem.model.name} on {_cluster(problem)}, engine {problem.engine.name}, "
         f"{prec.weights} weights, {prec.kv_cache} KV", "bold"),
        (f"workload {wl.input_tokens:g} in / {problem.output_description} out tokens{rate}; {_slo(problem)}"
         if getattr(problem, "traffic", None) is None else f"{_slo(problem)} (traffic below)", None),
    ]
    unfitted = default_efficiency_gpus(problem)
    if unfitted:
        lines.append((f"{', '.join(unfitted)}: default kernel efficiencies, not fitted to "
                      f"{'this GPU' if len(unfitted) == 1 else 'these GPUs'}; expect larger errors", "yellow"))
    return lines
