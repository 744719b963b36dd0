"""int4 weights (AWQ/GPTQ W4A16): 4-bit values plus an fp16 scale per 128 are streamed, and the
GEMMs run at the bf16 peak (no int4 tensor-core path in the engines)."""

from dataclasses import replace

import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.memory import weight_bytes_per_gpu
from parasearch.cost.precision import Precision, bytes_per, math_format
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
    assert math_format("int4", H100) == "bf16" and math_format("fp8", H100) == "fp8"


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


def test_4_bit_float_weights_run_weight_only_without_fp4_tensor_cores():
    """NVFP4 and MXFP4 on Hopper run weight-only, in bf16 GEMMs (TensorRT-LLM's GPT-OSS support
    matrix: H200 BF16 x MXFP4), not at the FP8 rate; on Blackwell NVFP4 is W4A4 and MXFP4 takes
    MXFP8 activations (B200: MXFP8 x MXFP4)."""
    b200, a100 = load_hardware("b200"), load_hardware("a100-sxm-80gb")
    assert math_format("fp4", H100) == math_format("mxfp4", H100) == "bf16"
    assert math_format("fp4", b200) == "fp4" and math_format("mxfp4", b200) == "fp8"
    assert math_format("fp8", a100) == "bf16"
    assert bytes_per("mxfp4") == pytest.approx((4 + 8 / 32) / 8)


def test_gpt_oss_keeps_its_attention_in_bf16():
    """gpt-oss's checkpoint quantizes the experts only (MXFP4); its quantization_config leaves
    self_attn out, so attention weights stay bf16 in its own format, and are quantized only when
    another format is asked for."""
    m = load_model("gpt-oss-20b")
    assert m.native_weights == "mxfp4" and m.bf16_attention
    assert m.attention_weights("mxfp4") == "bf16" and m.attention_weights("fp8") == "fp8"
    lay = Layout.of(tp=1)
    own, all_4bit = (float(weight_bytes_per_gpu(x, lay, "mxfp4")[0]) for x in (m, replace(m, bf16_attention=False)))
    assert own > all_4bit
