"""Bytes per element of each storage format, and the format each weight format's GEMMs run in.

Quantized weights run their GEMMs with activations in a narrow format (W8A8 FP8, W4A4 NVFP4, MXFP4
weights with MXFP8 activations) where the chip has tensor cores for the weights' own format. Where
it has none, engines dequantize the weights inside bf16 GEMMs (weight-only: vLLM's Marlin kernels
for FP8 and FP4 checkpoints on Ampere and Hopper, TensorRT-LLM's Triton MXFP4 MoE with BF16
activations on H200). int4 is W4A16 (AWQ, GPTQ) everywhere: no int4 tensor-core path is used.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_FORMATS = ("bf16", "fp8", "fp4", "mxfp4", "int4")
KV_FORMATS = ("bf16", "fp8")

# FP8 carries one scale per output channel (negligible); FP4 is NVFP4: 4-bit values plus one
# FP8 scale per 16 values (NVIDIA Blackwell NVFP4 format) = 4.5 bits. MXFP4 (OCP microscaling, the
# format of gpt-oss's experts): 4-bit values plus one 8-bit exponent per 32 values = 4.25 bits.
# int4 (AWQ/GPTQ W4A16): 4-bit values plus one fp16 scale per group of 128 (both methods' default
# group size) = 4.125 bits; AWQ's zero points (4-bit, one per group) add 0.03 bits, ignored.
_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625, "mxfp4": 0.5 + 1.0 / 32, "int4": 0.5 + 2.0 / 128}
# The activations' format where the chip has the weights' tensor cores. MXFP4 runs with MXFP8
# activations: TensorRT-LLM's GPT-OSS MoE support matrix (B200/GB200: MXFP8 x MXFP4; H200: BF16 x
# MXFP4, Triton), its deployment guide for GPT-OSS.
_COMPUTE = {"bf16": "bf16", "fp8": "fp8", "fp4": "fp4", "mxfp4": "fp8", "int4": "bf16"}
# The tensor cores a format's weights need; without them the GEMMs run weight-only, in bf16.
_NEEDS = {"fp8": "fp8", "fp4": "fp4", "mxfp4": "fp4"}


def bytes_per(fmt: str) -> float:
    return _BYTES[fmt]


def math_format(weights: str, hw) -> str:
    """The precision the GEMMs of `weights` run at on `hw` (a Hardware): the narrow activations of
    the weights' format where the chip has its tensor cores, else bf16 (weight-only)."""
    need = _NEEDS.get(weights)
    if need and not hw.flops_per_s.get(need):
        return "bf16"
    return hw.math_format(_COMPUTE[weights])


@dataclass(frozen=True)
class Precision:
    """Number formats: `weights` (bf16, fp8, fp4, mxfp4, int4) and the `kv_cache`'s. What the GEMMs
    compute in depends on the GPU too (see `math_format`)."""

    weights: str = "bf16"
    kv_cache: str = "bf16"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}")
        if self.kv_cache not in KV_FORMATS:
            raise ValueError(f"kv_cache must be one of {KV_FORMATS}")
