"""Memory per GPU: weights, KV cache, activation workspace, runtime reserve, and what fits.

All functions take a `Layout` of many placements and return arrays. Sizes are for the busiest
pipeline stage (the one with the most layers, plus the embedding or the lm_head).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import Attention, FeedForward, ModelSpec
from .layout import Layout, stage_layer_counts
from .precision import bytes_per

BF16 = 2.0


def realized(model: ModelSpec, engine: Engine) -> ModelSpec:
    """The model as the engine runs it: sliding windows count only where the engine's KV manager
    frees the pages outside them (otherwise the layers attend and store the full context).
    `hybrid` engines free them only for models that mix windowed and full layers."""
    windowed = [g.attention.window is not None for g in model.groups]
    if not any(windowed) or engine.sliding_window == "all" or (engine.sliding_window == "hybrid" and not all(windowed)):
        return model
    return model.without_windows()


def kv_heads_per_gpu(att: Attention, tp: np.ndarray) -> np.ndarray:
    """GQA KV heads held by one GPU: split while tp <= KV heads, then replicated (one head each)."""
    if att.kind == "mla":
        return np.ones_like(tp)
    return np.maximum(att.num_kv_heads // np.asarray(tp), 1)


def attention_params_per_gpu(att: Attention, hidden: int, tp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quantizable linear params, replicated small params) of one attention block on one GPU."""
    heads = att.num_heads / tp
    if att.kind == "mla":
        q_in = att.q_lora_rank or hidden
        replicated = hidden * (att.kv_lora_rank + att.qk_rope_head_dim) + (hidden * att.q_lora_rank)
        split = (q_in * heads * att.head_dim
                 + att.kv_lora_rank * heads * (att.qk_nope_head_dim + att.v_head_dim)
                 + heads * att.v_head_dim * hidden)
        return split, np.full_like(split, float(replicated))
    kv = kv_heads_per_gpu(att, tp)
    linear = hidden * (heads * att.head_dim + 2 * kv * att.head_dim) + heads * att.v_head_dim * hidden
    return linear, np.zeros_like(linear)


def ffn_params_per_gpu(ffn: FeedForward, hidden: int, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(quantizable linear params, bf16 params) of one feed-forward block on one GPU."""
    t_a = layout.attn_tp.astype(float)
    if ffn.kind == "dense":
        return 3.0 * hidden * ffn.intermediate / t_a, np.zeros_like(t_a)
    experts = ffn.num_experts / layout.ep * 3.0 * hidden * ffn.expert_intermediate / layout.tp
    shared = 3.0 * hidden * ffn.shared_intermediate / t_a
    router = np.full_like(t_a, float(hidden * ffn.num_experts))
    return experts + shared, router


def layer_weight_bytes(model: ModelSpec, layout: Layout, weights: str) -> np.ndarray:
    """Bytes of one layer of each group on one GPU, shape (n_groups, P)."""
    wb, ab = bytes_per(weights), bytes_per(model.attention_weights(weights))
    t_a = layout.attn_tp
    out = []
    for g in model.groups:
        a_lin, a_rep = attention_params_per_gpu(g.attention, model.hidden, t_a)
        f_lin, f_bf16 = ffn_params_per_gpu(g.ffn, model.hidden, layout)
        out.append((a_lin + a_rep) * ab + f_lin * wb + (f_bf16 + 2 * model.hidden) * BF16)
    return np.array(out, dtype=float)


def _stage_matrix(model: ModelSpec, pp_values: np.ndarray) -> dict[int, np.ndarray]:
    return {int(p): stage_layer_counts(model.layer_group_index, len(model.groups), int(p))
            for p in np.unique(pp_values)}


def weight_bytes_per_gpu(model: ModelSpec, layout: Layout, weights: str) -> np.ndarray:
    """Weights on one GPU of the heaviest stage; embedding and lm_head stay in bf16 (as
    FP8/FP4 checkpoints ship them), vocabulary-split over the attention TP group."""
    per_layer = layer_weight_bytes(model, layout, weights)
    vocab = model.vocab * model.hidden * BF16 / layout.attn_tp
    out = np.zeros(len(layout))
    for p, counts in _stage_matrix(model, layout.pp).items():
        sel = layout.pp == p
        stages = counts @ per_layer[:, sel]  # (pp, P_sel)
        stages[0] += vocab[sel]
        if not (model.tied_embeddings and p == 1):
            stages[-1] += vocab[sel]
        out[sel] = stages.max(axis=0)
    return out


def kv_bytes_per_token_layer(att: Attention, layout: Layout, kv: str) -> np.ndarray:
    """KV bytes one layer stores per token on one GPU. MLA keeps one latent of
    kv_lora_rank + rope dims per token, not split by tensor parallelism."""
    kb = bytes_per(kv)
    if att.kind == "mla":
        return np.full(len(layout), (att.kv_lora_rank + att.qk_rope_head_dim) * kb)
    return kv_heads_per_gpu(att, layout.attn_tp) * att.head_dim * 2 * kb


def kv_bytes_per_sequence(model: ModelSpec, layout: Layout, kv: str, context) -> np.ndarray:
    """KV bytes one sequence of `context` tokens takes on one GPU of the heaviest stage, in whole
    pages of the engine's block size is the caller's business (pass a rounded context)."""
    context = np.broadcast_to(np.asarray(context, float), (len(layout),))
    per_group = []
    for g in model.groups:
        tokens = context if g.attention.window is None else np.minimum(context, g.attention.window)
        per_group.append(kv_bytes_per_token_layer(g.attention, layout, kv) * tokens)
    per_group = np.array(per_group)
    out = np.zeros(len(layout))
    for p, counts in _stage_matrix(model, layout.pp).items():
        sel = layout.pp == p
        out[sel] = (counts @ per_group[:, sel]).max(axis=0)
    return out


def kv_bytes_per_token(model: ModelSpec, layout: Layout, kv: str, context=1.0) -> np.ndarray:
    """Per-token KV bytes on one GPU; with sliding-window layers, averaged over `context` tokens."""
    context = np.broadcast_to(np.asarray(context, float), (len(layout),))
    return kv_bytes_per_sequence(model, layout, kv, context) / context


def activation_bytes(model: ModelSpec, layout: Layout, engine: Engine) -> np.ndarray:
    """Workspace for one forward pass of max_num_tokens: a few hidden-sized buffers, the QKV and
    FFN intermediates of one layer, and fp32 logits for up to 1024 sampled rows."""
    t_a = layout.attn_tp.astype(float)
    widest_ffn = 0.0
    qkv = 0.0
    for g in model.groups:
        f = g.ffn
        width = f.intermediate if f.kind == "dense" else f.top_k * f.expert_intermediate + f.shared_intermediate
        widest_ffn = max(widest_ffn, width)
        a = g.attention
        qkv = max(qkv, a.num_heads * a.head_dim + 2 * a.num_kv_heads * a.head_dim)
    per_token = (4 * model.hidden + qkv / t_a + 3 * widest_ffn / t_a) * BF16
    return engine.max_num_tokens * per_token + 1024 * model.vocab / t_a * 4.0


@dataclass(frozen=True)
class MemoryPlan:
    weights: np.ndarray
    activations: np.ndarray
    reserve: float
    kv_budget: np.ndarray   # bytes per GPU given to the KV cache (negative: weights do not fit)
    hbm: float

    @property
    def fits(self) -> np.ndarray:
        return self.kv_budget > 0


def plan_memory(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, weights: str) -> MemoryPlan:
    """Bytes per GPU for weights, workspace, runtime and the KV pool, sized the engine's way
    (`Engine.memory_fraction_of`). A negative budget means the weights do not fit."""
    engine = engine.on(hw)
    w = weight_bytes_per_gpu(model, layout, weights)
    act = activation_bytes(model, layout, engine)
    reserve = engine.runtime_reserve_bytes
    f = engine.memory_fraction
    free = hw.hbm_bytes - w - act - reserve
    if engine.memory_fraction_of == "free":
        budget = np.where(free > 0, free * f, free)
    elif engine.memory_fraction_of == "total":
        budget = np.minimum(f * hw.hbm_bytes - w - act - reserve, free)
    else:  # static: the pool and the weights share f of memory; workspace and runtime the rest
        budget = np.where(free > 0, np.minimum(f * hw.hbm_bytes - w, free), free)
    return MemoryPlan(w, act, reserve, budget, hw.hbm_bytes)


def page_round(context, block: int) -> np.ndarray:
    return np.ceil(np.asarray(context, float) / block) * block


def sequences_that_fit(plan: MemoryPlan, per_seq: np.ndarray, layout: Layout) -> np.ndarray:
    """Sequences of `per_seq` KV bytes per GPU one replica holds: each attention group its own."""
    return np.floor(np.maximum(plan.kv_budget, 0) / per_seq) * layout.attn_groups


def max_sequences(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, weights: str, kv: str,
                  context, plan: MemoryPlan | None = None) -> np.ndarray:
    """Most sequences of `context` tokens (in whole KV pages) one replica can hold."""
    plan = plan or plan_memory(model, hw, engine, layout, weights)
    per_seq = kv_bytes_per_sequence(model, layout, kv, page_round(context, engine.kv_block_tokens))
    return sequences_that_fit(plan, per_seq, layout)
