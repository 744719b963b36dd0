"""Steady-state serving of a workload by continuous (in-flight) batching.

Each replica keeps `batch` sequences in flight. The batch is the smallest of the engine's cap,
what the KV cache can hold (each admitted sequence reserves its pages), and, with an arrival
rate, what the traffic sustains (Little's law). Every iteration advances each sequence by one
token and mixes in the prompt work of the sequences that replace finished ones (chunked prefill):
on average batch * input / output prompt tokens per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from .layout import Layout
from .memory import MemoryPlan, kv_bytes_per_sequence, page_round, plan_memory, sequences_that_fit
from .precision import Precision
from .step import StepCost, Tokens, decode_step, forward, micro_batches


@dataclass(frozen=True)
class Workload:
    input_tokens: float
    output_tokens: float                 # mean output length
    output_tokens_reserved: float | None = None  # length reserved per sequence (default: the mean)
    arrival_rate: float | None = None    # requests per second for the whole group, None: saturate

    @property
    def reserved_output(self) -> float:
        return self.output_tokens_reserved or self.output_tokens


@dataclass
class Serving:
    batch: np.ndarray                # sequences in flight per replica
    kv_limit: np.ndarray             # most sequences the KV cache holds per replica
    tpot_s: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    output_tokens_per_s: np.ndarray  # whole group (dp replicas)
    per_gpu: np.ndarray
    per_user: np.ndarray             # tokens/s one sequence sees (1 / TPOT)
    bottleneck: np.ndarray           # resource that binds
    kv_share: np.ndarray             # share of HBM the KV cache of the running batch takes
    kv_reserved: np.ndarray          # bytes per GPU reserved for the running batch (pages held)
    memory: MemoryPlan
    step: StepCost
    fits: np.ndarray
    utilization: np.ndarray          # offered load / capacity (arrival rate given), else 1


def _mixed_step(model, hw, engine, layout, prec, batch, wl: Workload) -> tuple[StepCost, np.ndarray]:
    """One iteration for `batch` sequences per replica, micro-batched over pipeline stages."""
    micro, per = micro_batches(layout, batch)
    ctx = wl.input_tokens + wl.output_tokens / 2.0
    prompts = per / wl.output_tokens
    sc = forward(model, hw, engine, layout, prec, Tokens(per, ctx, prompts, wl.input_tokens))
    cycle = np.maximum(micro, layout.pp)
    return StepCost(sc.tick * cycle, sc.through, sc.breakdown.scaled(cycle)), per


def _admissible_batch(model, hw, engine, layout, prec, wl: Workload, max_batch):
    """(memory plan, KV bytes reserved per sequence, KV-limited batch, batch, fits): each admitted
    sequence reserves its pages (input + output under the `max` policy, the mean context otherwise)."""
    n = len(layout)
    max_batch = np.broadcast_to(np.asarray(max_batch, float), (n,))
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    reserve_ctx = wl.input_tokens + (wl.reserved_output if engine.kv_reservation == "max" else wl.output_tokens / 2)
    per_seq = kv_bytes_per_sequence(model, layout, prec.kv_cache, page_round(reserve_ctx, engine.kv_block_tokens))
    kv_limit = sequences_that_fit(plan, per_seq, layout)
    batch = np.minimum(max_batch, kv_limit)
    return plan, per_seq, kv_limit, np.maximum(batch, 1.0), batch >= 1


def serve(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
          max_batch) -> Serving:
    n = len(layout)
    max_batch = np.broadcast_to(np.asarray(max_batch, float), (n,))
    plan, per_seq, kv_limit, batch, fits = _admissible_batch(model, hw, engine, layout, prec, wl, max_batch)

    utilization = np.ones(n)
    if wl.arrival_rate:
        # Little's law: sequences in flight = arrival rate x time in decode. Iterate to the fixed
        # point (step time grows with batch), never above the memory/cap limit.
        rate = wl.arrival_rate / layout.dp
        cap_step, _ = _mixed_step(model, hw, engine, layout, prec, batch, wl)
        capacity = batch / cap_step.tick / wl.output_tokens
        utilization = rate / capacity
        need = batch.copy()
        for _ in range(30):
            st, _ = _mixed_step(model, hw, engine, layout, prec, need, wl)
            new = np.minimum(batch, np.maximum(np.ceil(rate * wl.output_tokens * st.tick), 1.0))
            if np.array_equal(new, need):
                break
            need = new
        batch = need

    step, per = _mixed_step(model, hw, engine, layout, prec, batch, wl)
    tpot = step.tick
    # A new prompt waits on average half an iteration, then runs through every stage beside the
    # running micro-batch, in chunks of at most max_num_tokens.
    chunk = np.minimum(wl.input_tokens, np.maximum(engine.max_num_tokens - per, 1.0))
    chunks = np.ceil(wl.input_tokens / chunk)
    first = forward(model, hw, engine, layout, prec, Tokens(per, wl.input_tokens, np.ones(n), chunk))
    ttft = 0.5 * tpot + chunks * first.through
    if wl.arrival_rate:
        rho = np.minimum(utilization, 0.999)
        ttft = ttft + rho / (2.0 * (1.0 - rho)) * chunks * first.through  # M/D/1 queueing for admission
    e2e = ttft + (wl.output_tokens - 1) * tpot
    replica_tps = batch / tpot
    tps = np.where(fits, replica_tps * layout.dp, 0.0)
    per_gpu = tps / layout.gpus

    live_ctx = wl.input_tokens + wl.output_tokens / 2.0
    kv_live = kv_bytes_per_sequence(model, layout, prec.kv_cache, live_ctx) * np.ceil(batch / layout.attn_groups)
    kv_share = kv_live / hw.hbm_bytes
    kv_reserved = per_seq * np.ceil(batch / layout.attn_groups)

    bottleneck = step.bottleneck.astype(object)
    capacity_bound = fits & (kv_limit < max_batch) & (batch >= kv_limit)
    bottleneck = np.where(capacity_bound, "kv-capacity", bottleneck)
    bottleneck = np.where(fits, bottleneck, np.where(plan.fits, "kv-capacity", "weights-memory"))
    return Serving(batch=np.where(fits, batch, 0.0), kv_limit=kv_limit, tpot_s=tpot, ttft_s=ttft, e2e_s=e2e,
                   output_tokens_per_s=tps, per_gpu=per_gpu, per_user=np.where(fits, 1.0 / tpot, 0.0),
                   bottleneck=bottleneck.astype(str), kv_share=kv_share, kv_reserved=np.where(fits, kv_reserved, 0.0),
                   memory=plan, step=step, fits=fits,
                   utilization=utilization)


@dataclass
class RoleCapacity:
    """What one replica dedicated to one phase sustains (disaggregated serving)."""

    fits: np.ndarray
    requests_per_s: np.ndarray   # requests this replica finishes per second at saturation
    tpot_s: np.ndarray           # decode: time per output token; prefill: 0
    ttft_s: np.ndarray           # prefill: time to first token (batch wait + compute), decode: 0
    batch: np.ndarray            # decode: sequences in flight; prefill: prompts per forward pass
    bottleneck: np.ndarray


def decode_only(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
                max_batch) -> RoleCapacity:
    """A decode replica: sequences arrive with their prompt's KV cache already built elsewhere."""
    n = len(layout)
    max_batch = np.broadcast_to(np.asarray(max_batch, float), (n,))
    _, _, kv_limit, batch, fits = _admissible_batch(model, hw, engine, layout, prec, wl, max_batch)
    sc = decode_step(model, hw, engine, layout, prec, batch, wl.input_tokens + wl.output_tokens / 2)
    tpot = sc.tick
    bottleneck = np.where(fits & (kv_limit < max_batch), "kv-capacity", sc.bottleneck)
    return RoleCapacity(fits, np.where(fits, batch / tpot / wl.output_tokens, 0.0), tpot, np.zeros(n), batch,
                        bottleneck.astype(str))


def prefill_only(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
                 prompts) -> RoleCapacity:
    """A prefill replica running `prompts` prompts per forward pass (micro-batched over stages).
    A prompt waits on average half a pass before it starts, then runs through every stage."""
    n = len(layout)
    prompts = np.broadcast_to(np.asarray(prompts, float), (n,))
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    micro, per = micro_batches(layout, prompts)
    zero = np.zeros(n)
    sc = forward(model, hw, engine, layout, prec, Tokens(zero, zero, per, wl.input_tokens))
    kv = kv_bytes_per_sequence(model, layout, prec.kv_cache, page_round(wl.input_tokens, engine.kv_block_tokens))
    fits = plan.fits & (kv * np.ceil(prompts / layout.attn_groups) <= np.maximum(plan.kv_budget, 0.0))
    fits &= prompts * wl.input_tokens <= max(engine.max_num_tokens, wl.input_tokens)
    period = sc.tick * micro                         # a new batch enters the pipeline every `period`
    ttft = 0.5 * period + sc.through + (micro - 1) * sc.tick
    return RoleCapacity(fits, np.where(fits, prompts / period, 0.0), zero, ttft, prompts, sc.bottleneck.astype(str))
