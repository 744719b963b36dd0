"""Published end-to-end serving throughput: the CSV format of data/published/throughput.csv
(its README lists the columns), estimates for each row with that row's engine profile, and the
categories validation reports by.

Rows are estimated in groups that share model, hardware, engine, precision and mode, so one
vectorized oracle call covers every layout and workload of a group.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from ..cost.layout import Layout
from ..cost.precision import KV_FORMATS, WEIGHT_FORMATS, Precision
from ..cost.serving import Workload, decode_only, serve
from ..errors import ParasearchError, SpecError
from ..space.rules import placement_problems
from . import harness

COLUMNS = ("source", "engine", "engine_version", "model", "hardware", "gpus", "tp", "pp", "ep", "dp", "attn_dp",
           "weights", "kv_cache", "mode", "input_tokens", "output_tokens", "max_batch",
           "measured_output_tokens_per_s")
MODES = ("serving", "decode-only")
MAX_ROWS = 100_000


@dataclass(frozen=True)
class PublishedRow:
    line: int
    source: str
    engine: str
    engine_version: str
    engine_detail: str
    model: str
    hardware: str
    gpus: int
    tp: int
    pp: int
    ep: int
    dp: int
    attn_dp: bool
    weights: str
    kv_cache: str
    mode: str
    input_tokens: float
    output_tokens: float
    max_batch: int | None      # per replica as published; None: the engine's default
    measured: float            # output tokens/s of the whole layout
    notes: str = ""
    split: str = ""            # fit, check or skip (neither), where the file says (optional column)

    @property
    def layout_kind(self) -> str:
        if self.attn_dp:
            return "attention-DP"
        return "PP" if self.pp >= 2 else "TP/DP"


def looks_published(path: str | Path) -> bool:
    """Whether a CSV's header is the published-throughput format (else: step times)."""
    from ..files import probe

    if probe(path) != "file":  # a FIFO would block the read; the CSV reader names what it is
        return False
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "measured_output_tokens_per_s" in header


def read_published(path: str | Path) -> list[PublishedRow]:
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError("no such file" if not p.exists() else "not a regular file", file=file)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError):
        raise SpecError("cannot read as UTF-8 text", file=file) from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SpecError(f"missing column(s) {', '.join(missing)}", file=file, line=1,
                        hint="columns: " + ",".join(COLUMNS))
    rows: list[PublishedRow] = []
    for i, r in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            raise SpecError(f"more than {MAX_ROWS:,} rows", file=file, line=i)
        r = {k: (v or "").strip() for k, v in r.items() if k is not None}

        def num(col: str, *, integer: bool = False, optional: bool = False) -> float | None:
            v = r.get(col, "")
            if v == "" and optional:
                return None
            try:
                x = float(v)
            except ValueError:
                x = float("nan")
            if not (math.isfinite(x) and 0 < x <= 1e12) or (integer and x != int(x)):
                what = "a positive integer" if integer else "a positive number"
                raise SpecError(f"must be {what}, got {v!r}", file=file, line=i, field=col)
            return int(x) if integer else x

        for col, allowed in (("weights", WEIGHT_FORMATS), ("kv_cache", KV_FORMATS), ("mode", MODES)):
            if r[col] not in allowed:
                raise SpecError(f"must be one of {', '.join(allowed)}, got {r[col]!r}", file=file, line=i, field=col)
        if r["attn_dp"] not in ("0", "1"):
            raise SpecError(f"must be 0 or 1, got {r['attn_dp']!r}", file=file, line=i, field="attn_dp")
        for col in ("engine", "model", "hardware"):
            if not r[col]:
                raise SpecError("is empty", file=file, line=i, field=col)
        rows.append(PublishedRow(
            line=i, source=r["source"], engine=r["engine"], engine_version=r["engine_version"],
            engine_detail=r.get("engine_detail", ""), model=r["model"],
            hardware=r["hardware"], gpus=num("gpus", integer=True), tp=num("tp", integer=True),
            pp=num("pp", integer=True), ep=num("ep", integer=True), dp=num("dp", integer=True),
            attn_dp=r["attn_dp"] == "1", weights=r["weights"], kv_cache=r["kv_cache"], mode=r["mode"],
            input_tokens=num("input_tokens"), output_tokens=num("output_tokens"),
            max_batch=num("max_batch", integer=True, optional=True), measured=num("measured_output_tokens_per_s"),
            notes=r.get("notes", ""), split=_split(r.get("split", ""), file, i)))
    if not rows:
        raise SpecError("holds no measurement rows", file=file)
    return rows


def _split(value: str, file: str, line: int) -> str:
    if value not in ("", "fit", "check", "skip"):
        raise SpecError(f"must be fit, check, skip or empty, got {value!r}", file=file, line=line, field="split")
    return value


def _version(text: str) -> tuple[int, ...] | None:
    """(major, minor) of a version string such as `0.6.3.post2` or `~0.15 (Feb 2026)`; None if unknown."""
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# Engine generations whose runtimes differ enough to need their own profile (docs/engines.md):
# TensorRT-LLM before 0.19 ran compiled TensorRT engines from a C++ runtime (0.19 moved the
# benchmarks to the PyTorch backend); vLLM before 0.8 ran its V0 engine (V1 became the default).
def profile_for(row: PublishedRow) -> str:
    """The catalog profile that describes the engine a published row ran."""
    v = _version(row.engine_version)
    if row.engine == "trtllm" and ("(TRT)" in row.engine_detail or (v is not None and v < (0, 19))):
        return "trtllm-trt"
    if row.engine == "vllm" and v is not None and v < (0, 8):
        return "vllm-v0"
    return row.engine


def default_max_batch(engine: Engine, layout: Layout) -> np.ndarray:
    """Per replica: the engine's per-scheduler cap times the schedulers (attention-DP ranks)."""
    return engine.max_batch * layout.attn_groups.astype(float)


def unsupported(rows: list[PublishedRow], models: dict[str, ModelSpec]) -> dict[int, str]:
    """Rows whose layout parasearch cannot express (e.g. EP48 with redundant experts), by index,
    with the reason; validation skips them and says so."""
    out = {}
    for i, r in enumerate(rows):
        problems = placement_problems(models[r.model], r.tp, r.pp, r.ep, r.dp, r.attn_dp)
        if problems:
            out[i] = "; ".join(problems)
    return out


def estimate_published(rows: list[PublishedRow], models: dict[str, ModelSpec], hws: dict[str, Hardware],
                       engines: dict[str, Engine], file: str = "", profile_of=None) -> np.ndarray:
    """Predicted output tokens/s of each row's whole layout, with that row's engine profile
    (`profile_of(row)` names it; default `profile_for`), NaN for rows `unsupported` names."""
    return predict_published(rows, models, hws, engines, profile_of)["output_tokens_per_s"]


def row_weights(weights: str, model: ModelSpec) -> str:
    """A row's weight format as the oracle names it: the files write `fp4` for both NVFP4 and MXFP4
    (their README), so `fp4` on a model whose checkpoint is MXFP4 (gpt-oss) is that checkpoint."""
    return model.native_weights if weights == "fp4" and model.native_weights == "mxfp4" else weights


def predict_published(rows: list[PublishedRow], models: dict[str, ModelSpec], hws: dict[str, Hardware],
                      engines: dict[str, Engine], profile_of=None) -> dict[str, np.ndarray]:
    """`estimate_published`'s throughput with the mean TTFT and TPOT of the same oracle call:
    {"output_tokens_per_s", "ttft_s", "tpot_s"}, one value per row (NaN where not estimated;
    decode-only rows have no TTFT)."""
    profile_of = profile_of or profile_for
    out = {k: np.full(len(rows), np.nan) for k in ("output_tokens_per_s", "ttft_s", "tpot_s")}
    groups: dict[tuple, list[int]] = {}
    skip = unsupported(rows, models)
    for i, r in enumerate(rows):
        if i not in skip:
            groups.setdefault((r.model, r.hardware, profile_of(r), r.weights, r.kv_cache, r.mode), []).append(i)
    for (model, hw, eng, w, kv, mode), idx in groups.items():
        sel = [rows[i] for i in idx]
        lay = Layout.of([r.tp for r in sel], [r.pp for r in sel], [r.ep for r in sel], 1, [r.attn_dp for r in sel])
        engine = engines[eng].on(hws[hw])
        bench_cap, bench_tokens = harness.settings(sel, models, hws)
        cap = np.array([r.max_batch or 0 for r in sel], float)
        cap = np.where(cap > 0, cap, np.where(bench_cap > 0, bench_cap, default_max_batch(engine, lay)))
        budget = np.where(bench_tokens > 0, bench_tokens, engine.max_num_tokens)
        wl = Workload(np.array([r.input_tokens for r in sel]), np.array([r.output_tokens for r in sel]))
        args = (models[model], hws[hw], engine, lay, Precision(row_weights(w, models[model]), kv), wl, cap)
        if mode == "decode-only":
            rc = decode_only(*args)
            per_replica, ttft, tpot = rc.requests_per_s * wl.output_tokens, np.nan, rc.tpot_s
        else:
            s = serve(*args, max_num_tokens=budget)
            per_replica, ttft, tpot = s.output_tokens_per_s, s.ttft_s, s.tpot_s
        out["output_tokens_per_s"][idx] = per_replica * np.array([r.dp for r in sel])
        out["ttft_s"][idx] = ttft
        out["tpot_s"][idx] = tpot
    return out


def load_inputs(rows: list[PublishedRow], file: str, model_loader, hardware_loader,
                engine_loader) -> tuple[dict, dict, dict]:
    """Models, hardware and engine profiles the rows name, each loaded once; a name that does not
    resolve becomes a `file:line` error."""
    models: dict[str, ModelSpec] = {}
    hws: dict[str, Hardware] = {}
    engines: dict[str, Engine] = {}
    for r in rows:
        try:
            if r.model not in models:
                models[r.model] = model_loader(r.model)
            if r.hardware not in hws:
                hws[r.hardware] = hardware_loader(r.hardware)
            if profile_for(r) not in engines:
                engines[profile_for(r)] = engine_loader(profile_for(r))
        except SpecError:
            raise
        except ParasearchError as exc:
            raise SpecError(exc.message, file=file, line=r.line, hint=exc.hint) from None
    return models, hws, engines


# Fit half / check half of data/published/throughput.csv (documented in its README): models the
# fit never sees are the check half; llama-3.3-70b, the only model on some GPUs and the only
# pipeline-depth table, is split by input/output mix instead.
CHECK_MODELS = ("llama-3.1-8b", "mistral-7b", "llama-3.1-405b", "qwen3-30b-a3b", "deepseek-v3")
SPLIT_BY_MIX = ("llama-3.3-70b",)
CHECK_MIXES = ((128, 2048), (500, 2000), (1000, 2000), (2048, 2048), (20000, 2000), (1024, 8192), (32768, 1024))


FIT_SOURCES = ("TRT-LLM v0.17 perf-overview", "TRT-LLM v1.0 perf-overview",
               "TRT-LLM v1.0 perf-overview (RTX PRO 6000 PP table)", "TRT-LLM 1.2 perf-overview (per-GPU x GPUs)",
               "AMD ROCm perf results (vLLM 0.9.1)", "LMSYS SGLang blog 2025-05-05 (96xH100, PD + EP)")


def split_of(row: PublishedRow) -> str:
    """`fit` or `check`: which half of the published rows a row belongs to. A row says so itself
    in a `split` column; rows of data/published/throughput.csv follow the rule above; rows of any
    other source were never fitted."""
    if row.split:
        return row.split
    if row.source not in FIT_SOURCES:
        return "check"
    if row.model in CHECK_MODELS:
        return "check"
    if row.model in SPLIT_BY_MIX:
        return "check" if (int(row.input_tokens), int(row.output_tokens)) in CHECK_MIXES else "fit"
    return "fit"
