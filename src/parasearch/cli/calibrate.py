"""`parasearch calibrate`: fit the oracle to your own measurements.

- kernels.json (kernel timings): the GPU's kernel efficiencies, as a calibration profile.
- step-time CSV: three composition parameters of one GPU, as a calibration profile.
- published-throughput CSV (data/published/throughput.csv's columns), or a folder of a
  deployment's benchmark results (each with its plan.json): an engine profile's constants,
  written as a complete engine profile YAML to use with --engine.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer

from ..errors import ParasearchError, SpecError
from ._common import err, out, print_json, write_file


def calibrate(
    file: str = typer.Argument(..., help="Kernel timings (kernels.json), step times (validate CSV), published "
                                         "serving throughput (the columns of data/published/throughput.csv), or a "
                                         "folder of benchmark results of deployments (bench.sh's results/ with the "
                                         "plan.json beside them)."),
    hardware: Optional[str] = typer.Option(None, "--hardware", "-H", help="Kernel and step-time fits: the GPU "
                                           "the measurements ran on."),
    output: str = typer.Option(..., "-o", "--output", help="Profile YAML to write."),
    engine: str = typer.Option("reference", help="Step-time fits: engine for rows without an engine column. "
                               "Throughput fits: the engine profile to refit (vllm, sglang, trtllm or a YAML)."),
    fit: Optional[list[str]] = typer.Option(None, "--fit", help="Throughput fits: a constant to fit as "
                                            "FIELD=LOW:HIGH (repeatable); default: host overhead, and the kernel "
                                            "factors the rows can inform."),
    start: Optional[str] = typer.Option(None, "--from", help="Start from this profile instead of the catalog's values."),
    as_json: bool = typer.Option(False, "--json", help="Print the fitted values as JSON."),
) -> None:
    """Fit the oracle to your engine: kernel efficiencies from kernels.json, launch cost and
    memory/compute scale from step times, or an engine profile's constants from serving throughput.
    Use the result with --calibration (GPU profiles) or --engine (engine profiles)."""
    from ..calibration.published import looks_published, read_published

    if Path(file).is_dir() or file.endswith(".jsonl") or (file.endswith(".json") and not _is_kernels(file)):
        from ..calibration.bench_results import collect, to_row

        rows = [to_row(m, p) for m, p, _ in collect([file])]
        _engine_fit(rows, Path(file).name, engine, fit or [], output, as_json, what="benchmark results")
        return
    if file.endswith(".csv") and looks_published(file):
        _engine_fit(read_published(file), Path(file).name, engine, fit or [], output, as_json)
        return
    if not hardware:
        raise ParasearchError("kernel and step-time fits need --hardware (the GPU the measurements ran on)")
    _gpu_fit(file, hardware, output, engine, start, as_json)


def _gpu_fit(file: str, hardware: str, output: str, engine: str, start: str | None, as_json: bool) -> None:
    from ..calibration.fit import MAX_FIT_ERROR, clamp_to_bounds, fit_kernels, fit_whole_model  # scipy: lazy
    from ..calibration.measurements import read_kernels
    from ..calibration.profile import apply_profile, save_profile
    from ..calibration.whole_model import load_row_inputs, read_rows, row_estimator
    from ..catalog.engines import load_engine
    from ..catalog.hardware import load_hardware

    hw = apply_profile(load_hardware(hardware), start)
    if file.endswith(".csv"):
        rows = [r for r in read_rows(file) if r.hardware == hw.name]
        if not rows:
            raise ParasearchError(f"{file} has no rows for hardware '{hw.name}'")
        models, _, engines = load_row_inputs(rows, file, load_hardware, lambda e: load_engine(e or engine))
        import numpy as np

        measured = np.array([r.step_time_s for r in rows])
        estimate = row_estimator(rows, models, file)

        def predict(h):
            return estimate({hw.name: h}, engines)

        eff, errors = fit_whole_model(hw, predict, measured, source=f"whole-model fit to {Path(file).name}")
    else:
        measured = read_kernels(file)
        eff, errors = fit_kernels(hw, measured, source=f"kernel fit to {Path(file).name}")
        if not errors and not measured.copy_bytes_per_s:
            raise ParasearchError(f"{file} holds no kernel family with enough rows to fit",
                                  hint="gemm and moe_expert_ffn need 5 rows, attention_decode 3, attention_prefill 2")
    bad = {k: v for k, v in errors.items() if k != "whole_model_before" and not v <= MAX_FIT_ERROR}
    if bad:
        k, v = max(bad.items(), key=lambda kv: kv[1] if kv[1] == kv[1] else float("inf"))
        raise SpecError(f"the oracle cannot follow these measurements: median error {v:.0%} for {k} after the fit; "
                        "no profile written", file=file, hint="check that times are in seconds and shapes are right")
    changed = [f.name for f in fields(eff) if f.name != "source" and getattr(eff, f.name) != getattr(hw.efficiency, f.name)]
    eff, notes = clamp_to_bounds(eff, changed)
    for n in notes:
        err.print(f"note: {n}")
    write_file(output, "the profile", lambda path: save_profile(path, hw.name, eff, errors))
    if as_json:
        from dataclasses import asdict
        print_json({"hardware": hw.name, "efficiency": asdict(eff), "fit_median_abs_error": errors, "output": output})
    else:
        for k, v in errors.items():
            err.print(f"{k}: median |error| {v:.1%}")
        err.print(f"wrote {output}")


def _parse_fit(spec: str, engine: str):
    from ..calibration.serving_fit import Param

    field, _, bounds = spec.partition("=")
    lo, _, hi = bounds.partition(":")
    try:
        lo_f, hi_f = float(lo), float(hi)
    except ValueError:
        lo_f = hi_f = float("nan")
    if not field or not (0 < lo_f < hi_f < float("inf")):
        raise ParasearchError(f"--fit {spec!r} is not FIELD=LOW:HIGH with 0 < LOW < HIGH",
                              hint="e.g. --fit host_per_seq_s=1e-7:1e-4")
    return Param(engine, field.strip(), lo_f, hi_f)


def _is_kernels(file: str) -> bool:
    """kernels.json (kernel timings) rather than a benchmark result."""
    from ..calibration.bench_results import read_results

    try:
        return not read_results(file)
    except ParasearchError:
        return True


def _engine_fit(all_rows: list, name: str, engine_name: str, fit_specs: list[str], output: str, as_json: bool,
                what: str = "rows") -> None:
    """Refit an engine profile's constants to published-style rows (a published-throughput CSV's,
    or benchmark results turned into rows); `name` names their source in messages and the YAML."""
    from dataclasses import fields, replace

    import numpy as np

    from ..calibration.published import estimate_published, load_inputs
    from ..calibration.serving_fit import default_params, fit, influence, start
    from ..catalog.engines import Engine, load_engine, to_yaml
    from ..catalog.hardware import load_hardware
    from ..catalog.models import load_model
    from ..cost.precision import math_format

    base = load_engine(engine_name)
    file = name
    rows = [r for r in all_rows if r.engine == base.framework]
    if not rows:
        raise ParasearchError(f"{name} has no {what} of engine '{base.framework}'",
                              hint="the rows' engine must match the profile's framework (--engine)")
    models, hws, _ = load_inputs(rows, file, load_model, load_hardware, lambda name: base)
    engines = {base.framework: base}
    profile_of = lambda r: base.framework  # noqa: E731  (every row runs the profile being fitted)
    kinds = {"always"}
    kinds |= {"quantized"} if any(math_format(r.weights, hws[r.hardware]) != "bf16" for r in rows) else set()
    kinds |= {"moe"} if any(models[r.model].is_moe for r in rows) else set()
    kinds |= {"attention-dp"} if any(r.attn_dp for r in rows) else set()
    # Two pipeline depths or more tell the fixed hand-off from the per-stage one.
    kinds |= {"pipeline"} if len({r.pp for r in rows if r.pp > 1}) >= 2 else set()
    params = [_parse_fit(s, base.framework) for s in fit_specs] or default_params(base.framework, kinds)
    known = {f.name for f in fields(Engine)}
    for p in params:
        if p.field not in known or not isinstance(getattr(base, p.field), (int, float)):
            raise ParasearchError(f"--fit {p.field}: not a numeric engine constant")
    measured = np.array([r.measured for r in rows])
    ok = np.isfinite(estimate_published(rows, models, hws, engines, file, profile_of))
    rows = [r for r, k in zip(rows, ok) if k]
    measured = measured[ok]
    if len(rows) < len(params):
        raise ParasearchError(f"{len(rows)} usable rows cannot fit {len(params)} constants",
                              hint="add rows or fit fewer constants with --fit")

    def predict(e, h):
        return estimate_published(rows, models, h, e, file, profile_of)

    x0 = start(params, engines, hws)
    res = fit(params, predict, measured, engines, hws, max_nfev=400)
    loo = influence(res, predict, measured, x0)
    # The fit lowers a robust loss on the log ratios (serving_fit.fit): the median may rise while
    # the worst rows come in, so the summary shows the tail and the share within +-25% too.
    abs_before, abs_after = np.abs(np.expm1(res.before)), np.abs(np.expm1(res.after))
    before, after = float(np.median(abs_before)), float(np.median(abs_after))
    summary = {"median_error_before": before, "median_error_after": after,
               "max_error_before": float(abs_before.max()), "max_error_after": float(abs_after.max()),
               "within_25_before": float(np.mean(abs_before <= 0.25)),
               "within_25_after": float(np.mean(abs_after <= 0.25))}
    fitted = res.engines[base.framework]
    note = f"fitted to {len(rows)} {what} of {name} by `parasearch calibrate` (bounds in log space)"
    sources = dict(base.sources)
    for p in params:
        sources[_path_of(p.field)] = note
    fitted = replace(fitted, name=f"{base.name}-calibrated", sources=tuple(sources.items()),
                     description=f"{base.description}; constants refitted to {name}")
    write_file(output, "the engine profile", lambda path: Path(path).write_text(to_yaml(
        fitted, f"Engine profile refitted by `parasearch calibrate {name} --engine {engine_name}`.\n"
                f"Median |error| on its {len(rows)} rows: {before:.1%} before, {after:.1%} after.")))
    table = [{**row, "start": float(s), "median_error_without": w}
             for row, s, w in zip(res.table(), x0, loo)]
    if as_json:
        print_json({"engine": base.name, "rows": len(rows), **summary, "parameters": table, "output": output})
        return
    from rich.table import Table

    t = Table(title=f"{base.name}: {len(rows)} rows, median |error| {before:.1%} -> {after:.1%}\n"
                    f"worst {summary['max_error_before']:.0%} -> {summary['max_error_after']:.0%}, "
                    f"within ±25% {summary['within_25_before']:.0%} -> {summary['within_25_after']:.0%}",
              title_justify="left")
    for col in ("constant", "start", "fitted", "bounds", "error if reset"):
        t.add_column(col, justify="left" if col == "constant" else "right")
    for r in table:
        flag = " (at bound)" if r["at_bound"] else ""
        t.add_row(r["parameter"].split(":", 1)[1], f"{r['start']:.4g}", f"{r['value']:.4g}{flag}",
                  f"{r['lower']:g}..{r['upper']:g}", f"{r['median_error_without']:.1%}")
    out.print(t)
    err.print(f"wrote {output} (use it with --engine {output})")


def _path_of(field: str) -> str:
    from ..catalog.engines import _FIELDS

    return next(p for p, name, *_ in _FIELDS if name == field)
