"""The Pareto table a capacity planner reads at a glance, in any terminal from 80 columns up.

Numbers are compact (`3.31k`, `52ms`) and never cut: columns sit two spaces apart, one when that
does not fit, and only the placement may wrap (at its spaces). The sentence on why each row binds
goes under the table: for the top row by default, for every row with `--explain`.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from ..spec.problem import Problem
from .fmt import compact, duration, money, percent
from .header import problem_header, ranking

# Short names of the binding resource for the table; JSON and CSV keep the full ones.
BINDS = {"kv-capacity": "KV-cap", "memory": "HBM-bw", "compute": "compute", "interconnect": "comm",
         "latency": "latency"}
BINDS_LEGEND = {"KV-cap": "the KV cache is full", "HBM-bw": "HBM bandwidth", "compute": "math",
                "comm": "interconnect collectives", "latency": "kernel launches and collective start-up"}


def fitted_table(columns: list[tuple[str, str]], rows: list[list[str]], width: int, *,
                 wrap: tuple[str, ...] = (), styles: dict[str, str] | None = None) -> Table:
    """A borderless table for `width` columns. `columns` are (header, justify) pairs; headers may
    hold a newline. Cells are plain text. Only the columns named in `wrap` may wrap."""
    widths = [max([len(x) for x in h.split("\n")] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(columns)]
    gap = 2 if sum(widths) + 2 * (len(widths) - 1) <= width else 1
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, gap - 1, 0, 0),
              header_style="bold")
    for header, justify in columns:
        t.add_column(header, justify=justify, no_wrap=header not in wrap,
                     overflow="fold" if header in wrap else "crop", style=(styles or {}).get(header))
    for r in rows:
        t.add_row(*r)
    return t


def print_header(problem: Problem, console: Console) -> None:
    for line, style in problem_header(problem):
        console.print(line, style=style, markup=False, highlight=False)


def pareto_table(problem: Problem, res: dict, console: Console, *, top: int | None = None,
                 explain: bool = False) -> None:
    rows = res["pareto"] if not top else res["pareto"][:top]
    total = problem.total_gpus
    price = any(r["usd_per_million_tokens"] is not None for r in rows)
    loaded = "traffic" in res
    # Under traffic: goodput (the highest rate meeting every SLO) and the latencies at the
    # operating rate, with the percentile SLOs as columns.
    pct = [(f"{x.metric}_{x.stat}_s", f"{x.stat.upper()}\n{x.metric.upper()}") for x in problem.slo.percentiles] \
        if loaded else []
    columns = [("#", "right"), ("placement", "left"), ("GPUs", "right"), ("batch", "right")]
    columns += [("goodput\nreq/s", "right"), ("tok/s\n/GPU", "right")] if loaded else \
        [("tok/s\ncluster", "right"), ("tok/s\n/GPU", "right")]
    # With percentile SLOs the percentiles stand in for the means (the JSON keeps both).
    means = [] if pct else [("TTFT", "right"), ("TPOT", "right")]
    columns += [("tok/s\n/user", "right")] + means + [(n, "right") for _, n in pct]
    if price:
        columns.append(("$/M\ntok", "right"))
    columns += [("limit", "left")] if loaded else [("mem\nfree", "right")]
    columns += [("binds", "left")]
    cells = []
    for k, r in enumerate(rows, 1):
        c = [str(k), r["placement"], str(r["gpus"]) if r["gpus"] == total else f"{r['gpus']}/{total}",
             str(r["batch"])]
        c += [compact(r["goodput_rps"]), compact(r["output_tokens_per_s_per_gpu"])] if loaded else \
            [compact(r["output_tokens_per_s"]), compact(r["output_tokens_per_s_per_gpu"])]
        c += [compact(r["tokens_per_s_per_user"])] + ([] if pct else [duration(r["ttft_s"]), duration(r["tpot_s"])])
        c += [duration(r.get(key)) for key, _ in pct]
        if price:
            c.append(money(r["usd_per_million_tokens"]))
        c += [r.get("slo_binding") or "-"] if loaded else [percent(r["memory_headroom"])]
        c += [BINDS.get(r["bottleneck"], r["bottleneck"])]
        cells.append(c)
    print_header(problem, console)
    if loaded:
        tr = res["traffic"]
        at = f"at the target rate {tr['target_rate_rps']:g} req/s" if tr["target_rate_rps"] else "at the goodput"
        console.print(f"traffic: {tr['description']}; latencies {at}; goodput = highest rate meeting every SLO",
                      markup=False, highlight=False)
    console.print(ranking(problem), markup=False, highlight=False)
    console.print(fitted_table(columns, cells, console.width, wrap=("placement",), styles={"binds": "yellow"}))
    _notes(problem, res, rows, console, explain)


def _notes(problem: Problem, res: dict, rows: list[dict], console: Console, explain: bool) -> None:
    total = problem.total_gpus
    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    for k, r in enumerate(rows if explain else rows[:1], 1):
        cap = f" (batch cap {r['max_batch']})" if r["max_batch"] != r["batch"] and "cap" not in r["why"] else ""
        say(f"{k}. {r['why']}{cap}")
    bands = list(dict.fromkeys(r["error_band"] for r in rows if r.get("error_band")))
    if bands:
        say(f"expected error of these estimates ({problem.engine.name}): " + "; ".join(bands))
    idle = sorted({total - r["gpus"] for r in rows if r["gpus"] < total})
    if idle:
        say(f"n/{total} GPUs: the layout uses n of the {total} GPUs and leaves the rest idle")
    if explain:
        shown = {BINDS.get(r["bottleneck"], r["bottleneck"]) for r in rows}
        legend = "; ".join(f"{k} = {v}" for k, v in BINDS_LEGEND.items() if k in shown)
        say("batch: sequences in flight per replica; tok/s: output tokens per second of the whole "
            "placement, per GPU it uses, per user (1/TPOT); mem free: share of HBM left; binds: " + legend)
    n, shown_n = len(res["pareto"]), len(rows)
    more = f", top {shown_n} shown" if shown_n < n else ""
    pruned = ", ".join(f"{v:,} {k}" for k, v in res["pruned"].items()) or "none"
    hint = "" if explain else "; --explain: why every row binds"
    say(f"Pareto front of {', '.join(res['objectives'])}: {n} placements{more}{hint}")
    say(f"{res['method']}: evaluated {res['evaluated']:,} placements in {res['seconds']:.2f} s; pruned: {pruned}")
    for note in res.get("notes", []):
        say(note)
