"""One scheduler step of a serving engine: the GPU's forward pass, the host's work around it, and
the pipeline schedule. All arrays broadcast over placements; token counts are per replica.

- Host: every step costs the CPU `host_step_s + host_per_seq_s x sequences` (scheduling, input
  preparation, sampling, output processing), plus `eager_launch_s` per kernel when the step runs
  outside a CUDA graph. With `host_overlap` (async scheduling, overlap scheduler) the host prepares
  step n+1 while the GPU runs step n and a step takes max(GPU, host); without, host + GPU (kernel
  launches still overlap the GPU, as CUDA queues them asynchronously).
- CUDA graphs: decode-only steps of up to `cuda_graph_max_batch` sequences per rank replay a graph;
  steps that carry prompt chunks do only when `graphs_for_mixed_steps`.
- Pipeline: with micro-batching, m = min(pp + spare, sequences) micro-batches take turns through
  the pp stages and each sequence advances once every max(m, pp) stage ticks (fewer micro-batches
  than stages leave bubbles); each tick also pays `pp_sync_s`, the per-micro-batch hand-off no
  overlap hides, and `pp_sync_per_stage_s` for each stage beyond the first (the sampled tokens
  passed from rank to rank on the host). Without micro-batching one batch walks the stages: pp
  ticks per token.
"""

from __future__ import annotations

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from .layout import Layout
from .precision import Precision
from .step import StepCost, Tokens, forward


def micro_batches(engine: Engine, layout: Layout, seqs) -> np.ndarray:
    """Micro-batches a step's sequences are split into over the pipeline stages: pp, plus the
    engine's extra ones in flight, never more than the sequences (none without pipelining)."""
    seqs = np.maximum(np.broadcast_to(np.asarray(seqs, float), (len(layout),)), 1.0)
    if not engine.pp_micro_batches:
        return np.ones(len(layout))
    extra = np.where(layout.pp > 1, engine.pp_extra_micro_batches, 0)
    return np.minimum(layout.pp + extra, seqs)


def engine_step(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision,
                tokens: Tokens) -> StepCost:
    """One engine step carrying `tokens` (per replica). `tick` is the time per token advance of a
    sequence (the step's period), `through` the latency of one pass through every stage."""
    engine = engine.on(hw)
    n = len(layout)
    as_n = lambda v: np.broadcast_to(np.asarray(v, float), (n,))  # noqa: E731
    dec, pre = as_n(tokens.dec), as_n(tokens.pre)
    seqs = dec + pre
    micro = micro_batches(engine, layout, seqs)
    per = Tokens(np.ceil(dec / micro), tokens.ctx, pre / micro, tokens.plen, tokens.pctx,
                 None if tokens.pre_busiest is None else as_n(tokens.pre_busiest) / micro)
    sc = forward(model, hw, engine, layout, prec, per)
    groups = layout.attn_groups.astype(float)
    rank_seqs = np.ceil(per.dec / groups) + (per.pre / groups if per.pre_busiest is None else per.pre_busiest)
    graphed = (pre <= 0) & (np.ceil(per.dec / groups) <= engine.cuda_graph_max_batch)
    graphed |= (pre > 0) & engine.graphs_for_mixed_steps & (rank_seqs <= engine.cuda_graph_max_batch)
    launches = sc.breakdown.launches if sc.breakdown.launches is not None else np.zeros(n)
    launch_host = np.where(graphed, 0.0, launches * engine.eager_launch_s)
    sched = np.where(seqs > 0, engine.host_step_s + engine.host_per_seq_s * rank_seqs, 0.0)
    overlap = np.where(layout.pp > 1, engine.host_overlap_with_pp, engine.host_overlap)
    stage = np.where(overlap, np.maximum(sc.tick, sched + launch_host), sched + np.maximum(sc.tick, launch_host))
    # Each micro-batch's hand-off between stages is a synchronisation no overlap hides.
    stage = stage + np.where(layout.pp > 1, engine.pp_sync_s + engine.pp_sync_per_stage_s * (layout.pp - 1), 0.0)
    host = np.maximum(stage - sc.tick, 0.0)   # what the host (and the stage hand-off) adds to each tick
    through = sc.through + host * layout.pp
    if engine.pp_micro_batches:
        # m micro-batches take turns through the stages; a sequence's next pass waits for its own
        # pass through all of them (spare micro-batches fill the stages meanwhile).
        period = np.maximum(micro, layout.pp) * stage
    else:
        period = through
    cycle = period / np.maximum(stage, 1e-30)
    return StepCost(period, through, sc.breakdown.add_latency(host).scaled(cycle))


def decode_step(model, hw, engine, layout: Layout, prec: Precision, batch, context) -> StepCost:
    """One decode iteration for `batch` sequences per replica at `context` cached tokens."""
    zero = np.zeros(len(layout))
    return engine_step(model, hw, engine, layout, prec, Tokens(batch, context, zero, zero))


def prefill_step(model, hw, engine, layout: Layout, prec: Precision, batch, length) -> StepCost:
    """`batch` whole prompts of `length` tokens in one step; `tick` is the time until the last
    prompt leaves the last stage, `through` the time for the first one."""
    engine = engine.on(hw)
    n = len(layout)
    batch = np.maximum(np.broadcast_to(np.asarray(batch, float), (n,)), 1.0)
    zero = np.zeros(n)
    sc = engine_step(model, hw, engine, layout, prec, Tokens(zero, zero, batch, length))
    micro = micro_batches(engine, layout, batch)
    period = sc.tick / np.maximum(micro, layout.pp)         # about one stage tick
    total = sc.through + (micro - 1) * period
    return StepCost(total, sc.through, sc.breakdown.scaled(total / np.maximum(sc.tick, 1e-30)))
