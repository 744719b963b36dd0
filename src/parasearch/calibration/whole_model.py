"""Whole-model measurements: the validate CSV format, and estimates for each of its rows."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec, load_model
from ..cost.layout import Layout
from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS, Precision
from ..cost.iteration import decode_step, prefill_step
from ..errors import ParasearchError, SpecError
from ..space.rules import placement_problems

REQUIRED = ("hardware", "model", "phase", "batch", "context", "step_time_s")
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
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError("no such file", file=file)
    try:
        text = p.read_text(encoding="utf-8-sig")  # spreadsheets save a byte-order mark
    except (UnicodeDecodeError, OSError):
        raise SpecError("cannot read as UTF-8 text", file=file) from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SpecError(f"missing column(s) {', '.join(missing)}", file=file, line=1,
                        hint="header must have " + ",".join(REQUIRED) + " (optional: " + ",".join(OPTIONAL) + ")")
    rows: list[Row] = []
    for i, raw in enumerate(reader, start=2):
        r = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(r.values()):
            continue

        def integer(col: str, default: int | None = None) -> int:
            v = r.get(col, "")
            if v == "" and default is not None:
                return default
            try:
                x = float(v)
            except ValueError:
                x = float("nan")
            if not math.isfinite(x) or x <= 0 or x != int(x) or x > 1e9:
                raise SpecError(f"must be a positive integer, got {v!r}", file=file, line=i, field=col)
            return int(x)

        try:
            t = float(r["step_time_s"])
        except ValueError:
            raise SpecError(f"must be a number, got {r['step_time_s']!r}", file=file, line=i, field="step_time_s") from None
        if not t > 0 or not math.isfinite(t):
            raise SpecError(f"must be a positive number of seconds, got {r['step_time_s']!r}", file=file, line=i,
                            field="step_time_s")
        if r["phase"] not in ("decode", "prefill"):
            raise SpecError(f"must be decode or prefill, got {r['phase']!r}", file=file, line=i, field="phase")
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


def estimate_rows(rows: list[Row], models: dict[str, ModelSpec], hws: dict[str, Hardware],
                  engines: dict[str | None, Engine], file: str) -> np.ndarray:
    out = np.zeros(len(rows))
    for i, r in enumerate(rows):
        m = models[r.model]
        problems = placement_problems(m, r.tp, r.pp, r.ep, 1, False)
        if problems:
            raise SpecError("; ".join(problems), file=file, line=r.line)
        fn = decode_step if r.phase == "decode" else prefill_step
        sc = fn(m, hws[r.hardware], engines[r.engine], Layout.of(r.tp, r.pp, r.ep), Precision(r.weights, r.kv_cache),
                r.batch, r.context)
        out[i] = sc.tick[0]
    return out


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
