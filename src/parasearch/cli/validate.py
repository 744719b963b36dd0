"""`parasearch validate`: the oracle's step times next to whole-model measurements."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import ParasearchError
from ._common import fmt_s, out, print_json


def validate(
    file: str = typer.Argument(..., help="CSV: hardware,model,phase,batch,context,step_time_s[,tp,pp,ep,weights,kv_cache,engine]."),
    engine: str = typer.Option("reference", help="Engine for rows without an engine column. Default: reference, "
                               "the PyTorch harness the shipped calibration data come from."),
    calibration: Optional[str] = typer.Option(None, help="Calibration profile applied to rows of its hardware."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compare estimates with measured step times; report the median and max absolute % error."""
    import numpy as np
    from rich.table import Table

    from ..calibration.profile import load_profile
    from ..calibration.whole_model import estimate_rows, load_row_inputs, read_rows
    from ..catalog.engines import load_engine
    from ..catalog.hardware import load_hardware
    from ..space.label import placement_label

    rows = read_rows(file)
    profile = load_profile(calibration) if calibration else None
    if profile and profile[0] and not any(r.hardware == profile[0] for r in rows):
        raise ParasearchError(f"the profile is for '{profile[0]}', which no row of {file} uses")

    def hw_loader(name: str):
        hw = load_hardware(name)
        if profile and (profile[0] in (None, hw.name)):
            hw = hw.with_efficiency(profile[1])
        return hw

    models, hws, engines = load_row_inputs(rows, file, hw_loader, lambda e: load_engine(e or engine))
    est = estimate_rows(rows, models, hws, engines, file)
    meas = np.array([r.step_time_s for r in rows])
    pct = (est / meas - 1.0) * 100.0
    summary = {"count": len(rows), "median_abs_pct_error": float(np.median(np.abs(pct))),
               "max_abs_pct_error": float(np.max(np.abs(pct))), "mean_pct_error": float(np.mean(pct))}
    if as_json:
        print_json({"rows": [{"line": r.line, "hardware": r.hardware, "model": r.model, "phase": r.phase,
                              "batch": r.batch, "context": r.context, "tp": r.tp, "pp": r.pp, "ep": r.ep,
                              "engine": engines[r.engine].name, "measured_s": r.step_time_s,
                              "estimated_s": float(e), "pct_error": float(p)}
                             for r, e, p in zip(rows, est, pct)], **summary})
        return
    t = Table(title=f"validate {file}", title_justify="left")
    for col in ("hardware", "model", "phase", "batch", "context", "placement", "measured", "estimated", "error"):
        t.add_column(col, justify="right" if col not in ("hardware", "model", "phase") else "left")
    for r, e, p in zip(rows, est, pct):
        color = "green" if abs(p) <= 10 else ("yellow" if abs(p) <= 25 else "red")
        t.add_row(r.hardware, r.model, r.phase, str(r.batch), str(r.context), placement_label(r.tp, r.pp, r.ep),
                  fmt_s(r.step_time_s), fmt_s(float(e)), f"[{color}]{p:+.1f}%[/]")
    out.print(t)
    out.print(f"median |error| {summary['median_abs_pct_error']:.1f}%   max |error| {summary['max_abs_pct_error']:.1f}%"
              f"   mean error {summary['mean_pct_error']:+.1f}%  ({len(rows)} rows)")
