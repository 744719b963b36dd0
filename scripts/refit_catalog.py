"""Refit the shipped engine profiles and GPU efficiencies to the fit half of data/published.

    python scripts/refit_catalog.py            # fit, print, and write the values into the catalogs
    python scripts/refit_catalog.py --dry-run  # fit and print only

Stages (each fits its constants on the `fit` rows of its engines, bounded, in log space; see
parasearch/calibration/serving_fit.py):
  1. TensorRT-LLM rows: the trtllm and trtllm-trt profiles, and the efficiencies of GPUs without
     kernel timings (and the FP8 GEMM constants of H100 and H200, whose kernel timings are bf16).
  2. vLLM V1 rows: the vllm profile, and the MI300X (only vLLM has run on it in the data).
  3. vLLM V0 rows: the vllm-v0 profile.
  4. SGLang rows: the sglang profile.
The router's expert-load skew is a property of the models' routers, not of an engine: stage 1
fits it and every profile takes that value.
Then it writes engine_catalog/error_bands.csv from the check rows (`parasearch validate ... --bands`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from parasearch.calibration.published import (estimate_published, profile_for, read_published, split_of)
from parasearch.calibration.serving_fit import Param, fit
from parasearch.catalog import engines as E
from parasearch.catalog import hardware as H
from parasearch.catalog.models import load_model

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT / "data" / "published" / "throughput.csv", ROOT / "data" / "published" / "extra.csv"]
ENGINES = ROOT / "src" / "parasearch" / "engine_catalog"
HARDWARE = ROOT / "hardware_catalog"

ENGINE_HOST = [("host_step_s", 1e-4, 2e-2), ("host_per_seq_s", 1e-7, 1e-4)]
STAGES = [
    ("TensorRT-LLM", ("trtllm", "trtllm-trt"), [
        *[("trtllm", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("trtllm", "pp_sync_s", 1e-5, 0.05), ("trtllm", "moe_gemm_efficiency", 0.2, 1.5),
        ("trtllm", "a2a_efficiency", 0.05, 1.0), ("trtllm", "routing_skew", 0.01, 2.0),
        *[("trtllm-trt", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("trtllm-trt", "eager_launch_s", 1e-7, 2e-5), ("trtllm-trt", "moe_gemm_efficiency", 0.2, 1.5),
        ("h100-sxm", "gemm_flops_fp8", 0.2, 0.95), ("h100-sxm", "gemm_m_half_fp8", 1, 2000),
        ("h200", "gemm_flops_fp8", 0.2, 0.95), ("h200", "gemm_m_half_fp8", 1, 2000),
        ("b200", "mem_scale", 0.5, 1.2), ("b200", "gemm_flops_fp4", 0.1, 0.95), ("b200", "gemm_m_half_fp4", 1, 2000),
        ("gb200", "mem_scale", 0.5, 1.2), ("gb200", "gemm_flops_fp4", 0.1, 0.95), ("gb200", "gemm_m_half_fp4", 1, 2000),
        ("a100-sxm-80gb", "mem_scale", 0.5, 1.2), ("a100-sxm-80gb", "compute_scale", 0.3, 1.3),
        ("l40s", "mem_scale", 0.5, 1.2), ("l40s", "gemm_flops_fp8", 0.1, 0.9), ("l40s", "gemm_m_half_fp8", 1, 2000),
        ("l40s", "collective_efficiency", 0.05, 1.0),
        ("rtx-pro-6000", "mem_scale", 0.5, 1.2), ("rtx-pro-6000", "gemm_flops_fp4", 0.1, 0.95),
        ("rtx-pro-6000", "gemm_m_half_fp4", 1, 2000)]),
    ("vLLM V1", ("vllm",), [
        *[("vllm", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("vllm", "gemm_efficiency", 0.3, 1.5), ("vllm", "moe_gemm_efficiency", 0.2, 1.5),
        ("mi300x", "mem_scale", 0.3, 1.2), ("mi300x", "compute_scale", 0.2, 1.3)]),
    ("vLLM V0", ("vllm-v0",), [
        *[("vllm-v0", f, lo, hi) for f, lo, hi in ENGINE_HOST], ("vllm-v0", "gemm_efficiency", 0.3, 1.5)]),
    ("SGLang", ("sglang",), [
        *[("sglang", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("sglang", "gemm_efficiency", 0.3, 1.5), ("sglang", "moe_gemm_efficiency", 0.2, 1.5)]),
]


def load():
    rows = [r for f in DATA for r in read_published(f)]
    models = {m: load_model(m) for m in {r.model for r in rows}}
    hws = {n: H.load_hardware(n) for n in H.catalog_names()}
    engines = {n: E.load_engine(n) for n in E.catalog_names()}
    return rows, models, hws, engines


def run_stages(rows, models, hws, engines):
    measured = np.array([r.measured for r in rows])
    usable = np.isfinite(estimate_published(rows, models, hws, engines))
    fitted: list[tuple[Param, float, int]] = []
    for title, profiles, spec in STAGES:
        sel = usable & np.array([split_of(r) == "fit" and profile_for(r) in profiles for r in rows])
        part = [rows[i] for i in np.flatnonzero(sel)]
        params = [Param(t, f, lo, hi) for t, f, lo, hi in spec]
        res = fit(params, lambda e, h: estimate_published(part, models, h, e), measured[sel], engines, hws,
                  max_nfev=2000)
        engines, hws = res.engines, res.hws
        print(f"{title}: {len(part)} fit rows, median |error| {np.median(np.abs(np.expm1(res.before))):.1%} -> "
              f"{np.median(np.abs(np.expm1(res.after))):.1%}")
        for row, p in zip(res.table(), params):
            print(f"  {row['parameter']:<36} {row['value']:.4g}{'  (at bound)' if row['at_bound'] else ''}")
            fitted.append((p, row["value"], len(part)))
        if title == "TensorRT-LLM":   # router statistics: one value for every engine
            skew = engines["trtllm"].routing_skew
            engines = {n: e.with_overrides(routing_skew=skew) for n, e in engines.items()}
    return fitted


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def set_engine_value(text: str, path: str, value: float, source: str) -> str:
    """Replace `leaf: value` under its section, and the provenance line of `path`."""
    *parents, leaf = path.split(".")
    lines = text.splitlines()
    depth, i = 0, 0
    for p in parents:                                   # walk down to the section
        while not re.match(rf"^{'  ' * depth}{re.escape(p)}:\s*$", lines[i]):
            i += 1
        depth += 1
    while not re.match(rf"^{'  ' * depth}{re.escape(leaf)}:", lines[i]):
        i += 1
    lines[i] = f"{'  ' * depth}{leaf}: {_fmt(value)}"
    k = next(j for j, s in enumerate(lines) if s.startswith(f"  {path}:"))
    lines[k] = f"  {path}: \"{source}\""
    return "\n".join(lines) + "\n"


def set_hardware_value(text: str, field: str, value: float, note: str) -> str:
    lines = text.splitlines()
    top = {"collective_efficiency"}
    if field in top:
        i = next(j for j, s in enumerate(lines) if s.startswith(f"{field}:"))
        lines[i] = f"{field}: {_fmt(value)}  # {note}"
        return "\n".join(lines) + "\n"
    start = next(j for j, s in enumerate(lines) if s.startswith("efficiency:"))
    for j in range(start + 1, len(lines)):
        if lines[j].startswith(f"  {field}:"):
            lines[j] = f"  {field}: {_fmt(value)}  # {note}"
            return "\n".join(lines) + "\n"
        if lines[j].startswith("  source:"):
            lines.insert(j, f"  {field}: {_fmt(value)}  # {note}")
            return "\n".join(lines) + "\n"
    raise KeyError(field)


def write(fitted, hws_before):
    note = "fitted to {n} fit-half rows of data/published by scripts/refit_catalog.py"
    for p, value, n in fitted:
        if p.target in E.catalog_names():
            path = ENGINES / f"{p.target}.yaml"
            yaml_path = next(q for q, name, *_ in E._FIELDS if name == p.field)
            path.write_text(set_engine_value(path.read_text(), yaml_path, value, note.format(n=n)))
            if p.field == "routing_skew":  # every profile takes the router statistics
                for other in E.catalog_names():
                    if other != p.target:
                        q = ENGINES / f"{other}.yaml"
                        q.write_text(set_engine_value(q.read_text(), yaml_path, value,
                                                      f"the trtllm fit's value (router statistics, not an engine's): "
                                                      + note.format(n=n)))
            continue
        path = HARDWARE / f"{p.target}.yaml"
        hw = hws_before[p.target]
        if p.field in ("mem_scale", "compute_scale"):
            from parasearch.calibration.serving_fit import SCALES
            for f in SCALES[p.field]:
                text = path.read_text()
                v = min(getattr(hw.efficiency, f) * value, 1.0)
                path.write_text(set_hardware_value(text, f, v, f"{p.field} {value:.3g} x the carried-over value; "
                                                   + note.format(n=n)))
        else:
            path.write_text(set_hardware_value(path.read_text(), p.field, value, note.format(n=n)))
    for name in {p.target for p, _, _ in fitted if p.target in hws_before}:
        path = HARDWARE / f"{name}.yaml"
        text = path.read_text()
        if hws_before[name].efficiency.is_default:
            text = re.sub(r'  source: ".*"', '  source: "FITTED to published end-to-end throughput (scripts/'
                          'refit_catalog.py) from the Hopper kernel fits as a start; no kernel timings of this GPU"',
                          text)
            path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    rows, models, hws, engines = load()
    fitted = run_stages(rows, models, hws, engines)
    if not args.dry_run:
        write(fitted, hws)
        print("wrote engine_catalog/*.yaml and hardware_catalog/*.yaml; now run:\n"
              "  parasearch validate data/published/throughput.csv data/published/extra.csv --summary "
              "--bands src/parasearch/engine_catalog/error_bands.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
