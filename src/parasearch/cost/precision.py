"""Bytes per element of each storage format, and the format each weight format's GEMMs run in.

Quantized weights run their GEMMs in that format (W8A8, W4A4) where the chip has it
(`Hardware.peak_flops` falls back to a wider one). int4 is W4A16 (AWQ, GPTQ): the engines stream
4-bit weights and dequantize them inside bf16 GEMMs, as no int4 tensor-core path is used.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_FORMATS = ("bf16", "fp8", "fp4", "int4")
KV_FORMATS = ("bf16", "fp8")

# FP8 carries one scale per output channel (negligible); FP4 is NVFP4: 4-bit values plus one
# FP8 scale per 16 values (NVIDIA Blackwell NVFP4 format) = 4.5 bits. int4 (AWQ/GPTQ W4A16): 4-bit
# values plus one fp16 scale per group of 128 (both methods' default group size) = 4.125 bits;
# AWQ's zero points (4-bit, one per group) add 0.03 bits, ignored.
_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625, "int4": 0.5 + 2.0 / 128}
_COMPUTE = {"bf16": "bf16", "fp8": "fp8", "fp4": "fp4", "int4": "bf16"}


def bytes_per(fmt: str) -> float:
    return _BYTES[fmt]


def compute_format(weights: str) -> str:
    """The precision whose peak FLOP/s the GEMMs of `weights` run at."""
    return _COMPUTE[weights]


@dataclass(frozen=True)
class Precision:
    """Number formats: `weights` (bf16, fp8, fp4, int4, ...) and the `kv_cache`'s. Compute runs in
    the weights' format where the GPU has it (see `compute_format`)."""

    weights: str = "bf16"
    kv_cache: str = "bf16"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}")
        if self.kv_cache not in KV_FORMATS:
            raise ValueError(f"kv_cache must be one of {KV_FORMATS}")
