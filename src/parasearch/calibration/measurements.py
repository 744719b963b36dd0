"""Reading the `kernels.json` measurement format (see data/calibration/README.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..errors import SpecError

MAX_KERNELS_BYTES = 20_000_000  # a full sweep of every family is a few hundred kilobytes
MAX_ROWS = 100_000
# A timed kernel takes at least a few hundred nanoseconds of device time plus dispatch; a second
# is already a huge kernel. Outside these, the unit is wrong (ms for s) or the value is made up.
TIME_BOUNDS_S = (1e-7, 1e3)
SHAPE_TOP = 1e9          # tokens, widths, experts, heads: no real kernel is larger
BYTES_TOP = 1e13         # KV bytes read by one kernel (more than any GPU's memory)
FLOPS_TOP = 1e18
BANDWIDTH_TOP = 1e14     # bytes/s: ten times the fastest HBM


@dataclass(frozen=True)
class KernelMeasurements:
    copy_bytes_per_s: float | None
    gemm: dict[str, np.ndarray]             # M, K, N, time_s
    grouped: dict[str, np.ndarray]          # experts, hidden, inter, tokens_per_expert, time_s
    decode: dict[str, np.ndarray]           # batch, kv_heads, kv_bytes, time_s
    prefill: dict[str, np.ndarray]          # batch, heads, seq, flops, time_s
    gpu: str = ""


_FAMILIES = {
    "gemm": ("M", "K", "N", "time_s"),
    "moe_expert_ffn": ("experts", "hidden", "inter", "tokens_per_expert", "time_s"),
    "attention_decode": ("batch", "kv_heads", "kv_bytes", "time_s"),
    "attention_prefill": ("batch", "heads", "seq", "flops", "time_s"),
}


def _top(key: str) -> tuple[float, float]:
    if key == "time_s":
        return TIME_BOUNDS_S
    if key == "kv_bytes":
        return (1.0, BYTES_TOP)
    return (1.0, FLOPS_TOP if key == "flops" else SHAPE_TOP)


def _columns(rows, family: str, file: str) -> dict[str, np.ndarray]:
    keys = _FAMILIES[family]
    if not isinstance(rows, list):
        raise SpecError("must be a list of measurements", file=file, field=family)
    if len(rows) > MAX_ROWS:
        raise SpecError(f"holds {len(rows):,} measurements; at most {MAX_ROWS:,} are read", file=file, field=family)
    cols: dict[str, list[float]] = {k: [] for k in keys}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SpecError("must be an object", file=file, field=f"{family}[{i}]")
        for k in keys:
            v = row.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
                raise SpecError(f"must be a positive number, got {str(v)[:40]}", file=file, field=f"{family}[{i}].{k}")
            lo, hi = _top(k)
            if not lo <= v <= hi:
                unit = " s" if k == "time_s" else ""
                raise SpecError(f"{v:g}{unit} is outside what a kernel measurement can be ({lo:g} to {hi:g}{unit})",
                                file=file, field=f"{family}[{i}].{k}",
                                hint="times are in seconds" if k == "time_s" else None)
            cols[k].append(float(v))
    return {k: np.array(v) for k, v in cols.items()}


def read_kernels(path: str | Path) -> KernelMeasurements:
    file = files.short(str(path))
    data = files.parse_json(files.read_text(path, limit=MAX_KERNELS_BYTES, what="a kernels file"), file)
    if not isinstance(data, dict):
        raise SpecError("a kernels file must hold a JSON object", file=file)
    if not any(k in data for k in _FAMILIES):
        raise SpecError("holds no measurements", file=file, hint="expected keys: " + ", ".join(_FAMILIES))
    copy = data.get("hbm_copy", {})
    bw = copy.get("bw_Bps") if isinstance(copy, dict) else None
    if bw is not None and (isinstance(bw, bool) or not isinstance(bw, (int, float)) or not math.isfinite(bw)
                           or not 1e9 <= bw <= BANDWIDTH_TOP):
        raise SpecError(f"must be a copy bandwidth in bytes/s (1e9 to {BANDWIDTH_TOP:g}), got {str(bw)[:40]}",
                        file=file, field="hbm_copy.bw_Bps")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    empty = {k: np.zeros(0) for k in ("time_s",)}
    return KernelMeasurements(
        copy_bytes_per_s=float(bw) if bw is not None else None,
        gemm=_columns(data["gemm"], "gemm", file) if "gemm" in data else empty,
        grouped=_columns(data["moe_expert_ffn"], "moe_expert_ffn", file) if "moe_expert_ffn" in data else empty,
        decode=_columns(data["attention_decode"], "attention_decode", file) if "attention_decode" in data else empty,
        prefill=_columns(data["attention_prefill"], "attention_prefill", file) if "attention_prefill" in data else empty,
        gpu=str(meta.get("gpu", "")),
    )
