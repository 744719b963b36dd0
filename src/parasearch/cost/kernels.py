"""Time of one kernel on one GPU, as vectorized functions of its shape.

Each returns `KernelTime` (work time split into compute and memory parts; the per-kernel launch
cost is added by the caller, which knows how many kernels an engine runs). Forms:

- GEMM: a p-norm of the memory time (operands at a fraction of HBM bandwidth) and the compute
  time (a fraction of dense peak that ramps up with the token count M as M / (M + m_half)).
- Decode attention: KV bytes over min(HBM rate, thread blocks x per-block streaming rate); few
  blocks (small batch x few KV heads) cannot fill the GPU, which is what single-sequence decode
  measurements show.
- Prefill attention: causal FLOPs at a fraction of peak that ramps with the number of blocks.
- Elementwise: bytes at the copy rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.hardware import Efficiency, Hardware

PREFILL_Q_TILE = 128  # query rows per thread block in flash-attention prefill kernels


@dataclass
class KernelTime:
    time: np.ndarray     # seconds of work (no launch cost)
    compute: np.ndarray  # seconds the arithmetic alone would take
    memory: np.ndarray   # seconds the HBM traffic alone would take


def _pnorm(a: np.ndarray, b: np.ndarray, p: float) -> np.ndarray:
    hi = np.maximum(a, b)
    safe = np.where(hi > 0, hi, 1.0)
    return np.where(hi > 0, safe * ((a / safe) ** p + (b / safe) ** p) ** (1.0 / p), 0.0)


def gemm(hw: Hardware, m, k, n, *, weight_bytes: float, peak_flops: float,
         act_bytes: float = 2.0, eff: Efficiency | None = None, flops_eff: float | None = None,
         m_half: float | None = None) -> KernelTime:
    """Y[m, n] = X[m, k] @ W[k, n]^T with W stored at `weight_bytes` per element. `flops_eff` and
    `m_half` replace the plateau compute efficiency and its ramp (quantized GEMMs have their own)."""
    e = eff or hw.efficiency
    m = np.asarray(m, dtype=float)
    flops = 2.0 * m * k * n
    traffic = (m * k + m * n) * act_bytes + np.asarray(k, float) * n * weight_bytes
    t_mem = traffic / (hw.hbm_bytes_per_s * e.gemm_bw)
    m_safe = np.where(m > 0, m, 1.0)
    ramp = np.where(m > 0, m_safe / (m_safe + (e.gemm_m_half if m_half is None else m_half)), 1.0)
    t_comp = flops / (peak_flops * (flops_eff or e.gemm_flops) * ramp)
    return KernelTime(_pnorm(t_mem, t_comp, e.gemm_blend_p), t_comp, t_mem)


def grouped_gemm(hw: Hardware, experts, tokens_per_expert, hidden, inter, *, weight_bytes: float,
                 peak_flops: float, act_bytes: float = 2.0, eff: Efficiency | None = None,
                 scale: float = 1.0, flops_scale: float = 1.0, m_half: float | None = None) -> KernelTime:
    """One MoE layer's local experts, SwiGLU: hidden -> 2*inter -> hidden, as two grouped GEMMs.
    `scale` multiplies both efficiencies (an engine's expert kernels against the fitted ones);
    `flops_scale` and `m_half` carry a quantized format's own plateau and ramp."""
    e = eff or hw.efficiency
    experts = np.asarray(experts, float)
    tpe = np.asarray(tokens_per_expert, float)
    # An expert that receives no token is skipped: only experts hit by at least one token load weights.
    weights = experts * 3.0 * hidden * inter * weight_bytes
    acts = experts * tpe * (hidden + 2 * inter + inter + hidden) * act_bytes
    flops = experts * tpe * 2.0 * 3.0 * hidden * inter
    t_mem = (weights + acts) / (hw.hbm_bytes_per_s * min(e.grouped_bw * scale, 1.0))
    tpe_safe = np.where(tpe > 0, tpe, 1.0)
    ramp = np.where(tpe > 0, tpe_safe / (tpe_safe + (e.grouped_m_half if m_half is None else m_half)), 1.0)
    t_comp = flops / (peak_flops * min(e.grouped_flops * scale * flops_scale, 1.0) * ramp)
    return KernelTime(_pnorm(t_mem, t_comp, e.grouped_blend_p), t_comp, t_mem)


def decode_attention(hw: Hardware, kv_bytes, ctas, *, flops=0.0, peak_flops: float = 1.0,
                     eff: Efficiency | None = None) -> KernelTime:
    """Read `kv_bytes` of cache with `ctas` independent thread blocks (plus `flops` of math)."""
    e = eff or hw.efficiency
    kv_bytes = np.asarray(kv_bytes, float)
    rate = np.minimum(hw.hbm_bytes_per_s * e.attn_decode_bw, np.maximum(ctas, 1) * e.attn_cta_bytes_per_s)
    t_mem = kv_bytes / rate
    t_comp = np.asarray(flops, float) / (peak_flops * e.gemm_flops)
    return KernelTime(_pnorm(t_mem, t_comp, e.gemm_blend_p), t_comp, t_mem)


def prefill_attention(hw: Hardware, flops, ctas, *, kv_bytes=0.0, peak_flops: float,
                      eff: Efficiency | None = None) -> KernelTime:
    """Causal flash attention over whole prompts: `flops` of math spread over `ctas` blocks."""
    e = eff or hw.efficiency
    ctas = np.maximum(np.asarray(ctas, float), 1.0)
    t_comp = np.asarray(flops, float) / (peak_flops * e.attn_prefill_flops * ctas / (ctas + e.attn_prefill_ctas_half))
    t_mem = np.asarray(kv_bytes, float) / (hw.hbm_bytes_per_s * e.attn_decode_bw)
    return KernelTime(np.maximum(t_comp, t_mem), t_comp, t_mem)


def elementwise(hw: Hardware, traffic_bytes, eff: Efficiency | None = None) -> KernelTime:
    e = eff or hw.efficiency
    t = np.asarray(traffic_bytes, float) / (hw.hbm_bytes_per_s * e.elementwise_bw)
    return KernelTime(t, np.zeros_like(t), t)
