"""Serving-engine profiles (`engine_catalog/*.yaml`): what an engine runs besides GEMMs and attention."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

from ..errors import ParasearchError, SpecError
from . import _yaml

KV_RESERVATIONS = ("max", "mean")


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    small_kernels_per_layer: int
    small_kernels_final: int
    small_kernels_per_moe_layer: int  # routing and token permutation around the expert GEMMs
    moe_bytes_per_pair: float         # their traffic per (token, expert) pair, per unit of hidden size
    ew_hidden: float               # elementwise bytes per token per layer, per unit of hidden size
    ew_q_dim: float
    ew_kv_dim: float
    ew_ffn_intermediate: float
    ew_final_hidden: float
    decode_split_kv_tokens: int
    kv_free_fraction: float
    runtime_reserve_bytes: float
    kv_block_tokens: int
    max_num_tokens: int
    kv_reservation: str
    a2a_bytes_per_element: float

    def with_overrides(self, **kw: Any) -> "Engine":
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in kw.items() if k in known and v is not None})


def _from_doc(doc: _yaml.Located) -> Engine:
    d = doc.data
    if not isinstance(d, dict):
        raise SpecError("an engine file must be a mapping", file=doc.file, line=1)

    def num(*path: str, integer: bool = False, allow_zero: bool = False) -> Any:
        cur: Any = d
        for k in path:
            cur = cur.get(k) if isinstance(cur, dict) else None
        ok = (isinstance(cur, (int, float)) and not isinstance(cur, bool) and math.isfinite(cur)
              and (cur > 0 or (allow_zero and cur == 0)))
        if not ok or (integer and int(cur) != cur):
            raise SpecError(f"must be a {'non-negative' if allow_zero else 'positive'} "
                            f"{'integer' if integer else 'number'}, got {cur!r}",
                            file=doc.file, line=doc.line_of(path), field=".".join(path))
        return int(cur) if integer else float(cur)

    res = d.get("kv_reservation", "max")
    if res not in KV_RESERVATIONS:
        raise SpecError(f"must be one of {', '.join(KV_RESERVATIONS)}, got {res!r}", file=doc.file,
                        line=doc.line_of(("kv_reservation",)), field="kv_reservation")
    frac = num("kv_free_fraction")
    if frac > 1:
        raise SpecError("must be at most 1", file=doc.file, line=doc.line_of(("kv_free_fraction",)),
                        field="kv_free_fraction")
    ew = "elementwise_bytes_per_token"
    return Engine(
        name=str(d.get("name", "")), description=str(d.get("description", "")),
        small_kernels_per_layer=num("small_kernels_per_layer", integer=True, allow_zero=True),
        small_kernels_final=num("small_kernels_final", integer=True, allow_zero=True),
        small_kernels_per_moe_layer=num("small_kernels_per_moe_layer", integer=True, allow_zero=True),
        moe_bytes_per_pair=num("moe_bytes_per_pair", allow_zero=True),
        ew_hidden=num(ew, "hidden", allow_zero=True), ew_q_dim=num(ew, "q_dim", allow_zero=True),
        ew_kv_dim=num(ew, "kv_dim", allow_zero=True),
        ew_ffn_intermediate=num(ew, "ffn_intermediate", allow_zero=True),
        ew_final_hidden=num(ew, "final_hidden", allow_zero=True),
        decode_split_kv_tokens=num("decode_split_kv_tokens", integer=True, allow_zero=True),
        kv_free_fraction=frac,
        runtime_reserve_bytes=num("runtime_reserve_bytes", allow_zero=True),
        kv_block_tokens=num("kv_block_tokens", integer=True),
        max_num_tokens=num("max_num_tokens", integer=True),
        kv_reservation=res,
        a2a_bytes_per_element=num("a2a_bytes_per_element"),
    )


def catalog_names() -> list[str]:
    root = resources.files("parasearch") / "engine_catalog"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_engine(name_or_path: str) -> Engine:
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return _from_doc(_yaml.load(text))
    if text not in catalog_names():
        raise ParasearchError(f"unknown engine '{text}'", hint="catalog: " + ", ".join(catalog_names())
                              + "; or a path to an engine YAML")
    res = resources.files("parasearch") / "engine_catalog" / f"{text}.yaml"
    return _from_doc(_yaml.loads(res.read_text(), f"engine_catalog/{text}.yaml"))
