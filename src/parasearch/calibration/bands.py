"""Error bands: how far estimates of a kind have landed from published measurements.

A category is (engine profile, GPU family, dense or MoE, layout kind). `parasearch validate` writes, for
every category and every coarser grouping of it, the spread of predicted/measured ratios over
the published rows that were never fitted (`engine_catalog/error_bands.csv`). An estimate looks
up its most specific category with enough rows and reports, for example,
"+-12% (84 published TensorRT-LLM MoE attention-DP rows)", or says that no published data exist.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import product

import numpy as np

KEYS = ("engine", "family", "moe", "layout")
ANY = "*"
MIN_ROWS = 5          # fewer rows than this say too little about a category
# Bands are kept per engine profile (a generation of an engine, see calibration/published.py).
ENGINE_NAMES = {"trtllm": "TensorRT-LLM", "trtllm-trt": "TensorRT-LLM (TensorRT backend)", "vllm": "vLLM",
                "vllm-v0": "vLLM V0", "sglang": "SGLang"}
FAMILY_NAMES = {"hopper": "Hopper", "blackwell": "Blackwell", "ampere": "Ampere", "ada": "Ada",
                "cdna3": "AMD CDNA3"}
COLUMNS = KEYS + ("rows", "median_ratio", "error_68", "error_90")
BANDS_FILE = "error_bands.csv"


def layout_kind(tp, pp, attn_dp) -> np.ndarray:
    """`attention-DP`, `PP` (two or more stages) or `TP/DP`, per placement."""
    pp, attn_dp = np.asarray(pp), np.asarray(attn_dp, bool)
    return np.where(attn_dp, "attention-DP", np.where(pp >= 2, "PP", "TP/DP"))


def build(records: list[tuple[tuple[str, str, str, str], float]]) -> list[dict]:
    """Band rows for every category and every coarser grouping (`*` for any) that has rows."""
    groups: dict[tuple, list[float]] = {}
    for key, ratio in records:
        for mask in product((False, True), repeat=len(KEYS)):
            groups.setdefault(tuple(ANY if m else k for k, m in zip(key, mask)), []).append(ratio)
    out = []
    for key in sorted(groups):
        r = np.array(groups[key])
        err = np.abs(r - 1.0)
        out.append({**dict(zip(KEYS, key)), "rows": len(r), "median_ratio": round(float(np.median(r)), 4),
                    "error_68": round(float(np.percentile(err, 68)), 4),
                    "error_90": round(float(np.percentile(err, 90)), 4)})
    return out


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@lru_cache(maxsize=1)
def shipped() -> dict[tuple, dict]:
    res = resources.files("parasearch") / "engine_catalog" / BANDS_FILE
    if not res.is_file():
        return {}
    table = {}
    for r in csv.DictReader(io.StringIO(res.read_text())):
        table[tuple(r[k] for k in KEYS)] = {"rows": int(r["rows"]), "median_ratio": float(r["median_ratio"]),
                                            "error_68": float(r["error_68"]), "error_90": float(r["error_90"])}
    return table


@dataclass(frozen=True)
class Band:
    error: float | None       # |predicted/measured - 1| that 68% of the category's rows stay within
    median_ratio: float | None
    rows: int
    text: str


# Coarser groupings tried in turn when a category has too few rows: drop the layout, then
# dense/MoE, then the GPU family; the engine is never dropped (engines differ most).
_FALLBACK = ((), ("layout",), ("layout", "moe"), ("layout", "moe", "family"))


def _describe(key: tuple[str, ...]) -> str:
    e, fam, moe, lay = key
    parts = [ENGINE_NAMES.get(e, e)]
    if fam != ANY:
        parts.append(FAMILY_NAMES.get(fam, fam))
    if moe != ANY:
        parts.append(moe)
    if lay != ANY:
        parts.append(lay)
    return " ".join(parts)


def band(engine: str, family: str, moe: bool, kind: str, table: dict | None = None) -> Band:
    """The error band of one category (engine framework, GPU family, MoE or not, layout kind)."""
    table = shipped() if table is None else table
    key = (engine, family or ANY, "MoE" if moe else "dense", kind)
    if engine not in ENGINE_NAMES:
        return Band(None, None, 0, f"no published data for the {engine} profile")
    for drop in _FALLBACK:
        k = tuple(ANY if name in drop else v for name, v in zip(KEYS, key))
        hit = table.get(k)
        if hit and hit["rows"] >= MIN_ROWS:
            return Band(hit["error_68"], hit["median_ratio"], hit["rows"],
                        f"±{hit['error_68']:.0%} ({hit['rows']} published {_describe(k)} rows)")
    return Band(None, None, 0, f"no published data for {FAMILY_NAMES.get(family, family or 'this GPU')} + "
                               f"{ENGINE_NAMES[engine]}")


def bands_for(engine: str, family: str, moe: bool, kinds) -> list[Band]:
    """One band per placement, from each placement's layout kind."""
    cache: dict[str, Band] = {}
    out = []
    for k in np.asarray(kinds).reshape(-1):
        if k not in cache:
            cache[k] = band(engine, family, moe, str(k))
        out.append(cache[k])
    return out


def engine_key(engine) -> str:
    """The band key of an engine profile: its catalog name, or for a profile of the user's own,
    the engine it configures."""
    return engine.name if engine.name in ENGINE_NAMES else engine.framework


def for_placements(engine, hw, model, layout) -> list[Band]:
    """The error band of each placement of `layout` (by its layout kind)."""
    return bands_for(engine_key(engine), hw.family, model.is_moe, layout_kind(layout.tp, layout.pp, layout.attn_dp))
