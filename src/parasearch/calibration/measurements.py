"""Reading the `kernels.json` measurement format (see data/calibration/README.md)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpecError


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


def _columns(rows, family: str, file: str) -> dict[str, np.ndarray]:
    keys = _FAMILIES[family]
    if not isinstance(rows, list):
        raise SpecError("must be a list of measurements", file=file, field=family)
    cols: dict[str, list[float]] = {k: [] for k in keys}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SpecError("must be an object", file=file, field=f"{family}[{i}]")
        for k in keys:
            v = row.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v):
                raise SpecError(f"must be a positive number, got {v!r}", file=file, field=f"{family}[{i}].{k}")
            cols[k].append(float(v))
    return {k: np.array(v) for k, v in cols.items()}


def read_kernels(path: str | Path) -> KernelMeasurements:
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError("no such file", file=file)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError):
        raise SpecError("cannot read as UTF-8 text", file=file) from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed JSON: {exc.msg}", file=file, line=exc.lineno) from None
    except RecursionError:
        raise SpecError("malformed JSON: nested too deeply", file=file) from None
    if not isinstance(data, dict):
        raise SpecError("a kernels file must hold a JSON object", file=file)
    if not any(k in data for k in _FAMILIES):
        raise SpecError("holds no measurements", file=file, hint="expected keys: " + ", ".join(_FAMILIES))
    copy = data.get("hbm_copy", {})
    bw = copy.get("bw_Bps") if isinstance(copy, dict) else None
    if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not math.isfinite(bw):
        bw = None
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    empty = {k: np.zeros(0) for k in ("time_s",)}
    return KernelMeasurements(
        copy_bytes_per_s=float(bw) if isinstance(bw, (int, float)) and bw > 0 else None,
        gemm=_columns(data["gemm"], "gemm", file) if "gemm" in data else empty,
        grouped=_columns(data["moe_expert_ffn"], "moe_expert_ffn", file) if "moe_expert_ffn" in data else empty,
        decode=_columns(data["attention_decode"], "attention_decode", file) if "attention_decode" in data else empty,
        prefill=_columns(data["attention_prefill"], "attention_prefill", file) if "attention_prefill" in data else empty,
        gpu=str(meta.get("gpu", "")),
    )
