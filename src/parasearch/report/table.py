"""The rich Pareto table a capacity planner reads at a glance."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..spec.problem import Problem


def _s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1:
        return f"{x:.2f} s"
    return f"{x * 1e3:.1f} ms"


def pareto_table(problem: Problem, res: dict, console: Console) -> None:
    wl = problem.workload
    slo = problem.slo
    slo_txt = ", ".join(f"{k} <= {v:g} s" for k, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s),
                                                          ("E2E", slo.e2e_s)) if v) or "no SLO"
    rate = f", {wl.arrival_rate:g} req/s" if wl.arrival_rate else ""
    title = (f"{problem.model.name} on {' + '.join(f'{p.gpus}x {p.hardware.name}' for p in problem.pools)}  "
             f"{problem.precision.weights} weights, {problem.precision.kv_cache} KV  |  "
             f"{wl.input_tokens:g} in / {problem.output_description} out{rate}  |  {slo_txt}")
    t = Table(title=title, title_justify="left", caption=f"Pareto front ({', '.join(problem.objectives)}); "
              f"method {res['method']}", caption_justify="left")
    price = any(r["usd_per_million_tokens"] is not None for r in res["pareto"])
    cols = ["#", "placement", "GPUs", "batch", "tok/s/GPU", "tok/s/user", "TTFT", "TPOT"]
    if price:
        cols.append("$/Mtok")
    cols += ["mem free", "binds", "why"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("placement", "binds", "why") else "right",
                     overflow="fold" if c == "why" else "ellipsis")
    for k, r in enumerate(res["pareto"], 1):
        gpus = str(r["gpus"]) if r["gpus"] == problem.total_gpus else f"{r['gpus']}/{problem.total_gpus}"
        cells = [str(k), r["placement"], gpus, f"{r['batch']}/{r['max_batch']}",
                 f"{r['output_tokens_per_s_per_gpu']:,.0f}", f"{r['tokens_per_s_per_user']:,.1f}", _s(r["ttft_s"]),
                 _s(r["tpot_s"])]
        if price:
            u = r["usd_per_million_tokens"]
            cells.append("-" if u is None else f"{u:,.2f}")
        cells += [f"{r['memory_headroom']:.0%}", f"[yellow]{r['bottleneck']}[/]", r["why"]]
        t.add_row(*cells)
    console.print(t)
    bands = list(dict.fromkeys(r["error_band"] for r in res["pareto"] if r.get("error_band")))
    if bands:
        console.print(f"expected error ({problem.engine.name} engine): " + "; ".join(bands))
    pruned = ", ".join(f"{v:,} {k}" for k, v in res["pruned"].items()) or "none"
    console.print(f"evaluated {res['evaluated']:,} placements in {res['seconds']:.2f} s; pruned: {pruned}")
    for n in res.get("notes", []):
        console.print(n)
