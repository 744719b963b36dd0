import numpy as np
import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout, stage_layer_counts
from parasearch.cost.memory import (kv_bytes_per_sequence, kv_bytes_per_token, max_sequences, plan_memory,
                                    weight_bytes_per_gpu)


def test_tp_splits_weights_except_replicated_kv_heads():
    m = load_model("llama-3.1-70b")
    w = weight_bytes_per_gpu(m, Layout.of(tp=[1, 2, 8]), "bf16")
    assert w[1] == pytest.approx(w[0] / 2, rel=1e-4)  # norms are replicated
    assert w[2] == pytest.approx(w[0] / 8, rel=1e-3)
    # TP16 > 8 KV heads: K/V projections are replicated, so weights shrink by less than 2x.
    w16 = weight_bytes_per_gpu(m, Layout.of(tp=16), "bf16")[0]
    assert w[2] / 2 < w16 < w[2]


def test_fp8_halves_linear_weights_but_keeps_embeddings_in_bf16():
    m = load_model("llama-3.1-70b")
    bf16, fp8 = (weight_bytes_per_gpu(m, Layout.of(), f)[0] for f in ("bf16", "fp8"))
    vocab = 2 * m.vocab * m.hidden * 2
    assert fp8 == pytest.approx((bf16 - vocab) / 2 + vocab, rel=1e-3)


def test_pipeline_stages_split_layers_evenly():
    counts = stage_layer_counts(tuple([0] * 3 + [1] * 58), 2, 4)
    assert counts.sum() == 61 and counts.sum(axis=1).tolist() == [16, 15, 15, 15]
    m = load_model("llama-3.1-405b")
    w1, w2 = weight_bytes_per_gpu(m, Layout.of(pp=[1, 2]), "bf16")
    assert w2 == pytest.approx(w1 / 2, rel=1e-3)  # 63 layers + embedding vs 63 layers + lm_head


def test_expert_parallel_splits_experts():
    m = load_model("deepseek-r1")
    w = weight_bytes_per_gpu(m, Layout.of(ep=[1, 8], attn_dp=[False, True]), "fp8")
    assert w[1] < w[0] / 6  # experts dominate; attention is replicated per attention-DP group


def test_max_sequences_grows_with_tp_the_capacity_trap():
    m, hw, e = load_model("llama-3.1-70b"), load_hardware("h100-sxm"), load_engine("reference")
    seqs = max_sequences(m, hw, e, Layout.of(tp=[1, 2, 4]), "fp8", "fp8", 2176)
    assert 5 < seqs[0] < 40            # 72.7 GB of weights leave little room on an 80 GB GPU
    assert seqs[1] > 8 * seqs[0]        # TP2 frees about half of each GPU
    assert seqs[2] > 2 * seqs[1]


def test_attention_dp_multiplies_mla_capacity():
    m, hw, e = load_model("deepseek-r1"), load_hardware("h200"), load_engine("reference")
    lay = Layout.of(tp=[1, 1], ep=[8, 8], attn_dp=[False, True])
    seqs = max_sequences(m, hw, e, lay, "fp8", "fp8", 17408)
    # Each attention-DP group caches only its own sequences' latents; replicated attention
    # weights take some of the room back.
    assert seqs[1] > 5 * seqs[0]


def test_kv_per_sequence_rounds_nothing_and_weights_that_do_not_fit_are_flagged():
    m, hw, e = load_model("llama-3.1-405b"), load_hardware("h100-sxm"), load_engine("reference")
    plan = plan_memory(m, hw, e, Layout.of(tp=[1, 8]), "bf16")
    assert not plan.fits[0] and not plan.fits[1]  # 810 GB of bf16 weights need more than 8 x 80 GB
    plan = plan_memory(m, hw, e, Layout.of(tp=8, pp=2), "bf16")
    assert plan.fits[0]
    per = kv_bytes_per_sequence(m, Layout.of(tp=8), "bf16", 1000)[0]
    assert per == kv_bytes_per_token(m, Layout.of(tp=8), "bf16")[0] * 1000
    assert np.all(kv_bytes_per_token(m, Layout.of(tp=[8, 16]), "fp8") == 126 * 128 * 2)
