"""Calibration profiles: an `Efficiency` saved as YAML, to be applied with `--calibration`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import yaml

from ..catalog import _yaml
from ..catalog.hardware import Efficiency, Hardware, efficiency_from_mapping
from ..errors import SpecError


def save_profile(path: str | Path, hardware: str, eff: Efficiency, errors: dict[str, float]) -> None:
    doc = {
        "hardware": hardware,
        "efficiency": {k: v for k, v in asdict(eff).items() if v is not None},
        "fit_median_abs_error": {k: round(v, 4) for k, v in errors.items()},
    }
    header = ("# parasearch calibration profile, written by `parasearch calibrate`.\n"
              "# Apply with --calibration; numbers are fractions of the hardware datasheet (see docs/calibration.md).\n")
    Path(path).write_text(header + yaml.safe_dump(doc, sort_keys=False))


def load_profile(path: str | Path) -> tuple[str | None, Efficiency]:
    doc = _yaml.load(path)
    if not isinstance(doc.data, dict) or "efficiency" not in doc.data:
        raise SpecError("not a calibration profile (no 'efficiency' mapping)", file=str(path), line=1)
    hw = doc.data.get("hardware")
    return (str(hw) if hw else None), efficiency_from_mapping(doc)


def apply_profile(hw: Hardware, path: str | Path | None) -> Hardware:
    if not path:
        return hw
    name, eff = load_profile(path)
    if name and name != hw.name:
        raise SpecError(f"profile was fitted for '{name}', not '{hw.name}'", file=str(path),
                        hint="calibrate for this hardware or drop --calibration")
    return hw.with_efficiency(eff)
