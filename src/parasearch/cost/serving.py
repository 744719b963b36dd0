"""Steady-state serving of a workload by continuous (in-flight) batching, scheduled the engine's way.

Each replica keeps `batch` sequences in flight: the smallest of the cap, what the KV cache admits
(each admitted sequence reserves its prompt and `kv_reserved_output` of its output in pages) and,
with an arrival rate, what the traffic sustains (Little's law).

Chunked prefill: every step carries the decode tokens of the running sequences; steps with room
left in the engine's token budget (`max_num_tokens`) also carry prompt chunks of newly admitted
requests ("mixed" steps). In one request lifetime a rank prefills batch x input prompt tokens.
A prompt longer than the room is spread over several steps, each chunk attending to the chunks
before it. With attention data parallelism every rank schedules its own sequences, but all ranks
meet in every MoE layer, so a step is as slow as its slowest rank: it is mixed when any rank
carries a chunk.

Latencies: TPOT is a request's lifetime without its own prefill, over its output tokens (at
batch 1, one decode step); TTFT is half a step of waiting plus the steps that carry the prompt's
chunks, through every pipeline stage, plus M/D/1 admission queueing when an arrival rate is given.
Workload fields may be arrays (one value per placement).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec
from .iteration import decode_step, engine_step, micro_batches
from .layout import Layout
from .memory import MemoryPlan, kv_bytes_per_sequence, page_round, plan_memory, realized, sequences_that_fit
from .precision import Precision
from .step import Breakdown, StepCost, Tokens


@dataclass(frozen=True)
class Workload:
    """Requests of `input_tokens` prompt tokens that generate `output_tokens` each (a mean), with
    `output_tokens_reserved` of KV cache held per sequence (default: the mean). `arrival_rate`
    (requests per second for the whole group) sets the load; None serves at saturation."""

    input_tokens: float
    output_tokens: float                 # mean output length
    output_tokens_reserved: float | None = None  # length reserved per sequence (default: the mean)
    arrival_rate: float | None = None    # requests per second for the whole group, None: saturate

    @property
    def reserved_output(self):
        return self.output_tokens if self.output_tokens_reserved is None else self.output_tokens_reserved


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
    step: StepCost                   # a decode step of the running batch
    fits: np.ndarray
    utilization: np.ndarray          # offered load / capacity (arrival rate given), else 1
    breakdown: Breakdown | None = None  # seconds per resource over one request lifetime (all its steps)


@dataclass
class Lifetime:
    """One request lifetime of a replica at a given batch: its steps and what they take."""

    steps: np.ndarray        # steps in a lifetime
    mixed: np.ndarray        # of which carry prompt chunks (on some rank)
    seconds: np.ndarray      # time of the whole lifetime
    decode: StepCost         # a pure decode step
    prefill: StepCost        # a mixed step
    chunks: np.ndarray       # steps one prompt is spread over
    own_mixed: np.ndarray    # mixed steps one request's own prompt accounts for


def _n(x, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, float), (n,))


def step_budget(budget, decodes) -> np.ndarray:
    """Tokens per scheduler step when `decodes` sequences decode in it. Engines refuse a batch cap
    above the token budget (vLLM checks max_num_seqs <= max_num_batched_tokens); when a plan's
    batch needs more, `parasearch deploy` raises the budget to the decodes plus half the engine's
    own, and the model assumes the same."""
    budget = np.asarray(budget, float)
    decodes = np.asarray(decodes, float)
    return np.where(decodes <= budget / 2.0, budget, decodes + budget / 2.0)


def engine_budget(engine: Engine, pp: int, rank_batch: float) -> int:
    """The token budget an engine must be given for `rank_batch` sequences per scheduler on a
    `pp`-stage pipeline (see `step_budget`); `parasearch deploy` writes it."""
    micro = 1.0
    if engine.pp_micro_batches and pp > 1:
        micro = max(min(pp + engine.pp_extra_micro_batches, rank_batch), 1.0)
    return int(np.ceil(step_budget(engine.max_num_tokens, rank_batch / micro)))


def lifetime(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
             batch, max_num_tokens=None) -> Lifetime:
    """The steps of one request lifetime at `batch` sequences per replica. `max_num_tokens`
    (per placement) replaces the engine's token budget."""
    engine = engine.on(hw)
    n = len(layout)
    inp, out = _n(wl.input_tokens, n), np.maximum(_n(wl.output_tokens, n), 1.0)
    groups = layout.attn_groups.astype(float)
    b = np.maximum(_n(batch, n), 1.0)
    rank = np.ceil(b / groups)
    budget = _n(engine.max_num_tokens if max_num_tokens is None else max_num_tokens, n)
    # A "step" below is one cycle in which every running sequence can advance once: with pipeline
    # micro-batching that is `micro` scheduler steps, each with its own token budget.
    micro = micro_batches(engine, layout, rank)
    budget = step_budget(budget, rank / micro)
    # Prompt tokens one scheduler step can take on a rank: what the decodes leave of the budget
    # when both share steps, the whole budget when prefill runs instead of decode.
    step_room = np.maximum(budget - rank / micro, 1.0) if engine.mixed_prefill else budget
    room = step_room * micro
    piece = np.minimum(inp, step_room)                   # one prompt, or one chunk of a long one
    chunks = np.ceil(inp / step_room)                    # a request's chunks ride one per cycle
    life = out + chunks
    # Prompt tokens per prefill step: at least one piece, at most the room; in between, what arrives.
    fill = np.clip(rank * inp / life, piece, room)
    pre_rank = rank * inp / fill                         # prefill steps per rank per lifetime
    # Attention-DP ranks that prefill independently make a step slow whenever any of them carries
    # a chunk; ranks that align their prefills share those steps.
    ranks = groups if engine.attn_dp_prefill == "independent" else np.ones(n)
    if engine.mixed_prefill:
        steps = np.maximum(life, pre_rank)               # more when prefill cannot keep up
        share = np.minimum(pre_rank / steps, 1.0)
        mixed = steps * (1.0 - (1.0 - share) ** ranks)   # steps in which some rank carries a chunk
        dec_mixed = dec = b * out / steps                # sequences decoding in a step
    else:
        share = pre_rank / (out + pre_rank)
        mixed = (out + pre_rank) * (1.0 - (1.0 - share) ** ranks)
        steps = out + mixed                              # every rank waits out every prefill step
        dec, dec_mixed = b, np.zeros(n)
    ctx = inp + out / 2.0
    pctx = np.where(inp > room, (inp - piece) / 2.0, 0.0)  # mean cached prefix of a chunk
    pieces_busy = fill / piece
    pieces_all = pre_rank * groups * fill / np.maximum(mixed, 1e-9) / piece
    zero = np.zeros(n)
    dstep = engine_step(model, hw, engine, layout, prec, Tokens(dec, ctx, zero, zero))
    pstep = engine_step(model, hw, engine, layout, prec,
                        Tokens(dec_mixed, ctx, pieces_all, piece, pctx, pieces_busy))
    seconds = mixed * pstep.tick + (steps - mixed) * dstep.tick
    return Lifetime(steps, mixed, seconds, dstep, pstep, chunks, inp / fill)


def reserved_context(engine: Engine, wl: Workload):
    """Tokens of KV cache an admitted sequence holds: its prompt, plus the whole reserved output
    under no-evict admission (`kv_reserved_output` 1), else that share of the mean output."""
    r = engine.kv_reserved_output
    return np.asarray(wl.input_tokens, float) + (np.asarray(wl.reserved_output, float) if r >= 1.0
                                                 else r * np.asarray(wl.output_tokens, float))


def _admissible_batch(model, hw, engine, layout, prec, wl: Workload, max_batch):
    """(memory plan, KV bytes reserved per sequence, KV-limited batch, batch, fits)."""
    n = len(layout)
    max_batch = _n(max_batch, n)
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    reserve_ctx = _n(reserved_context(engine, wl), n)
    per_seq = kv_bytes_per_sequence(model, layout, prec.kv_cache, page_round(reserve_ctx, engine.kv_block_tokens))
    kv_limit = sequences_that_fit(plan, per_seq, layout)
    batch = np.minimum(max_batch, kv_limit)
    return plan, per_seq, kv_limit, np.maximum(batch, 1.0), batch >= 1


def _distinct(layout: Layout, columns) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct replica, the distinct row of each row): rows that differ only
    in dp are one replica, whatever other per-row columns (scalars or arrays) say."""
    n = len(layout)
    keys = [np.asarray(getattr(layout, f.name), dtype=float) for f in fields(layout) if f.name != "dp"]
    keys += [_n(c, n).astype(float) for c in columns]
    _, first, back = np.unique(np.stack(keys, axis=1), axis=0, return_index=True, return_inverse=True)
    return first, back.ravel()


def _take_workload(wl: Workload, idx: np.ndarray, n: int) -> Workload:
    def pick(v):
        return v if v is None or np.ndim(v) == 0 else _n(v, n)[idx]
    return replace(wl, input_tokens=pick(wl.input_tokens), output_tokens=pick(wl.output_tokens),
                   output_tokens_reserved=pick(wl.output_tokens_reserved))


def _rate_batch(model, hw, engine, layout, prec, wl: Workload, cap: np.ndarray,
                budget=None) -> tuple[np.ndarray, np.ndarray]:
    """(batch, utilization) a Poisson-free steady flow of `wl.arrival_rate` needs: Little's law,
    batch = rate x lifetime(batch). A lifetime grows about linearly with the batch, so the fixed
    point is solved from the two ends (batch 1 and the cap) and refined once by a secant step."""
    rate = wl.arrival_rate / layout.dp
    # The two ends do not depend on dp: evaluate them once per distinct replica (the searched dp
    # values repeat every shape many times, so this halves the rate path's cost).
    n = len(layout)
    cols = [wl.input_tokens, wl.output_tokens, wl.reserved_output, cap, 0.0 if budget is None else budget]
    first, back = _distinct(layout, cols)
    sub_layout, sub_wl = layout.take(first), _take_workload(wl, first, n)
    sub_budget = None if budget is None else _n(budget, n)[first]
    one = lifetime(model, hw, engine, sub_layout, prec, sub_wl, 1.0, sub_budget).seconds[back]
    full = lifetime(model, hw, engine, sub_layout, prec, sub_wl, _n(cap, n)[first], sub_budget).seconds[back]
    utilization = rate * full / cap               # offered load over what the capped batch serves

    def solve(b0, t0, b1, t1):
        slope = np.where(b1 > b0, (t1 - t0) / np.maximum(b1 - b0, 1e-9), 0.0)
        denom = 1.0 - rate * slope
        b = np.where(denom > 0, rate * (t0 - slope * b0) / np.maximum(denom, 1e-12), cap)
        return np.clip(b, 1.0, cap)

    b = solve(1.0, one, cap, full)
    mid = lifetime(model, hw, engine, layout, prec, wl, b, budget).seconds
    upper = b < rate * mid                        # the fixed point lies above b
    b = np.where(upper, solve(b, mid, cap, full), solve(1.0, one, b, mid))
    return np.ceil(np.clip(b, 1.0, cap)), utilization


def serve(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
          max_batch, max_num_tokens=None) -> Serving:
    """Steady-state serving of `wl` by each placement of `layout` with at most `max_batch`
    sequences in flight per replica: throughput, latencies, the batch held and what binds.
    `max_num_tokens` (per placement) replaces the engine's per-step token budget."""
    engine = engine.on(hw)
    model = realized(model, engine)
    n = len(layout)
    max_batch = _n(max_batch, n)
    plan, per_seq, kv_limit, batch, fits = _admissible_batch(model, hw, engine, layout, prec, wl, max_batch)
    utilization = np.ones(n)
    if wl.arrival_rate:
        batch, utilization = _rate_batch(model, hw, engine, layout, prec, wl, batch, max_num_tokens)

    lt = lifetime(model, hw, engine, layout, prec, wl, batch, max_num_tokens)
    out = np.maximum(_n(wl.output_tokens, n), 1.0)
    tpot = (lt.seconds - lt.own_mixed * lt.prefill.tick) / out
    ttft = 0.5 * lt.seconds / lt.steps + (lt.chunks - 1.0) * lt.prefill.tick + lt.prefill.through
    if wl.arrival_rate:
        rho = np.minimum(utilization, 0.999)
        ttft = ttft + rho / (2.0 * (1.0 - rho)) * lt.chunks * lt.prefill.tick  # M/D/1 wait for admission
    e2e = ttft + (out - 1.0) * tpot
    replica_tps = batch * out / lt.seconds
    tps = np.where(fits, replica_tps * layout.dp, 0.0)
    per_gpu = tps / layout.gpus

    live_ctx = _n(wl.input_tokens, n) + out / 2.0
    held = np.ceil(batch / layout.attn_groups)
    kv_live = kv_bytes_per_sequence(model, layout, prec.kv_cache, live_ctx) * held
    kv_share = kv_live / hw.hbm_bytes

    # What binds: the resource the steps spend most on, unless the KV cache caps the batch.
    bd = lt.decode.breakdown.scaled(lt.steps - lt.mixed).plus(lt.prefill.breakdown.scaled(lt.mixed))
    bottleneck = bd.bottleneck().astype(object)
    capacity_bound = fits & (kv_limit < max_batch) & (batch >= kv_limit)
    bottleneck = np.where(capacity_bound, "kv-capacity", bottleneck)
    bottleneck = np.where(fits, bottleneck, np.where(plan.fits, "kv-capacity", "weights-memory"))
    return Serving(batch=np.where(fits, batch, 0.0), kv_limit=kv_limit, tpot_s=tpot, ttft_s=ttft, e2e_s=e2e,
                   output_tokens_per_s=tps, per_gpu=per_gpu, per_user=np.where(fits, 1.0 / tpot, 0.0),
                   bottleneck=bottleneck.astype(str), kv_share=kv_share,
                   kv_reserved=np.where(fits, per_seq * held, 0.0), memory=plan, step=lt.decode, fits=fits,
                   utilization=utilization, breakdown=bd)


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
    engine = engine.on(hw)
    model = realized(model, engine)
    n = len(layout)
    max_batch = _n(max_batch, n)
    _, _, kv_limit, batch, fits = _admissible_batch(model, hw, engine, layout, prec, wl, max_batch)
    out = np.maximum(_n(wl.output_tokens, n), 1.0)
    sc = decode_step(model, hw, engine, layout, prec, batch, _n(wl.input_tokens, n) + out / 2)
    tpot = sc.tick
    bottleneck = np.where(fits & (kv_limit < max_batch), "kv-capacity", sc.bottleneck)
    return RoleCapacity(fits, np.where(fits, batch / tpot / out, 0.0), tpot, np.zeros(n), batch,
                        bottleneck.astype(str))


def prefill_only(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision, wl: Workload,
                 prompts) -> RoleCapacity:
    """A prefill replica running `prompts` whole prompts per step (micro-batched over stages).
    A prompt waits on average half a period before it starts, then runs through every stage."""
    engine = engine.on(hw)
    model = realized(model, engine)
    n = len(layout)
    prompts = _n(prompts, n)
    inp = _n(wl.input_tokens, n)
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    micro = micro_batches(engine, layout, prompts)
    zero = np.zeros(n)
    sc = engine_step(model, hw, engine, layout, prec, Tokens(zero, zero, prompts, inp))
    kv = kv_bytes_per_sequence(model, layout, prec.kv_cache, page_round(inp, engine.kv_block_tokens))
    fits = plan.fits & (kv * np.ceil(prompts / layout.attn_groups) <= np.maximum(plan.kv_budget, 0.0))
    fits &= prompts * inp <= np.maximum(engine.max_num_tokens, inp)
    # Prompts do not wait on each other's tokens: with micro-batching a new micro-batch enters the
    # pipeline every stage tick; without, a batch walks all stages before the next one starts.
    if engine.pp_micro_batches:
        stage = sc.tick / np.maximum(micro, layout.pp)
        period = micro * stage
    else:
        stage = period = sc.tick
    ttft = 0.5 * period + sc.through + (micro - 1) * stage
    return RoleCapacity(fits, np.where(fits, prompts / period, 0.0), zero, ttft, prompts, sc.bottleneck.astype(str))


__all__ = ["Lifetime", "RoleCapacity", "Serving", "Workload", "decode_only", "lifetime", "prefill_only", "serve"]
