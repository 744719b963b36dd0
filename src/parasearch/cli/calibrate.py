"""`parasearch calibrate`: fit efficiency parameters to the user's own measurements."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ParasearchError
from ._common import err, print_json, write_file


def calibrate(
    file: str = typer.Argument(..., help="Kernel timings (kernels.json) or whole-model step times (validate CSV)."),
    hardware: str = typer.Option(..., "--hardware", "-H", help="The GPU the measurements ran on."),
    output: str = typer.Option(..., "-o", "--output", help="Profile YAML to write."),
    engine: str = typer.Option("reference", help="Whole-model fits: engine for rows without an engine column."),
    start: Optional[str] = typer.Option(None, "--from", help="Start from this profile instead of the catalog's values."),
    as_json: bool = typer.Option(False, "--json", help="Print the fitted values as JSON."),
) -> None:
    """Fit the oracle to your engine: kernel efficiencies from kernels.json, or launch cost and
    memory/compute scale from whole-model rows. Use the result with --calibration."""
    from ..calibration.fit import fit_kernels, fit_whole_model  # scipy: only when fitting
    from ..calibration.measurements import read_kernels
    from ..calibration.profile import apply_profile, save_profile
    from ..calibration.whole_model import estimate_rows, load_row_inputs, read_rows
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

        def predict(h):
            return estimate_rows(rows, models, {hw.name: h}, engines, file)

        eff, errors = fit_whole_model(hw, predict, measured, source=f"whole-model fit to {Path(file).name}")
    else:
        measured = read_kernels(file)
        eff, errors = fit_kernels(hw, measured, source=f"kernel fit to {Path(file).name}")
        if not errors and not measured.copy_bytes_per_s:
            raise ParasearchError(f"{file} holds no kernel family with enough rows to fit",
                                  hint="gemm and moe_expert_ffn need 5 rows, attention_decode 3, attention_prefill 2")
    write_file(output, "the profile", lambda path: save_profile(path, hw.name, eff, errors))
    if as_json:
        from dataclasses import asdict
        print_json({"hardware": hw.name, "efficiency": asdict(eff), "fit_median_abs_error": errors, "output": output})
    else:
        for k, v in errors.items():
            err.print(f"{k}: median |error| {v:.1%}")
        err.print(f"wrote {output}")
