"""Fitting engine-profile constants and hardware efficiencies to published serving throughput.

Each parameter is bounded and fitted in log space (so a host overhead of 2 ms and an efficiency
of 0.6 move on the same footing); the residual is log(predicted / measured) per row, with a
soft-L1 loss so that one odd row cannot pull a constant far. Fitting and checking stay apart:
callers pass the rows to fit on (data/published/README.md says which half is which).

Hardware parameters name a GPU: `h200:gemm_flops_fp8` sets that efficiency field, and two
scales adjust a whole family of kernel-fitted efficiencies at once: `mem_scale` (every memory
efficiency) and `compute_scale` (every bf16 compute efficiency), each capped at the datasheet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.optimize import least_squares

from ..catalog.engines import Engine
from ..catalog.hardware import Efficiency, Hardware

MEMORY_FIELDS = ("gemm_bw", "grouped_bw", "attn_decode_bw", "elementwise_bw")
COMPUTE_FIELDS = ("gemm_flops", "grouped_flops", "attn_prefill_flops")
SCALES = {"mem_scale": MEMORY_FIELDS, "compute_scale": COMPUTE_FIELDS}


@dataclass(frozen=True)
class Param:
    """One fitted constant: `target` is an engine name or a hardware name."""

    target: str
    field: str
    lo: float
    hi: float

    @property
    def key(self) -> str:
        return f"{self.target}:{self.field}"

    @staticmethod
    def parse(text: str, lo: float, hi: float) -> "Param":
        target, _, field = text.partition(":")
        return Param(target, field, lo, hi)


# A scaled efficiency stops at the datasheet, and a memory one at what kernels were measured to
# stream: 0.93 of the datasheet bandwidth is the most any kernel family reached in the H100 and
# H200 timings (data/calibration; hardware_catalog/h200.yaml gemm_bw 0.933). A fit that wants more
# is absorbing something else.
CAPS = {"mem_scale": 0.93, "compute_scale": 1.0}


def scaled_value(value: float, scale_name: str, s: float) -> float:
    return min(value * s, CAPS[scale_name])


def _scaled(eff: Efficiency, scale_name: str, s: float) -> Efficiency:
    return replace(eff, **{f: scaled_value(getattr(eff, f), scale_name, s) for f in SCALES[scale_name]})


def apply(params: list[Param], x: np.ndarray, engines: dict[str, Engine],
          hws: dict[str, Hardware]) -> tuple[dict[str, Engine], dict[str, Hardware]]:
    """Copies of `engines` and `hws` with the parameters set to `x` (parameters of an engine or GPU
    not among them are skipped). Hardware parameters are efficiency fields, the two scales, or
    top-level fields such as `collective_efficiency`."""
    engines, hws = dict(engines), dict(hws)
    eng_fields = {f.name for f in fields(Engine)}
    hw_fields = {f.name for f in fields(Hardware)}
    for p, v in zip(params, x):
        v = float(v)
        if p.target in engines and p.field in eng_fields:
            cur = engines[p.target]
            engines[p.target] = replace(cur, **{p.field: int(round(v)) if isinstance(getattr(cur, p.field), int) else v})
        elif p.target in hws:
            hw = hws[p.target]
            if p.field in hw_fields:
                hws[p.target] = replace(hw, **{p.field: v})
            else:
                eff = _scaled(hw.efficiency, p.field, v) if p.field in SCALES else replace(hw.efficiency, **{p.field: v})
                hws[p.target] = hw.with_efficiency(eff)
    return engines, hws


def start(params: list[Param], engines: dict[str, Engine], hws: dict[str, Hardware]) -> np.ndarray:
    """Current values (scales start at 1), clipped into the bounds."""
    x = []
    for p in params:
        if p.field in SCALES:
            v = 1.0
        elif p.target in engines:
            v = getattr(engines[p.target], p.field)
        elif hasattr(hws[p.target], p.field):
            v = getattr(hws[p.target], p.field)
        else:
            v = getattr(hws[p.target].efficiency, p.field)
            v = hws[p.target].efficiency.gemm_flops if v is None else v
        x.append(min(max(float(v), p.lo * 1.0001), p.hi * 0.9999))
    return np.array(x)


@dataclass
class FitResult:
    params: list[Param]
    values: np.ndarray
    before: np.ndarray        # log residuals of the fit rows before the fit
    after: np.ndarray         # and after
    engines: dict[str, Engine]
    hws: dict[str, Hardware]

    def table(self) -> list[dict]:
        return [{"parameter": p.key, "value": float(v), "lower": p.lo, "upper": p.hi,
                 "at_bound": bool(math.isclose(v, p.lo, rel_tol=1e-3) or math.isclose(v, p.hi, rel_tol=1e-3))}
                for p, v in zip(self.params, self.values)]


def fit(params: list[Param], predict, measured: np.ndarray, engines: dict[str, Engine],
        hws: dict[str, Hardware], *, max_nfev: int = 60) -> FitResult:
    """Fit `params` so that `predict(engines, hws)` (one value per row) matches `measured`."""
    measured = np.asarray(measured, float)
    lo = np.log([p.lo for p in params])
    hi = np.log([p.hi for p in params])

    def residual(z: np.ndarray) -> np.ndarray:
        e, h = apply(params, np.exp(z), engines, hws)
        pred = np.maximum(predict(e, h), 1e-9)
        return np.log(pred / measured)

    z0 = np.log(start(params, engines, hws))
    before = residual(z0)
    res = least_squares(residual, z0, bounds=(lo, hi), loss="soft_l1", f_scale=0.15, diff_step=1e-3,
                        max_nfev=max_nfev, x_scale=1.0)
    values = np.exp(res.x)
    e, h = apply(params, values, engines, hws)
    return FitResult(params, values, before, residual(res.x), e, h)


# What an engine fit moves by default, with bounds, given which kinds of rows it has.
ENGINE_PARAMS = {
    "always": (("host_step_s", 1e-4, 0.02), ("host_per_seq_s", 1e-7, 1e-4)),
    "quantized": (("gemm_efficiency", 0.3, 1.5),),
    "moe": (("moe_gemm_efficiency", 0.2, 1.5),),
    "attention-dp": (("a2a_efficiency", 0.05, 1.0), ("a2a_latency_s", 1e-6, 1e-3)),
    "pipeline": (("pp_sync_s", 1e-6, 0.05), ("pp_sync_per_stage_s", 1e-6, 0.02)),
}


def default_params(engine: str, kinds: set[str]) -> list[Param]:
    """The engine constants worth fitting on rows of `kinds` (always, quantized, moe, attention-dp,
    pipeline)."""
    out = []
    for kind in ("always", "quantized", "moe", "attention-dp", "pipeline"):
        if kind in kinds:
            out += [Param(engine, f, lo, hi) for f, lo, hi in ENGINE_PARAMS[kind]]
    return out


def influence(result: FitResult, predict, measured: np.ndarray, start_values: np.ndarray) -> list[float]:
    """For each parameter: the median |error| with that parameter alone put back at its start value
    (how much of the fit it carries)."""
    out = []
    for i in range(len(result.params)):
        x = result.values.copy()
        x[i] = start_values[i]
        e, h = apply(result.params, x, result.engines, result.hws)
        out.append(float(np.median(np.abs(np.maximum(predict(e, h), 1e-9) / measured - 1.0))))
    return out
