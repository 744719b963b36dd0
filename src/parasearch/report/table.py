"""The rich Pareto table a capacity planner reads at a glance."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..spec.problem import Problem


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def _s(x: float | None) -> str:
    if x is None or x != x or x == float("inf"):
        return "-"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1e3:.1f} ms"


def slo_text(slo) -> str:
    parts = [f"{k} <= {v:g} s" for k, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s), ("E2E", slo.e2e_s)) if v]
    parts += [f"{t.stat.upper()} {t.metric.upper()} <= {t.limit:g} s" for t in slo.percentiles]
    return ", ".join(parts) or "no SLO"


def pareto_table(problem: Problem, res: dict, console: Console) -> None:
    wl = problem.workload
    slo = problem.slo
    loaded = "traffic" in res
    if loaded:
        t_rate = res["traffic"]["target_rate_rps"]
        what = res["traffic"]["description"] + (f", target {t_rate:g} req/s" if t_rate else "")
    else:
        rate = f", {wl.arrival_rate:g} req/s" if wl.arrival_rate else ""
        what = f"{wl.input_tokens:g} in / {problem.output_description} out{rate}"
    title = (f"{problem.model.name} on {' + '.join(f'{p.gpus}x {p.hardware.name}' for p in problem.pools)}  "
             f"{problem.precision.weights} weights, {problem.precision.kv_cache} KV  |  {what}  |  {slo_text(slo)}")
    caption = f"Pareto front ({', '.join(problem.objectives)}); method {res['method']}"
    if loaded:
        at = "the target rate" if res["traffic"]["target_rate_rps"] else "the goodput"
        caption += f"; latencies at {at}; goodput = highest rate meeting every SLO"
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    price = any(r["usd_per_million_tokens"] is not None for r in res["pareto"])
    pct = [(f"{x.metric}_{x.stat}_s", f"{x.stat.upper()} {x.metric.upper()}") for x in slo.percentiles] if loaded else []
    cols = ["#", "placement", "GPUs", "batch"]
    cols += ["goodput", "req/s/GPU"] if loaded else []
    cols += ["tok/s/GPU", "tok/s/user", "TTFT", "TPOT"] + [name for _, name in pct]
    if price:
        cols.append("$/Mtok")
    cols += ["mem free"] + (["limit"] if loaded else []) + ["binds", "why"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("placement", "binds", "why", "limit") else "right",
                     overflow="fold" if c == "why" else "ellipsis")
    for k, r in enumerate(res["pareto"], 1):
        gpus = str(r["gpus"]) if r["gpus"] == problem.total_gpus else f"{r['gpus']}/{problem.total_gpus}"
        cells = [str(k), r["placement"], gpus, f"{r['batch']}/{r['max_batch']}"]
        if loaded:
            cells += [f"{r['goodput_rps']:,.3g}", f"{r['goodput_per_gpu_rps']:,.3g}"]
        cells += [f"{r['output_tokens_per_s_per_gpu']:,.0f}", _f(r["tokens_per_s_per_user"]), _s(r["ttft_s"]),
                  _s(r["tpot_s"])] + [_s(r.get(key)) for key, _ in pct]
        if price:
            u = r["usd_per_million_tokens"]
            cells.append("-" if u is None else f"{u:,.2f}")
        cells += [f"{r['memory_headroom']:.0%}"] + ([r["slo_binding"]] if loaded else [])
        cells += [f"[yellow]{r['bottleneck']}[/]", r["why"]]
        t.add_row(*cells)
    console.print(t)
    pruned = ", ".join(f"{v:,} {k}" for k, v in res["pruned"].items()) or "none"
    console.print(f"evaluated {res['evaluated']:,} placements in {res['seconds']:.2f} s; pruned: {pruned}")
    for n in res.get("notes", []):
        console.print(n)
