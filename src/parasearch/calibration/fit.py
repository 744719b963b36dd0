"""Least-squares fits of `Efficiency` parameters.

Kernel timings are eager PyTorch calls: each includes a host dispatch cost that a CUDA graph
removes, so every family is fitted as `dispatch + model(shape)` and only the model's
efficiencies are kept (the GEMM dispatch is recorded as `host_dispatch_s`, for reference).
Errors are relative (log of the ratio), so microsecond kernels weigh as much as millisecond ones.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares

from ..catalog.hardware import EFFICIENCY_BOUNDS, Efficiency, Hardware, efficiency_bounds
from ..cost import kernels as K
from .measurements import KernelMeasurements

MAX_FIT_ERROR = 1.0  # a median error over 100%: the model cannot follow the data (units? shapes?)


def _fit(residual, x0, lo, hi):
    res = least_squares(residual, x0, bounds=(lo, hi), x_scale="jac", max_nfev=4000)
    return res.x, float(np.median(np.abs(np.expm1(residual(res.x)))))


def _fit_gemm(hw: Hardware, g: dict, base: Efficiency) -> tuple[dict, float]:
    peak = hw.peak_flops("bf16")

    def model(x):
        e = replace(base, gemm_bw=x[1], gemm_flops=x[2], gemm_m_half=x[3], gemm_blend_p=x[4])
        return x[0] * 1e-6 + K.gemm(hw, g["M"], g["K"], g["N"], weight_bytes=2.0, peak_flops=peak, eff=e).time

    x, err = _fit(lambda x: np.log(model(x) / g["time_s"]), [20, 0.9, 0.75, 30, 4],
                  [0, 0.2, 0.2, 0, 1], [200, 1.2, 1.0, 4096, 12])
    return dict(host_dispatch_s=x[0] * 1e-6, gemm_bw=x[1], gemm_flops=x[2], gemm_m_half=x[3], gemm_blend_p=x[4]), err


def _fit_grouped(hw: Hardware, g: dict, base: Efficiency) -> tuple[dict, float]:
    peak = hw.peak_flops("bf16")

    def model(x):
        e = replace(base, grouped_bw=x[1], grouped_flops=x[2], grouped_m_half=x[3], grouped_blend_p=x[4])
        return x[0] * 1e-6 + K.grouped_gemm(hw, g["experts"], g["tokens_per_expert"], g["hidden"], g["inter"],
                                            weight_bytes=2.0, peak_flops=peak, eff=e).time

    x, err = _fit(lambda x: np.log(model(x) / g["time_s"]), [20, 0.8, 0.65, 30, 4],
                  [0, 0.2, 0.2, 0, 1], [200, 1.2, 1.0, 4096, 12])
    return dict(grouped_bw=x[1], grouped_flops=x[2], grouped_m_half=x[3], grouped_blend_p=x[4]), err


def _fit_decode(hw: Hardware, a: dict, base: Efficiency) -> tuple[dict, float, float]:
    ctas = a["batch"] * a["kv_heads"]

    def model(x):
        e = replace(base, attn_decode_bw=x[1], attn_cta_bytes_per_s=x[2] * 1e9)
        return x[0] * 1e-6 + K.decode_attention(hw, a["kv_bytes"], ctas, eff=e).time

    x, err = _fit(lambda x: np.log(model(x) / a["time_s"]), [30, 0.9, 45], [0, 0.2, 1], [200, 1.3, 1000])
    return dict(attn_decode_bw=x[1], attn_cta_bytes_per_s=x[2] * 1e9), err, x[0] * 1e-6


def _fit_prefill(hw: Hardware, a: dict, base: Efficiency, dispatch_s: float) -> tuple[dict, float]:
    peak = hw.peak_flops("bf16")
    ctas = a["batch"] * a["heads"] * np.ceil(a["seq"] / K.PREFILL_Q_TILE)

    def model(x):
        e = replace(base, attn_prefill_flops=x[0], attn_prefill_ctas_half=x[1])
        return dispatch_s + K.prefill_attention(hw, a["flops"], ctas, peak_flops=peak, eff=e).time

    x, err = _fit(lambda x: np.log(model(x) / a["time_s"]), [0.65, 170], [0.1, 0], [1.0, 1e5])
    return dict(attn_prefill_flops=x[0], attn_prefill_ctas_half=x[1]), err


def fit_kernels(hw: Hardware, m: KernelMeasurements, source: str) -> tuple[Efficiency, dict[str, float]]:
    """Fit every family the measurements cover; the others keep `hw`'s current values.

    Returns the efficiency and, per family, the median absolute relative error of the fit.
    """
    base = hw.efficiency
    values: dict = {}
    errors: dict[str, float] = {}
    if m.copy_bytes_per_s:
        values["elementwise_bw"] = m.copy_bytes_per_s / hw.hbm_bytes_per_s
    if m.gemm["time_s"].size >= 5:
        v, errors["gemm"] = _fit_gemm(hw, m.gemm, base)
        values.update(v)
    if m.grouped["time_s"].size >= 5:
        v, errors["moe_expert_ffn"] = _fit_grouped(hw, m.grouped, base)
        values.update(v)
    dispatch = values.get("host_dispatch_s", base.host_dispatch_s)
    if m.decode["time_s"].size >= 3:
        v, errors["attention_decode"], dispatch = _fit_decode(hw, m.decode, base)
        values.update(v)
    if m.prefill["time_s"].size >= 2:
        v, errors["attention_prefill"] = _fit_prefill(hw, m.prefill, base, dispatch)
        values.update(v)
    # Four significant digits; a ramp constant the data pin at zero is written as zero.
    rounded = {k: (0.0 if k.endswith("m_half") and v < 1e-3 else float(f"{v:.4g}")) for k, v in values.items()}
    return replace(base, **rounded, source=source), errors


def fit_whole_model(hw: Hardware, predict, measured: np.ndarray, source: str) -> tuple[Efficiency, dict[str, float]]:
    """Fit three composition-level parameters to whole-model step times of one GPU type:
    the per-kernel launch cost, and scale factors on every memory efficiency and every compute
    efficiency. `predict(hw)` returns the oracle's step times for the measured rows."""
    base = hw.efficiency
    measured = np.asarray(measured, float)

    def eff(x) -> Efficiency:
        mem, comp = x[1], x[2]
        return replace(base, kernel_launch_s=x[0] * 1e-6,
                       gemm_bw=base.gemm_bw * mem, grouped_bw=base.grouped_bw * mem,
                       attn_decode_bw=base.attn_decode_bw * mem, elementwise_bw=base.elementwise_bw * mem,
                       gemm_flops=min(base.gemm_flops * comp, 1.0), grouped_flops=min(base.grouped_flops * comp, 1.0),
                       attn_prefill_flops=min(base.attn_prefill_flops * comp, 1.0))

    def residual(x):
        return np.log(predict(hw.with_efficiency(eff(x))) / measured)

    before = float(np.median(np.abs(np.expm1(residual([base.kernel_launch_s * 1e6, 1.0, 1.0])))))
    n_free = min(3, measured.size)
    x0 = np.array([base.kernel_launch_s * 1e6, 1.0, 1.0])
    launch_lo, launch_hi = EFFICIENCY_BOUNDS["kernel_launch_s"]
    lo, hi = np.array([launch_lo * 1e6, 0.3, 0.3]), np.array([min(50.0, launch_hi * 1e6), 1.5, 1.5])
    free = np.arange(3) < n_free

    def sub(z):
        x = x0.copy()
        x[free] = z
        return residual(x)

    res = least_squares(sub, x0[free], bounds=(lo[free], hi[free]), max_nfev=400, diff_step=1e-3)
    x = x0.copy()
    x[free] = res.x
    after = float(np.median(np.abs(np.expm1(residual(x)))))
    e = eff(x)
    rounded = {k: float(f"{getattr(e, k):.4g}") for k in (
        "kernel_launch_s", "gemm_bw", "grouped_bw", "attn_decode_bw", "elementwise_bw",
        "gemm_flops", "grouped_flops", "attn_prefill_flops")}
    return replace(e, **rounded, source=source), {"whole_model_before": before, "whole_model_after": after}


def clamp_to_bounds(eff: Efficiency, names) -> tuple[Efficiency, list[str]]:
    """Fitted values outside (or pinned on) their physical bounds (`EFFICIENCY_BOUNDS`), clamped,
    with one note each: the fit wanted a value no hardware has, so the data deserve a second look."""
    notes, fixed = [], {}
    for name in names:
        lo, hi = efficiency_bounds(name)
        v = getattr(eff, name)
        if not isinstance(v, (int, float)):
            continue
        if v <= lo * (1 + 1e-3) and lo > 0 or v >= hi * (1 - 1e-3):
            bound = lo if v <= lo * (1 + 1e-3) else hi
            fixed[name] = bound
            side = "floor" if bound == lo else "ceiling"
            notes.append(f"{name} fitted at {v:.4g}, at or past its physical {side} {bound:g}: clamped to {bound:g}; "
                         "check that the measurements are per step, in seconds")
    return (replace(eff, **fixed) if fixed else eff), notes
