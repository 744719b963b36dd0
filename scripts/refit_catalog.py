"""Refit the shipped engine profiles and GPU efficiencies to the fit half of data/published.

    python scripts/refit_catalog.py            # fit, print, and write the values into the catalogs
    python scripts/refit_catalog.py --dry-run  # fit and print only

Stages (each fits its constants on the `fit` rows of its engines, bounded, in log space; see
parasearch/calibration/serving_fit.py):
  1. TensorRT-LLM rows: the trtllm and trtllm-trt profiles, and the efficiencies of GPUs without
     kernel timings (and the FP8 GEMM constants of H100 and H200, whose kernel timings are bf16).
  2. vLLM V1 rows on NVIDIA GPUs: the vllm profile; then its rows on the MI300X: that GPU (only
     vLLM has run on it in the data).
  3. vLLM V0 rows: the vllm-v0 profile.
  SGLang has three fit rows, too few for any constant: it takes the vllm profile's host and kernel
  constants (the same kind of runtime: a Python scheduler overlapped with the GPU, FlashInfer/FA3
  kernels); what SGLang does differently (prefill instead of decode, its memory reserve, pages,
  graph limits) comes from its code (engine_catalog/sglang.yaml).
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

# Host cost per sequence per step is bounded by the fastest published replica: 39.8k output tok/s
# (Qwen3-30B-A3B on one B200, TensorRT-LLM 1.0) leaves at most 25 us a sequence-step.
ENGINE_HOST = [("host_step_s", 1e-4, 2e-2), ("host_per_seq_s", 1e-7, 2.5e-5)]
STAGES = [
    ("TensorRT-LLM", ("trtllm", "trtllm-trt"), "", [
        *[("trtllm", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("trtllm", "moe_gemm_efficiency", 0.2, 1.5), ("trtllm", "pp_sync_s", 1e-5, 0.05),
        ("trtllm", "pp_sync_per_stage_s", 1e-6, 0.02),
        ("trtllm", "a2a_efficiency", 0.05, 1.0), ("trtllm", "routing_skew", 0.05, 1.0),
        *[("trtllm-trt", f, lo, hi) for f, lo, hi in ENGINE_HOST],
        ("trtllm-trt", "eager_launch_s", 1e-7, 2e-5), ("trtllm-trt", "moe_gemm_efficiency", 0.2, 1.5),
        ("h100-sxm", "gemm_flops_fp8", 0.2, 0.95), ("h100-sxm", "gemm_m_half_fp8", 1, 2000),
        ("h200", "gemm_flops_fp8", 0.2, 0.95), ("h200", "gemm_m_half_fp8", 1, 2000),
        ("h100-sxm", "collective_efficiency", 0.2, 1.0), ("h200", "collective_efficiency", 0.2, 1.0),
        # The two-shot/ring all-reduce's fixed cost inside an NVSwitch domain (small payloads go
        # one-shot: the hardware's oneshot_latency_s). Bounded by what the two-stage custom kernel
        # and NCCL take at 8 GPUs: 19-29 us (vllm-project/vllm PR 37756; NCCL 19-25 us on 8 H100s,
        # ByteDance-Seed/Triton-distributed issue 57). Unbounded, the fit drifts to 45 us and
        # absorbs other costs.
        ("h100-sxm", "scale_up_latency_s", 4e-6, 2.5e-5), ("h200", "scale_up_latency_s", 4e-6, 2.5e-5),
        ("b200", "mem_scale", 0.5, 1.2), ("b200", "gemm_flops_fp4", 0.1, 0.95), ("b200", "gemm_m_half_fp4", 1, 2000),
        ("gb200", "mem_scale", 0.5, 1.2), ("gb200", "gemm_flops_fp4", 0.1, 0.95), ("gb200", "gemm_m_half_fp4", 1, 2000),
        ("a100-sxm-80gb", "mem_scale", 0.5, 1.2), ("a100-sxm-80gb", "compute_scale", 0.3, 1.3),
        ("l40s", "mem_scale", 0.5, 1.2), ("l40s", "gemm_flops_fp8", 0.1, 0.9), ("l40s", "gemm_m_half_fp8", 1, 2000),
        ("l40s", "collective_efficiency", 0.05, 1.0),
        ("rtx-pro-6000", "mem_scale", 0.5, 1.2), ("rtx-pro-6000", "gemm_flops_fp4", 0.1, 0.95),
        ("rtx-pro-6000", "gemm_m_half_fp4", 1, 2000)]),
    # vLLM V1 hides its host work behind the GPU (async scheduling): bounds keep it to what
    # such a loop can cost (a few ms a step, tens of us a sequence) so odd rows cannot inflate it.
    # Its constants come from NVIDIA rows alone; the MI300X then from vLLM's AMD rows with them
    # fixed, so the GPU does not absorb the engine or the engine the GPU. The KV held per sequence
    # is fitted between the live context (prompt + half the output: 0.5) and the whole sequence
    # (1.0): on-demand growth with recompute preemption lands in between. Its dense FP8/FP4 GEMMs
    # (CUTLASS scaled_mm, cuBLASLt) are TensorRT-LLM's class of kernel: not fitted (a fit pinned
    # the factor at any lower bound given, absorbing what the host constants describe).
    ("vLLM V1 (NVIDIA)", ("vllm",), "nvidia", [
        ("vllm", "host_step_s", 1e-4, 5e-3), ("vllm", "host_per_seq_s", 1e-7, 5e-5),
        ("vllm", "moe_gemm_efficiency", 0.3, 1.5), ("vllm", "kv_reserved_output", 0.5, 1.0)]),
    ("vLLM V1 (AMD)", ("vllm",), "amd", [("mi300x", "mem_scale", 0.3, 1.2), ("mi300x", "compute_scale", 0.2, 1.3)]),
    # vLLM V0's scheduler, sampler and output processing ran synchronously in Python, tens of ms a
    # step at large batches (bounded to 100 us a sequence); its kernels are vLLM's (factor 1, as V1).
    ("vLLM V0", ("vllm-v0",), "", [("vllm-v0", "host_step_s", 1e-4, 2e-2), ("vllm-v0", "host_per_seq_s", 1e-7, 1e-4)]),
]


def load():
    rows = [r for f in DATA for r in read_published(f)]
    models = {m: load_model(m) for m in {r.model for r in rows}}
    hws = {n: H.load_hardware(n) for n in H.catalog_names()}
    engines = {n: E.load_engine(n) for n in E.catalog_names()}
    return rows, models, hws, engines


def run_stages(rows, models, hws, engines, only=()):
    measured = np.array([r.measured for r in rows])
    usable = np.isfinite(estimate_published(rows, models, hws, engines))
    fitted: list[tuple[Param, float, int]] = []
    for title, profiles, vendor, spec in STAGES:
        if only and not any(title.startswith(o) for o in only):
            continue
        sel = usable & np.array([split_of(r) == "fit" and profile_for(r) in profiles
                                 and (not vendor or hws[r.hardware].vendor == vendor) for r in rows])
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
        if title == "vLLM V1 (NVIDIA)":   # SGLang takes these constants (see the docstring)
            for p in params:
                v = getattr(engines["vllm"], p.field)
                engines["sglang"] = engines["sglang"].with_overrides(**{p.field: v})
                fitted.append((Param("sglang", p.field, 0, 1), v, -len(part)))
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
    top = {"collective_efficiency": ("", "collective_efficiency"), "scale_up_latency_s": ("scale_up:", "latency_s")}
    if field in top:
        section, key = top[field]
        start = next(j for j, s in enumerate(lines) if s.startswith(section)) if section else 0
        indent = "  " if section else ""
        i = next(j for j in range(start, len(lines)) if lines[j].startswith(f"{indent}{key}:"))
        lines[i] = f"{indent}{key}: {_fmt(value)}  # {note}"
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
        if n < 0:   # taken from the vllm fit (see the docstring)
            text = f"the vllm fit's value ({-n} fit-half rows; too few SGLang rows to fit): scripts/refit_catalog.py"
            path = ENGINES / f"{p.target}.yaml"
            yaml_path = next(q for q, name, *_ in E._FIELDS if name == p.field)
            path.write_text(set_engine_value(path.read_text(), yaml_path, value, text))
            continue
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
            from parasearch.calibration.serving_fit import SCALES, scaled_value
            for f in SCALES[p.field]:
                text = path.read_text()
                v = scaled_value(getattr(hw.efficiency, f), p.field, value)
                capped = " (capped: CAPS in calibration/serving_fit.py)" if v < getattr(hw.efficiency, f) * value else ""
                path.write_text(set_hardware_value(text, f, v, f"{p.field} {value:.3g} x the value before that refit "
                                                   f"(refits compound){capped}; " + note.format(n=n)))
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
    ap.add_argument("--stage", action="append", default=[], help="only the stages whose title starts so")
    args = ap.parse_args()
    rows, models, hws, engines = load()
    fitted = run_stages(rows, models, hws, engines, tuple(args.stage))
    if not args.dry_run:
        write(fitted, hws)
        print("wrote engine_catalog/*.yaml and hardware_catalog/*.yaml; now run:\n"
              "  parasearch validate data/published/throughput.csv data/published/extra.csv --summary "
              "--bands src/parasearch/engine_catalog/error_bands.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
