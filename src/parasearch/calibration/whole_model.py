"""Whole-model measurements: the validate CSV format, and estimates for each of its rows."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec, load_model
from ..cost.layout import Layout
from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS, Precision
from ..cost.iteration import decode_step, prefill_step
from ..errors import ParasearchError, SpecError
from ..space.rules import placement_problems

REQUIRED = ("hardware", "model", "phase", "batch", "context", "step_time_s")
MAX_CSV_BYTES = 1_000_000    # ~20,000 rows; measurement campaigns have hundreds
MAX_ROWS = 10_000
MAX_FIELD_CHARS = 4096       # a model path is the longest field
MAX_COUNT = 100_000_000      # batch, context, tp/pp/ep: beyond any real run
STEP_BOUNDS_S = (1e-6, 1e4)  # one forward pass: more than a microsecond, less than hours
OPTIONAL = ("tp", "pp", "ep", "weights", "kv_cache", "engine")


@dataclass(frozen=True)
class Row:
    line: int
    hardware: str
    model: str
    phase: str
    batch: int
    context: int
    step_time_s: float
    tp: int = 1
    pp: int = 1
    ep: int = 1
    weights: str = "bf16"
    kv_cache: str = "bf16"
    engine: str | None = None


def read_rows(path: str | Path) -> list[Row]:
    file = files.short(str(path))
    text = files.read_text(path, limit=MAX_CSV_BYTES, what="a measurement CSV")  # drops a spreadsheet's BOM
    lines = text.count("\n")
    if lines > MAX_ROWS + 1:
        raise SpecError(f"holds {lines:,} lines; at most {MAX_ROWS:,} measurement rows are read", file=file,
                        hint="split the file")
    long = next((i for i, line in enumerate(text.splitlines(), start=1) if len(line) > 8 * MAX_FIELD_CHARS), None)
    if long:
        raise SpecError(f"line is over {8 * MAX_FIELD_CHARS:,} characters; not a measurement row", file=file, line=long)
    reader = csv.DictReader(text.splitlines())
    try:
        return _rows(reader, file)
    except csv.Error as exc:  # an unclosed quote, a field past the csv module's limit
        raise SpecError(f"not a valid CSV: {exc}", file=file, line=reader.line_num) from None


def _rows(reader: csv.DictReader, file: str) -> list[Row]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SpecError(f"missing column(s) {', '.join(missing)}", file=file, line=1,
                        hint="header must have " + ",".join(REQUIRED) + " (optional: " + ",".join(OPTIONAL) + ")")
    rows: list[Row] = []
    for i, raw in enumerate(reader, start=2):
        r = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None and isinstance(v, str)}
        if not any(r.values()):
            continue
        long = next((k for k, v in r.items() if len(v) > MAX_FIELD_CHARS), None)
        if long:
            raise SpecError(f"field is over {MAX_FIELD_CHARS:,} characters", file=file, line=i, field=long[:40])

        def integer(col: str, default: int | None = None) -> int:
            v = r.get(col, "")
            if v == "" and default is not None:
                return default
            try:
                x = float(v)
            except ValueError:
                x = float("nan")
            if not math.isfinite(x) or x <= 0 or x != int(x) or x > MAX_COUNT:
                raise SpecError(f"must be a positive integer up to {MAX_COUNT:,}, got {v[:40]!r}", file=file, line=i,
                                field=col)
            return int(x)

        try:
            t = float(r["step_time_s"])
        except ValueError:
            raise SpecError(f"must be a number, got {r['step_time_s'][:40]!r}", file=file, line=i,
                            field="step_time_s") from None
        if not STEP_BOUNDS_S[0] <= t <= STEP_BOUNDS_S[1]:
            raise SpecError(f"must be a step time in seconds from {STEP_BOUNDS_S[0]:g} to {STEP_BOUNDS_S[1]:g}, "
                            f"got {r['step_time_s'][:40]!r}", file=file, line=i, field="step_time_s")
        if r["phase"] not in ("decode", "prefill"):
            raise SpecError(f"must be decode or prefill, got {r['phase'][:40]!r}", file=file, line=i, field="phase")
        w = r.get("weights") or "bf16"
        kv = r.get("kv_cache") or "bf16"
        if w not in WEIGHT_FORMATS:
            raise SpecError(f"must be one of {', '.join(WEIGHT_FORMATS)}", file=file, line=i, field="weights")
        if kv not in KV_FORMATS:
            raise SpecError(f"must be one of {', '.join(KV_FORMATS)}", file=file, line=i, field="kv_cache")
        for col in ("hardware", "model"):
            if not r[col]:
                raise SpecError("is empty", file=file, line=i, field=col)
        rows.append(Row(i, r["hardware"], r["model"], r["phase"], integer("batch"), integer("context"), t,
                        integer("tp", 1), integer("pp", 1), integer("ep", 1), w, kv, r.get("engine") or None))
    if not rows:
        raise SpecError("holds no measurement rows", file=file)
    return rows


def resolve_model(name: str, csv_file: str | Path) -> ModelSpec:
    """A catalog name, or a config.json path (relative paths are taken from the CSV's folder)."""
    if name.endswith(".json") or "/" in name:
        p = Path(name)
        if not p.is_absolute() and not p.exists():
            p = Path(csv_file).parent / p
        return load_model(p)
    return load_model(name)


def row_estimator(rows: list[Row], models: dict[str, ModelSpec], file: str):
    """Check every row's placement once and group the rows by (model, hardware, engine, phase,
    precision); the returned function gives the oracle's step time of every row for given
    hardware and engines with one vectorized call per group, so a fit that asks for hundreds of
    predictions and a long CSV both stay fast."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        problems = placement_problems(models[r.model], r.tp, r.pp, r.ep, 1, False)
        if problems:
            raise SpecError("; ".join(problems), file=file, line=r.line)
        groups.setdefault((r.model, r.hardware, r.engine, r.phase, r.weights, r.kv_cache), []).append(i)
    prepared = []
    for (model, hw, engine, phase, weights, kv), idx in groups.items():
        sel = [rows[i] for i in idx]
        layout = Layout.of(np.array([r.tp for r in sel]), np.array([r.pp for r in sel]), np.array([r.ep for r in sel]))
        prepared.append((np.array(idx), models[model], hw, engine, decode_step if phase == "decode" else prefill_step,
                         layout, Precision(weights, kv), np.array([float(r.batch) for r in sel]),
                         np.array([float(r.context) for r in sel])))

    def estimate(hws: dict[str, Hardware], engines: dict[str | None, Engine]) -> np.ndarray:
        out = np.zeros(len(rows))
        for idx, model, hw, engine, fn, layout, prec, batch, context in prepared:
            out[idx] = fn(model, hws[hw], engines[engine], layout, prec, batch, context).tick
        return out

    return estimate


def estimate_rows(rows: list[Row], models: dict[str, ModelSpec], hws: dict[str, Hardware],
                  engines: dict[str | None, Engine], file: str) -> np.ndarray:
    return row_estimator(rows, models, file)(hws, engines)


def load_row_inputs(rows: list[Row], file: str, hardware_loader, engine_loader) -> tuple[dict, dict, dict]:
    models: dict[str, ModelSpec] = {}
    hws: dict[str, Hardware] = {}
    engines: dict[str | None, Engine] = {}
    for r in rows:
        try:
            if r.model not in models:
                models[r.model] = resolve_model(r.model, file)
            if r.hardware not in hws:
                hws[r.hardware] = hardware_loader(r.hardware)
            if r.engine not in engines:
                engines[r.engine] = engine_loader(r.engine)
        except SpecError:
            raise
        except ParasearchError as exc:
            raise SpecError(exc.message, file=file, line=r.line, hint=exc.hint) from None
    return models, hws, engines
