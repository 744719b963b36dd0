import numpy as np
import pytest

from parasearch.catalog.hardware import load_hardware
from parasearch.cost import kernels as K

H100 = load_hardware("h100-sxm")


def test_gemm_is_memory_bound_at_small_m_and_compute_bound_at_large_m():
    small = K.gemm(H100, 1, 8192, 8192, weight_bytes=2, peak_flops=H100.peak_flops("bf16"))
    large = K.gemm(H100, 16384, 8192, 8192, weight_bytes=2, peak_flops=H100.peak_flops("bf16"))
    assert small.memory > 10 * small.compute
    assert large.compute > 10 * large.memory
    # Streaming 128 MiB of weights takes about bytes / (efficiency x bandwidth).
    assert float(small.time) == pytest.approx(8192 * 8192 * 2 / (3.35e12 * H100.efficiency.gemm_bw), rel=0.05)


def test_gemm_time_grows_with_m():
    m = np.array([1, 16, 256, 1024, 4096, 16384])
    t = K.gemm(H100, m, 4096, 14336, weight_bytes=2, peak_flops=H100.peak_flops("bf16")).time
    assert np.all(np.diff(t) >= 0)


def test_decode_attention_is_limited_by_thread_blocks_at_small_batch():
    kv = 134_217_728
    few = float(K.decode_attention(H100, kv, 8).time)
    many = float(K.decode_attention(H100, kv, 1024).time)
    assert few > 5 * many
    assert kv / few == pytest.approx(8 * H100.efficiency.attn_cta_bytes_per_s, rel=1e-6)


def test_prefill_attention_efficiency_ramps_with_blocks():
    f = 1e12
    t_small = float(K.prefill_attention(H100, f, 64, peak_flops=H100.peak_flops("bf16")).time)
    t_big = float(K.prefill_attention(H100, f, 8192, peak_flops=H100.peak_flops("bf16")).time)
    assert t_small > 1.5 * t_big
