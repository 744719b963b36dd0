"""Settings a benchmark harness chose for the rows it published.

TensorRT-LLM's perf-overview tables come from `trtllm-bench`, which does not run the engine's
defaults: it sizes max_batch_size and max_num_tokens from its own estimate of the KV cache
(tensorrt_llm/bench/tuning/heuristics.py, calc_engine_setting and finetune_setting; the same
formula in bench/build/tuning.py of the TensorRT backend), turns on CUDA-graph padding up to that
batch and, with chunked prefill off (its default), lets a whole prompt into one step.
"""

from __future__ import annotations

import math

import numpy as np

from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from ..cost.layout import Layout
from ..cost.memory import kv_bytes_per_token, weight_bytes_per_gpu

TRTLLM_BENCH_KV_FRACTION = 0.95   # heuristics.py: (GPUs x memory - checkpoint) x 0.95
TRTLLM_BENCH_MAX_BATCH = 4096
TRTLLM_BENCH_MAX_TOKENS = 32768


def _round_batch(raw: float) -> int:
    if raw < 256:
        return max(64, math.ceil(raw / 32) * 32)
    if raw < 1024:
        return math.ceil(raw / 128) * 128
    return math.ceil(raw / 256) * 256


def _round_tokens(raw: float) -> int:
    if raw < 4096:
        return max(2048, math.ceil(raw / 256) * 256)
    if raw < 8192:
        return math.ceil(raw / 512) * 512
    return math.ceil(raw / 1024) * 1024


def trtllm_bench(model: ModelSpec, hw: Hardware, tp: int, pp: int, ep: int, attn_dp: bool, weights: str, kv: str,
                 isl: float, osl: float) -> tuple[int, int]:
    """(sequences in flight per replica, max_num_tokens) trtllm-bench picks for a layout."""
    one = Layout.of()
    checkpoint = float(weight_bytes_per_gpu(model, one, weights)[0])
    per_token = float(kv_bytes_per_token(model, one, kv)[0])       # all layers, all KV heads
    gpus = tp * pp * ep
    budget = (gpus * hw.hbm_bytes - checkpoint) * TRTLLM_BENCH_KV_FRACTION
    ranks = ep if attn_dp else 1                                    # attention-DP: a budget per rank
    raw = min(budget / ranks / (per_token * (isl + osl)), TRTLLM_BENCH_MAX_BATCH) / pp
    max_bs = _round_batch(max(raw, 1.0))
    tokens = _round_tokens(min(max_bs * (1.0 + isl / osl), TRTLLM_BENCH_MAX_TOKENS))
    tokens = max(tokens, int(isl) + max_bs)                         # chunked prefill off: a whole prompt fits
    return max_bs * pp * ranks, tokens


def uses_trtllm_bench(source: str, engine: str) -> bool:
    """TensorRT-LLM perf-overview tables are trtllm-bench runs."""
    return engine == "trtllm" and "perf-overview" in source


def settings(rows, models, hws) -> tuple[np.ndarray, np.ndarray]:
    """(max batch per replica, max_num_tokens) per row from its harness; 0 where the engine's own
    defaults (or the row's stated batch) apply."""
    cap, tokens = np.zeros(len(rows)), np.zeros(len(rows))
    for i, r in enumerate(rows):
        if r.max_batch is None and uses_trtllm_bench(r.source, r.engine):
            cap[i], tokens[i] = trtllm_bench(models[r.model], hws[r.hardware], r.tp, r.pp, r.ep, r.attn_dp,
                                             r.weights, r.kv_cache, r.input_tokens, r.output_tokens)
    return cap, tokens
