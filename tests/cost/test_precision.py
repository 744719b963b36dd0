"""int4 weights (AWQ/GPTQ W4A16): 4-bit values plus an fp16 scale per 128 are streamed, and the
GEMMs run at the bf16 peak (no int4 tensor-core path in the engines)."""

import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.memory import weight_bytes_per_gpu
from parasearch.cost.precision import Precision, bytes_per, compute_format
from parasearch.cost.step import decode_step, prefill_step

H100 = load_hardware("h100-sxm")
REF = load_engine("reference")
M = load_model("llama-3.1-70b")


def test_int4_stores_4_bits_and_a_scale_per_group_of_128():
    assert bytes_per("int4") == pytest.approx((4 + 16 / 128) / 8)
    w = {f: float(weight_bytes_per_gpu(M, Layout.of(tp=2), f)[0]) for f in ("bf16", "fp8", "int4")}
    # Quantized layers shrink by the format's bytes; embeddings and norms stay bf16 in every format.
    assert (w["bf16"] - w["int4"]) / (w["bf16"] - w["fp8"]) == pytest.approx(2 - 4.125 / 8, rel=1e-9)
    assert w["int4"] < 0.3 * w["bf16"]
    assert compute_format("int4") == "bf16" and compute_format("fp8") == "fp8"


def test_int4_decode_streams_fewer_bytes_than_fp8():
    """Small-batch decode is bound by streaming weights: fewer bytes, shorter steps."""
    t = {w: float(decode_step(M, H100, REF, Layout.of(tp=2), Precision(w), 1, 1024).tick[0])
         for w in ("bf16", "fp8", "int4")}
    assert t["int4"] < t["fp8"] < t["bf16"]


def test_int4_prefill_computes_at_the_bf16_peak():
    """A long prefill is bound by math: int4 weights compute at the bf16 rate (as slow as bf16,
    within what the smaller weight reads save), while fp8 uses the fp8 tensor cores."""
    t = {w: float(prefill_step(M, H100, REF, Layout.of(tp=2), Precision(w), 4, 8192).tick[0])
         for w in ("bf16", "fp8", "int4")}
    assert t["int4"] == pytest.approx(t["bf16"], rel=0.05)
    assert t["fp8"] < 0.8 * t["int4"]
