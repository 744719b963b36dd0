"""Bytes per element of each storage format. Quantized weights run their GEMMs in that format
(W8A8, W4A4) where the chip has it (`Hardware.peak_flops` falls back to a wider one)."""

from __future__ import annotations

from dataclasses import dataclass

WEIGHT_FORMATS = ("bf16", "fp8", "fp4")
KV_FORMATS = ("bf16", "fp8")

# FP8 carries one scale per output channel (negligible); FP4 is NVFP4: 4-bit values plus one
# FP8 scale per 16 values (NVIDIA Blackwell NVFP4 format) = 4.5 bits.
_BYTES = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625}


def bytes_per(fmt: str) -> float:
    return _BYTES[fmt]


@dataclass(frozen=True)
class Precision:
    weights: str = "bf16"
    kv_cache: str = "bf16"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_FORMATS:
            raise ValueError(f"weights must be one of {WEIGHT_FORMATS}")
        if self.kv_cache not in KV_FORMATS:
            raise ValueError(f"kv_cache must be one of {KV_FORMATS}")
