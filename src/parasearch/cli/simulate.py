"""`parasearch simulate`: replay a problem's traffic through the scheduler simulator for one placement,
next to what the analytic load model says."""

from __future__ import annotations

import re
from typing import Optional

import typer
from rich.table import Table

from ..errors import ParasearchError
from ._common import err, fmt_s, out, positive, print_json, write_file

_TOKEN = re.compile(r"^(tp|pp|ep|dp|x|b)(\d+)$|^(attndp|attn-dp|attn_dp)$", re.I)


def parse_placement(text: str) -> dict:
    """'TP2 PP2 EP8 attnDP x4 b256' (any order; x or DP for replicas, b for the batch cap) -> degrees."""
    got: dict = {}
    for tok in text.replace(",", " ").split():
        m = _TOKEN.match(tok.strip())
        if not m:
            raise ParasearchError(f"--placement: cannot read {tok!r}",
                                  hint="write like 'TP2 PP1 EP1 x4 b256' (x or DP: replicas, b: batch cap, attnDP)")
        if m.group(3):
            got["attn_dp"] = True
            continue
        key = {"x": "dp", "b": "max_batch"}.get(m.group(1).lower(), m.group(1).lower())
        if key in got:
            raise ParasearchError(f"--placement: {m.group(1)} given twice")
        got[key] = int(m.group(2))
    return got


def simulate(
    problem_file: str = typer.Argument(..., metavar="PROBLEM.yaml", help="Problem file (its model, cluster, traffic, SLOs)."),
    placement: Optional[str] = typer.Option(None, help="Placement, e.g. 'TP2 PP1 x4 b256' (or use --tp/--pp/...)."),
    tp: Optional[int] = typer.Option(None, help="Tensor-parallel degree."),
    pp: Optional[int] = typer.Option(None, help="Pipeline stages."),
    ep: Optional[int] = typer.Option(None, help="Expert-parallel degree."),
    dp: Optional[int] = typer.Option(None, help="Replicas (default: as many as the cluster holds)."),
    attn_dp: bool = typer.Option(False, "--attn-dp", help="Attention data parallelism."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Sequences in flight per replica (default 256)."),
    rate: Optional[float] = typer.Option(None, help="Arrival rate, req/s over the placement (default: the problem's "
                                                    "rate, else the model's goodput, else 80% of saturation)."),
    requests: int = typer.Option(20_000, help="Requests to simulate."),
    seed: int = typer.Option(0, help="Seed of synthetic arrivals and lengths."),
    find_goodput: bool = typer.Option(False, "--goodput", help="Also find the simulated goodput (bisection on the rate)."),
    plot: Optional[str] = typer.Option(None, help="Write a PNG of P50/P90/P99 TTFT and TPOT against the arrival rate: "
                                                  "simulated points, the model's curves, the knee and the goodput."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Simulate one placement under the problem's traffic and print latency percentiles (simulated and modelled)."""
    from ..cost.layout import Layout
    from ..search.goodput import evaluate_load
    from ..simulate.run import goodput as sim_goodput
    from ..simulate.run import replica, simulate as run_sim
    from ..space.enumerate import Space
    from ..space.packing import replicas_that_fit
    from ..space.rules import check_placement
    from ..spec import load_problem

    for name, v in (("--tp", tp), ("--pp", pp), ("--ep", ep), ("--dp", dp), ("--max-batch", max_batch),
                    ("--requests", requests)):
        positive(name, v)
    positive("--rate", rate, integer=False)
    if requests < 100:
        raise ParasearchError("--requests must be at least 100 (percentiles need a sample)")
    degrees = parse_placement(placement) if placement else {}
    for key, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp), ("max_batch", max_batch)):
        if v is not None:
            if key in degrees and degrees[key] != v:
                raise ParasearchError(f"--{key.replace('_', '-')} {v} contradicts --placement")
            degrees[key] = v
    if attn_dp:
        degrees["attn_dp"] = True
    problem = load_problem(problem_file)
    if len(problem.pools) > 1:
        raise ParasearchError("simulate runs one GPU pool; this problem has several")
    pool = problem.pool
    t, p, e, a = degrees.get("tp", 1), degrees.get("pp", 1), degrees.get("ep", 1), degrees.get("attn_dp", False)
    fit = replicas_that_fit(t * e, p, pool)
    d = degrees.get("dp", fit)
    check_placement(problem.model, t, p, e, d, a)
    if d > fit or fit < 1:
        raise ParasearchError(f"{d} replica(s) of {t * p * e} GPUs do not fit {pool.gpus} GPUs "
                              f"({pool.nodes} nodes of {pool.gpus_per_node})")
    mb = degrees.get("max_batch", 256)
    import numpy as np

    space = Space(Layout.of(t, p, e, d, a), np.array([float(mb)]), pool)
    traffic = problem.traffic_or_default()
    from ..search.evaluate import evaluate

    ev = evaluate(problem, space)
    if not ev.serving.fits[0]:
        raise ParasearchError(f"the placement does not fit: {ev.reason[0]}")
    load = ev.load if ev.load is not None else evaluate_load(problem, space, ev.serving.fits)
    model_goodput = float(load.goodput[0])
    targets = problem.slo.targets
    # Without SLOs the "goodput" is the replica's saturation: simulate at 80% of it instead.
    the_rate = rate or traffic.rate or (model_goodput if targets else 0.8 * model_goodput)
    if not the_rate or the_rate <= 0:
        raise ParasearchError("no rate to simulate at: the model finds no rate meeting the SLOs",
                              hint="give --rate")
    rep = replica(problem.model, pool.hardware, problem.engine, problem.precision, space.layout, mb, traffic)

    def run(r, n=requests):
        return run_sim(problem.model, pool.hardware, problem.engine, problem.precision, space.layout, mb, traffic,
                       r, requests=n, seed=seed, rep=rep)

    sim = run(the_rate)
    modelled = load.percentiles([0], the_rate)[0]
    res = {"problem": problem.name, "placement": _label(t, p, e, d, a) + f" b{mb}", "rate_rps": the_rate,
           "traffic": traffic.description, "simulated": sim.summary(),
           "model": {m: {"mean": modelled.get(f"{m}_mean_s"), **{f"p{q}": modelled.get(f"{m}_p{q}_s")
                                                                 for q in (50, 90, 99)}}
                     for m in ("ttft", "tpot", "e2e")},
           "model_goodput_rps": model_goodput, "slo": [t_.name for t_ in targets],
           "meets_slo": sim.meets(targets) if targets else None}
    if find_goodput and targets:
        res["simulated_goodput_rps"] = sim_goodput(lambda r: run(r, min(requests, 10_000)), targets,
                                                   hi=max(model_goodput, the_rate) * 1.3,
                                                   lo=max(model_goodput, the_rate) * 0.2, steps=9)
    if plot:
        from ..report.load_plot import simulated_load_plot

        write_file(plot, "the plot", lambda path: simulated_load_plot(problem, load, 0, res, run, path))
    if as_json:
        print_json(res)
    else:
        _table(res, targets)
    if plot:
        err.print(f"wrote plot to {plot}")


def _label(tp, pp, ep, dp, adp) -> str:
    from ..report.rows import placement_label

    return placement_label(tp, pp, ep, dp, adp)


def _table(res: dict, targets) -> None:
    sim = res["simulated"]
    t = Table(title=f"{res['problem']}: {res['placement']} at {res['rate_rps']:.4g} req/s  |  {res['traffic']}",
              title_justify="left", caption=f"simulated {sim['requests']:,} requests ({sim['measured']:,} measured, "
                                            f"the first 10% warm the cache) in {sim['sim_seconds']:.2f} s; "
                                            f"model = the analytic load model the search uses",
              caption_justify="left")
    for c in ("", "mean", "P50", "P90", "P99"):
        t.add_column(c, justify="left" if not c else "right")
    for m, name in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "E2E")):
        t.add_row(f"{name} simulated", *(fmt_s(sim[m][k]) for k in ("mean", "p50", "p90", "p99")))
        t.add_row(f"{name} model", *(fmt_s(res["model"][m][k]) for k in ("mean", "p50", "p90", "p99")),
                  end_section=True)
    out.print(t)
    line = f"model goodput {res['model_goodput_rps']:.4g} req/s"
    if "simulated_goodput_rps" in res:
        g = res["simulated_goodput_rps"]
        line += f", simulated {g:.4g} req/s" + (f" (model {res['model_goodput_rps'] / g - 1:+.1%})" if g else "")
    if targets:
        line += f"; SLO {', '.join(res['slo'])}: {'met' if res['meets_slo'] else 'missed'} in the simulation"
    if sim["unserved"]:
        line += f"; {sim['unserved']:,} requests never fit the KV cache"
    out.print(line)
