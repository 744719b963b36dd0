"""`parasearch trace`: what a request trace says about traffic."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from ._common import err, out, positive, print_json, write_file


def trace(
    trace_file: str = typer.Argument(..., metavar="TRACE", help="Azure or BurstGPT CSV, or vLLM timed_trace JSONL."),
    time_scale: float = typer.Option(1.0, "--time-scale", help="JSONL only: seconds per timestamp unit (0.001 for ms)."),
    plot: Optional[str] = typer.Option(None, help="Write a PNG: arrivals over time, inter-arrival gaps with the fitted "
                                                  "Gamma, the joint input/output histogram, length distributions."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Summarise a trace: rate, burstiness (inter-arrival CV, fitted Gamma) and length percentiles."""
    from ..traffic.stats import summarize
    from ..traffic.trace import read_trace

    positive("--time-scale", time_scale, integer=False)
    tr = read_trace(trace_file, time_scale)
    s = summarize(tr)
    if plot:
        from ..report.trace_plot import trace_plot

        write_file(plot, "the plot", lambda path: trace_plot(tr, s, path))
    if as_json:
        print_json(s)
    else:
        ia = s["interarrival"]
        t = Table(title=f"{s['file']} ({s['format']}): {s['requests']:,} requests over {s['duration_s']:,.1f} s, "
                        f"{s['rate_rps']:.3g} req/s", title_justify="left")
        for c in ("", "mean", "P50", "P90", "P99", "max"):
            t.add_column(c, justify="left" if not c else "right")
        for name, key in (("input tokens", "input_tokens"), ("output tokens", "output_tokens")):
            d = s[key]
            t.add_row(name, *(f"{d[k]:,.0f}" for k in ("mean", "p50", "p90", "p99", "max")))
        out.print(t)
        out.print(f"inter-arrival: mean {ia['mean_s'] * 1e3:,.1f} ms, CV {ia['cv']:.2f} "
                  f"({'burstier than' if ia['cv'] > 1.05 else 'more regular than' if ia['cv'] < 0.95 else 'close to'}"
                  f" Poisson); Gamma fit ({ia['gamma_fit']}): shape {ia['gamma_shape']:.3g}, "
                  f"scale {ia['gamma_scale_s'] * 1e3:,.1f} ms")
        out.print(f"input/output length correlation {s['input_output_correlation']:+.2f}"
                  + (f"; {s['dropped_failed']:,} failed requests (no output) dropped" if s["dropped_failed"] else ""))
        out.print(f"use it: workload: {{trace: {trace_file}}}" + (f", time_scale: {time_scale:g}" if time_scale != 1 else ""))
    if plot:
        err.print(f"wrote plot to {plot}")
