import numpy as np
import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.cost.step import decode_step, prefill_step

H100, H200 = load_hardware("h100-sxm"), load_hardware("h200")
REF = load_engine("reference")
BF16 = Precision()


def test_decode_grows_with_batch_and_context():
    m = load_model("llama-3.1-8b")
    lay = Layout.of(tp=np.ones(4, int))
    t_b = decode_step(m, H100, REF, lay, BF16, [1, 16, 64, 256], 2048).tick
    t_c = decode_step(m, H100, REF, lay, BF16, 32, [512, 2048, 8192, 32768]).tick
    assert np.all(np.diff(t_b) > 0) and np.all(np.diff(t_c) > 0)


def test_small_batch_decode_is_bandwidth_bound_and_long_prefill_compute_bound():
    m = load_model("llama-3.1-70b")
    d = decode_step(m, H200, REF, Layout.of(tp=2), BF16, 1, 1024)
    p = prefill_step(m, H200, REF, Layout.of(tp=2), BF16, 4, 8192)
    assert d.bottleneck[0] == "memory"
    assert p.bottleneck[0] == "compute"


def test_tensor_parallel_speeds_decode_sublinearly():
    m = load_model("llama-3.1-70b")
    t = decode_step(m, H100, REF, Layout.of(tp=[2, 4, 8]), Precision("fp8", "fp8"), 64, 4096).tick
    assert t[0] > t[1] > t[2]
    assert t[0] / t[2] < 4  # all-reduces and fixed costs do not shrink with TP


def test_tp_across_nodes_pays_the_network():
    m = load_model("llama-3.1-405b")
    lay = Layout.of(tp=[8, 16], pp=[2, 1])
    sc = decode_step(m, H100, REF, lay, Precision("fp8", "fp8"), 64, 4096)
    assert sc.breakdown.interconnect[1] > 2 * sc.breakdown.interconnect[0]


def test_pipeline_decode_advances_each_sequence_once_per_cycle():
    m = load_model("llama-3.1-70b")
    one = decode_step(m, H200, REF, Layout.of(tp=4), BF16, 64, 2048).tick[0]
    two = decode_step(m, H200, REF, Layout.of(tp=4, pp=2), BF16, 64, 2048).tick[0]
    # Two stages of half the layers, two micro-batches of half the batch: about the same period.
    assert two == pytest.approx(one, rel=0.35)


def test_moe_attention_dp_trades_allreduce_for_all_to_all():
    m = load_model("deepseek-r1")
    lay = Layout.of(tp=[8, 1], ep=[1, 8], attn_dp=[False, True])
    sc = decode_step(m, H200, REF, lay, Precision("fp8", "fp8"), 256, 4096)
    assert np.all(sc.tick > 0)
    # With attention TP over 8 GPUs every GPU reads the whole MLA latent cache; attention-DP splits it.
    assert sc.breakdown.memory[1] < sc.breakdown.memory[0]


def test_prefill_time_scales_with_prompt_tokens():
    m = load_model("qwen2.5-32b")
    t = prefill_step(m, H100, REF, Layout.of(tp=np.ones(3, int)), BF16, [1, 2, 4], 2048).tick
    assert t[1] == pytest.approx(2 * t[0], rel=0.1) and t[2] == pytest.approx(4 * t[0], rel=0.1)


def test_groups_larger_than_a_scale_up_domain_pay_the_network():
    from parasearch.cost import comm
    gb200 = load_hardware("gb200")
    bw72, lat72 = comm.allreduce(gb200, 72, 1e6)
    bw128, lat128 = comm.allreduce(gb200, 128, 1e6)
    assert lat128 > lat72 and bw128 > bw72
    assert load_hardware("h100-sxm").in_nodes_of(4).scale_up_domain_gpus == 4
    assert gb200.in_nodes_of(4).scale_up_domain_gpus == 72


def test_small_all_reduces_go_one_shot_where_the_engine_and_fabric_have_it():
    from parasearch.cost import comm
    one = H200.scale_up_oneshot_latency_s
    assert 0 < one < H200.scale_up_latency_s
    small, large = 8192 * 2.0, 8192 * 2.0 * 4096      # one token, a 4096-token prefill chunk
    bw, lat = comm.allreduce(H200, 8, small, oneshot=True)
    assert lat == one and bw == pytest.approx(7 * small / (H200.scale_up_bytes_per_s * H200.collective_efficiency))
    # Without the engine's kernel, or for a payload where reading every peer's buffer costs more
    # than the ring's second hop saves, it is the ring: 2(n-1)/n of the payload, the ring latency.
    for args in ((8, small, False), (8, large, True)):
        bw, lat = comm.allreduce(H200, *args)
        assert lat == H200.scale_up_latency_s
        assert bw == pytest.approx(1.75 * args[1] / (H200.scale_up_bytes_per_s * H200.collective_efficiency))
    # PCIe cards have no one-shot kernel; groups spanning nodes do not use one.
    rtx = load_hardware("rtx-pro-6000")
    assert comm.allreduce(rtx, 4, small, oneshot=True)[1] == rtx.scale_up_latency_s
    assert comm.allreduce(H200, 16, small, oneshot=True)[1] > H200.scale_up_latency_s
    # Every serving engine has such a kernel; the PyTorch harness (NCCL) does not.
    assert all(load_engine(e).oneshot_allreduce for e in ("vllm", "sglang", "trtllm"))
    assert not REF.oneshot_allreduce


def test_moe_elementwise_traffic_does_not_grow_with_expert_parallelism():
    m = load_model("mixtral-8x7b")
    lay = Layout.of(tp=[1, 1], ep=[4, 8])
    p = prefill_step(m, H200, REF, lay, BF16, 1, 4096)
    assert p.tick[1] < p.tick[0] * 1.05


def test_nan_efficiency_never_reports_a_negative_time():
    from dataclasses import replace
    hw = H100.with_efficiency(replace(H100.efficiency, gemm_bw=float("nan")))
    t = decode_step(load_model("llama-3.1-8b"), hw, REF, Layout.of(), BF16, 1, 128).tick[0]
    assert not t < 0


def test_the_pipeline_hand_off_grows_with_the_stages():
    """TensorRT-LLM passes each micro-batch's sampled tokens from rank to rank: every tick of a
    pp-stage pipeline pays the per-stage hand-off pp - 1 times, and a cycle has pp ticks."""
    m, hw = load_model("llama-3.3-70b"), load_hardware("rtx-pro-6000")
    lay = Layout.of(tp=[1, 1, 1, 1], pp=[1, 2, 4, 8])
    base = load_engine("trtllm").with_overrides(pp_sync_s=0.0, pp_sync_per_stage_s=0.0)
    hand_off = base.with_overrides(pp_sync_per_stage_s=1e-3)
    prec = Precision("fp4", "fp8")
    t0, t1 = (decode_step(m, hw, e, lay, prec, 512, 2048).tick for e in (base, hand_off))
    assert t1 - t0 == pytest.approx(lay.pp * (lay.pp - 1) * 1e-3)


def test_two_batch_overlap_hides_the_all_to_all_behind_the_layers_work():
    """With two micro-batches in turn (SGLang's two-batch overlap, vLLM's dual-batch overlap) an
    attention-DP MoE step pays only the all-to-all transfer its work cannot cover; a layout
    without attention-DP has no all-to-all and does not change."""
    m = load_model("deepseek-r1")
    lay = Layout.of(tp=[1, 8], ep=[8, 1], attn_dp=[True, False])
    plain = load_engine("sglang").with_overrides(moe_overlap_a2a=False)
    tbo = plain.with_overrides(moe_overlap_a2a=True)
    prec = Precision("fp8", "fp8")
    a, b = (decode_step(m, H200, e, lay, prec, 2048, 2048) for e in (plain, tbo))
    assert b.tick[0] < a.tick[0] and b.tick[1] == pytest.approx(a.tick[1])
    hidden = a.breakdown.interconnect[0] - b.breakdown.interconnect[0]
    assert 0 < hidden <= b.breakdown.compute[0] + b.breakdown.memory[0]


def test_quantized_expert_gemms_take_the_chips_own_fp4_fit_not_the_bf16_one():
    """FP4 expert GEMMs on a B200 reach the share of the FP4 peak that its dense FP4 fit shows
    against bf16, and ramp with tokens per expert as slowly as dense FP4 GEMMs ramp with tokens."""
    from parasearch.cost.step import Ctx
    b200, trt = load_hardware("b200"), load_engine("trtllm")
    e = b200.efficiency
    lay = Layout.of(tp=[1])
    m = load_model("qwen3-30b-a3b")
    fp4 = Ctx(m, b200, trt, lay, Precision(weights="fp4")).grouped_quantized
    assert Ctx(m, b200, trt, lay, BF16).grouped_quantized == {}
    assert fp4["flops_scale"] == pytest.approx(e.gemm_flops_fp4 / e.gemm_flops) and fp4["flops_scale"] < 1
    assert fp4["m_half"] == max(e.grouped_m_half, e.gemm_m_half_fp4)
    # An 8192-token prefill chunk of a small-expert model (512 tokens per expert): its expert
    # GEMMs' arithmetic takes longer than with the bf16 plateau and ramp at the FP4 peak.
    from parasearch.cost import kernels as K
    args = (b200, 128, 8192 * 8 / 128, m.hidden, 768)
    kw = dict(weight_bytes=0.5, peak_flops=b200.peak_flops("fp4"))
    own, borrowed = K.grouped_gemm(*args, **kw, **fp4), K.grouped_gemm(*args, **kw)
    assert own.compute > borrowed.compute / fp4["flops_scale"] and own.time > 1.1 * borrowed.time
