"""The GPU memory fraction an engine is given, read back from the oracle's memory plan.

`cost.memory.plan_memory` sizes each GPU's weights, workspace (activations), runtime reserve and
KV pool with the engine profile's constants. Each engine's flag means a different share of
memory (the `MEMORY_FRACTION_OF` kinds of catalog/engines.py), so the flag's value is computed
from the planned amounts by what the flag means, and the engine, given it, sizes the KV pool the
oracle planned:
  total  (vLLM --gpu-memory-utilization):        (weights + workspace + runtime + KV) / HBM
  static (SGLang --mem-fraction-static):         (weights + KV) / HBM
  free   (TensorRT-LLM free_gpu_memory_fraction): KV / (HBM - weights - workspace - runtime)
The value is rounded down to 3 decimals, so the engine never takes more than the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from ..cost.layout import Layout
from ..cost.memory import plan_memory
from ..errors import ParasearchError
from .topology import Shape


@dataclass(frozen=True)
class MemoryFraction:
    fraction: float
    of: str                # free | total | static
    weights: float         # bytes per GPU, as planned
    activations: float
    reserve: float
    kv_budget: float
    hbm: float

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "fraction_of": self.of, "weights_bytes": self.weights,
                "activations_bytes": self.activations, "runtime_reserve_bytes": self.reserve,
                "kv_budget_bytes": self.kv_budget, "hbm_bytes": self.hbm}


def memory_fraction(model: ModelSpec, hw: Hardware, engine: Engine, shape: Shape, weights: str,
                    flag_means: str) -> MemoryFraction:
    """The value of an engine flag that means `flag_means` (free, total or static) for `shape`."""
    lay = Layout.of(shape.tp, shape.pp, shape.ep, 1, shape.attn_dp)
    plan = plan_memory(model, hw, engine, lay, weights)
    w, act, kv = float(plan.weights[0]), float(plan.activations[0]), float(plan.kv_budget[0])
    reserve = float(plan.reserve)
    if kv <= 0:
        raise ParasearchError(f"the weights of {shape.label()} do not fit on {hw.name}: nothing is left for the KV cache")
    of = flag_means
    if of == "total":
        f = (w + act + reserve + kv) / hw.hbm_bytes
    elif of == "static":
        f = (w + kv) / hw.hbm_bytes
    else:
        f = kv / (hw.hbm_bytes - w - act - reserve)
    return MemoryFraction(math.floor(round(min(f, 1.0) * 1000, 6)) / 1000, of, w, act, reserve, kv, hw.hbm_bytes)
