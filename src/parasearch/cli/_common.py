"""Helpers shared by the commands: loading inputs, printing data to stdout and notes to stderr."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from rich.console import Console

from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS, math_format
from ..errors import ParasearchError

PIPE_WIDTH = 120  # columns for output to a pipe or file when COLUMNS does not say


def _width(stream) -> int | None:
    """A terminal: None, so rich reads COLUMNS or asks the terminal. A pipe or file: COLUMNS when it
    is set (rich would otherwise take the width of whatever terminal stdin is), else PIPE_WIDTH."""
    if stream.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and 20 <= int(columns) <= 10_000 else PIPE_WIDTH


out = Console(width=_width(sys.stdout))
err = Console(stderr=True, width=_width(sys.stderr), soft_wrap=True)  # a note is one line, whatever the width


def load_inputs(model: str, hardware: str, engine: str, calibration: str | None):
    """(ModelSpec, Hardware with the calibration applied, Engine)."""
    from ..calibration.profile import apply_profile
    from ..catalog.engines import load_engine, resolve_name
    from ..catalog.hardware import load_hardware
    from ..catalog.models import load_model

    note = resolve_name(engine)[1]
    if note:
        err.print(f"note: {note}")
    return load_model(model), apply_profile(load_hardware(hardware), calibration), load_engine(engine)


def precision_notes(hardware, weights) -> None:
    """One stderr note per GPU that lacks tensor cores for the weight format: the engines then run
    its GEMMs weight-only (weights stored narrow, dequantized into bf16 GEMMs), as vLLM's Marlin
    kernels run FP8 and FP4 checkpoints on Ampere and Hopper."""
    seen = set()
    for hw, fmt in ((h, w) for h in hardware for w in weights):
        math = math_format(fmt, hw)
        if fmt in ("bf16", "int4") or math != "bf16" or (hw.name, fmt) in seen:  # int4: W4A16 by design
            continue
        seen.add((hw.name, fmt))
        err.print(f"note: {hw.name} has no {'FP8' if fmt == 'fp8' else 'FP4'} tensor cores: {fmt} weights are "
                  f"modelled as weight-only quantization ({fmt} weights, bf16 GEMMs), as vLLM's Marlin kernels "
                  "run such checkpoints on GPUs without them")


def check_context(model: ModelSpec, tokens: float, what: str) -> None:
    """Refuse a sequence longer than the model's context window (max_position_embeddings)."""
    if model.max_context and tokens > model.max_context:
        raise ParasearchError(f"{what} is {tokens:,.0f} tokens, beyond {model.name}'s maximum context of "
                              f"{model.max_context:,} tokens (max_position_embeddings)")


def check_format(kind: str, value: str) -> str:
    allowed = WEIGHT_FORMATS if kind == "weights" else KV_FORMATS
    if value not in allowed:
        raise ParasearchError(f"--{kind.replace('_', '-')} {value!r} is not a format", hint="allowed: " + ", ".join(allowed))
    return value


def precision_note(model, weights: str) -> None:
    """A quantized checkpoint estimated in another weight format is used as asked, but said: the
    engine would need a checkpoint in that format. (A bf16 checkpoint with fp8 or int4 weights is
    ordinary quantization and goes unremarked.)"""
    native = model.native_weights
    if native != "bf16" and weights != native:
        err.print(f"note: the {model.name} checkpoint holds {native} weights; using {weights} weights as asked",
                  markup=False, highlight=False, soft_wrap=True)


MAX_COUNT = 10_000_000  # no cluster, batch or context is larger; bigger numbers are typos


def positive(name: str, value: float | None, *, integer: bool = True) -> None:
    if value is None:
        return
    bad = not (value > 0) or not math.isfinite(value) or (integer and int(value) != value)
    if bad or (integer and value > MAX_COUNT):
        kind = f"a positive integer up to {MAX_COUNT:,}" if integer else "a positive number"
        raise ParasearchError(f"{name} must be {kind}, got {value}")


def _clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_file(path: str, what: str, writer) -> None:
    """Run `writer(path)`; a path that cannot be written becomes a one-line error."""
    try:
        writer(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise ParasearchError(f"cannot write {what} to {path}: {reason}") from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_clean(data), indent=2) + "\n")


def fmt_bytes(b: float) -> str:
    return f"{b / 1e9:,.2f} GB"


def fmt_s(s: float | None) -> str:
    if s is None or s != s:
        return "-"
    if s >= 1:
        return f"{s:,.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:,.2f} ms"
    return f"{s * 1e6:,.1f} µs"
