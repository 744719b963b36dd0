"""Time of one forward pass (a "step") of a replica, composed from kernel and collective times.

A step carries `dec` decode sequences at context `ctx` and `pre` prompts of `plen` tokens
(whole prompts or chunks), all per replica. The time of every pipeline stage is the sum over its
layers of GEMMs, attention, expert GEMMs, elementwise traffic, collectives and kernel launches;
the slowest stage sets the pipeline's tick. Every second is booked to one resource so each
estimate can name what binds: compute, HBM bandwidth, interconnect or fixed latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import Attention, FeedForward, ModelSpec
from . import comm
from . import kernels as K
from .layout import Layout, handoff_leaves_domain, stage_layer_counts
from .memory import kv_heads_per_gpu, realized
from .precision import Precision, bytes_per, math_format

RESOURCES = ("compute", "memory", "interconnect", "latency")
BF16 = 2.0


@dataclass
class Breakdown:
    """Seconds booked to each resource, one entry per placement."""

    compute: np.ndarray
    memory: np.ndarray
    interconnect: np.ndarray
    latency: np.ndarray
    launches: np.ndarray | None = None  # kernels launched (their host cost matters outside CUDA graphs)

    @staticmethod
    def zeros(n: int) -> "Breakdown":
        return Breakdown(*(np.zeros(n) for _ in RESOURCES), np.zeros(n))

    def _launches(self) -> np.ndarray:
        return self.launches if self.launches is not None else np.zeros_like(self.compute)

    @property
    def total(self) -> np.ndarray:
        return self.compute + self.memory + self.interconnect + self.latency

    def kernel(self, kt: K.KernelTime, launches, launch_s: float) -> None:
        compute_bound = kt.compute >= kt.memory
        self.compute += np.where(compute_bound, kt.time, 0.0)
        self.memory += np.where(compute_bound, 0.0, kt.time)
        self.latency += np.asarray(launches, float) * launch_s
        self.launches = self._launches() + np.asarray(launches, float)

    def collective(self, bw_and_lat: tuple[np.ndarray, np.ndarray]) -> None:
        self.interconnect += bw_and_lat[0]
        self.latency += bw_and_lat[1]

    def scaled(self, f) -> "Breakdown":
        return Breakdown(*(getattr(self, r) * f for r in RESOURCES), self._launches() * f)

    def plus(self, other: "Breakdown") -> "Breakdown":
        return Breakdown(*(getattr(self, r) + getattr(other, r) for r in RESOURCES),
                         self._launches() + other._launches())

    def select(self, mask: np.ndarray, other: "Breakdown") -> "Breakdown":
        return Breakdown(*(np.where(mask, getattr(self, r), getattr(other, r)) for r in RESOURCES),
                         np.where(mask, self._launches(), other._launches()))

    def take(self, idx) -> "Breakdown":
        return Breakdown(*(getattr(self, r)[idx] for r in RESOURCES), self._launches()[idx])

    def put(self, idx, other: "Breakdown") -> None:
        """Write `other`'s entries at `idx`, in place."""
        for r in RESOURCES:
            getattr(self, r)[idx] = getattr(other, r)
        if self.launches is None:
            self.launches = np.zeros_like(self.compute)
        self.launches[idx] = other._launches()

    def add_latency(self, seconds) -> "Breakdown":
        """A copy with `seconds` of fixed (host) time booked as latency."""
        return Breakdown(self.compute, self.memory, self.interconnect, self.latency + seconds, self._launches())

    def bottleneck(self) -> np.ndarray:
        stacked = np.stack([getattr(self, r) for r in RESOURCES])
        return np.array(RESOURCES)[np.argmax(stacked, axis=0)]


@dataclass
class Tokens:
    """What one step carries on one replica (arrays broadcast over placements)."""

    dec: np.ndarray    # decode sequences
    ctx: np.ndarray    # their context length (tokens already cached)
    pre: np.ndarray    # prompts (or prompt chunks)
    plen: np.ndarray   # tokens per prompt (or chunk)
    pctx: np.ndarray | float = 0.0  # tokens of each prompt already cached before this chunk
    # Prompt pieces on the busiest attention-DP group; None: spread evenly (pre / groups).
    pre_busiest: np.ndarray | None = None


@dataclass
class Ctx:
    model: ModelSpec
    hw: Hardware
    engine: Engine
    layout: Layout
    prec: Precision

    @property
    def wb(self) -> float:
        return bytes_per(self.prec.weights)

    @property
    def math(self) -> str:
        """The format the weight GEMMs compute in on this chip."""
        return math_format(self.prec.weights, self.hw)

    @property
    def peak(self) -> float:
        return self.hw.peak_flops(self.math)

    @property
    def flops_eff(self) -> float:
        """Plateau efficiency of the weight GEMMs: the chip's fit for that format, times the
        engine's quantized-kernel factor when the math is FP8/FP4."""
        e = self.hw.efficiency.gemm_flops_for(self.math)
        return min(e * (self.engine.gemm_efficiency if self.math != "bf16" else 1.0), 1.0)

    def allreduce(self, nbytes) -> tuple[np.ndarray, np.ndarray]:
        """The tensor-parallel all-reduce of an attention or feed-forward block's output."""
        return comm.allreduce(self.hw, self.layout.attn_tp, nbytes, oneshot=self.engine.oneshot_allreduce)

    def attn_gemm(self, bd: Breakdown, m, k, n) -> None:
        """A GEMM of the attention block: in bf16 where the checkpoint keeps attention unquantized
        (gpt-oss), else as the other weights."""
        self.gemm(bd, m, k, n, bf16=self.model.attention_weights(self.prec.weights) == "bf16")

    @property
    def grouped_quantized(self) -> dict:
        """Expert GEMMs in FP8/FP4 math: the grouped (bf16) fit scaled by what the chip's dense
        quantized fit shows against its bf16 one, and ramping no faster than the dense quantized
        GEMM (the same tensor-core instructions and M tiles, per expert)."""
        e = self.hw.efficiency
        if self.math == "bf16":
            return {}
        return {"flops_scale": e.gemm_flops_for(self.math) / e.gemm_flops,
                "m_half": max(e.grouped_m_half, e.gemm_m_half_for(self.math))}

    @property
    def launch(self) -> float:
        return self.hw.efficiency.kernel_launch_s

    def gemm(self, bd: Breakdown, m, k, n, *, bf16: bool = False) -> None:
        if bf16:
            wb, peak, eff, half = BF16, self.hw.peak_flops("bf16"), None, None
        else:
            wb, peak, eff, half = self.wb, self.peak, self.flops_eff, self.hw.efficiency.gemm_m_half_for(self.math)
        active = np.asarray(m, float) > 0
        kt = K.gemm(self.hw, np.maximum(m, 0), k, n, weight_bytes=wb, peak_flops=peak, flops_eff=eff, m_half=half)
        bd.kernel(K.KernelTime(kt.time * active, kt.compute * active, kt.memory * active), active, self.launch)


def _causal_pairs(s: np.ndarray, window: int | None) -> np.ndarray:
    """(query, key) pairs a causal prompt of s tokens attends, with an optional window."""
    s = np.asarray(s, float)
    if window is None:
        return s * s / 2.0
    w = float(window)
    return np.where(s <= w, s * s / 2.0, s * w - w * w / 2.0)


def _splits(engine: Engine, ctx: np.ndarray) -> np.ndarray:
    if engine.decode_split_kv_tokens <= 0:
        return np.ones_like(ctx)
    return np.maximum(np.ceil(ctx / engine.decode_split_kv_tokens), 1.0)


def _attention(c: Ctx, bd: Breakdown, att: Attention, t: Tokens, dec, pre, tokens) -> None:
    """One attention block on one GPU: `dec`, `pre`, `tokens` are this GPU's attention group's share."""
    h = c.model.hidden
    t_a = c.layout.attn_tp
    heads = att.num_heads / t_a
    kvb = bytes_per(c.prec.kv_cache)
    ctx = t.ctx if att.window is None else np.minimum(t.ctx, att.window)
    # A prompt chunk attends to its own tokens causally and to every cached token before it.
    prefix = t.pctx if att.window is None else np.minimum(t.pctx, att.window)
    pairs = _causal_pairs(t.plen, att.window) + t.plen * prefix
    q_tiles = np.ceil(np.asarray(t.plen, float) / K.PREFILL_Q_TILE)
    attn_peak = c.hw.peak_flops("bf16")
    if att.kind == "mla":
        lat = att.kv_lora_rank + att.qk_rope_head_dim
        if att.q_lora_rank:
            c.attn_gemm(bd, tokens, h, att.q_lora_rank)
            c.attn_gemm(bd, tokens, att.q_lora_rank, heads * att.head_dim)
        else:
            c.attn_gemm(bd, tokens, h, heads * att.head_dim)
        c.attn_gemm(bd, tokens, h, lat)
        # Decode runs "absorbed": queries move into the latent space, attention reads latents.
        c.attn_gemm(bd, dec, att.qk_nope_head_dim, heads * att.kv_lora_rank)
        ctas = dec * np.ceil(heads / 64.0) * _splits(c.engine, ctx)
        flops = dec * ctx * heads * 2.0 * (lat + att.kv_lora_rank)
        kt = K.decode_attention(c.hw, dec * ctx * lat * kvb, ctas, flops=flops, peak_flops=attn_peak)
        bd.kernel(kt, dec > 0, c.launch)
        c.attn_gemm(bd, dec, att.kv_lora_rank, heads * att.v_head_dim)
        # Prefill expands latents to per-head keys and values and runs ordinary attention.
        c.attn_gemm(bd, pre * t.plen, att.kv_lora_rank, heads * (att.qk_nope_head_dim + att.v_head_dim))
        flops = pre * heads * pairs * 2.0 * (att.head_dim + att.v_head_dim)
        kt = K.prefill_attention(c.hw, flops, pre * heads * q_tiles, peak_flops=attn_peak)
        bd.kernel(kt, pre > 0, c.launch)
    else:
        kv = kv_heads_per_gpu(att, t_a)
        c.attn_gemm(bd, tokens, h, (heads + 2 * kv) * att.head_dim)
        ctas = dec * kv * _splits(c.engine, ctx)
        flops = dec * ctx * heads * att.head_dim * 4.0
        kt = K.decode_attention(c.hw, dec * ctx * kv * att.head_dim * 2 * kvb, ctas, flops=flops,
                                peak_flops=attn_peak)
        bd.kernel(kt, dec > 0, c.launch)
        flops = pre * heads * pairs * 4.0 * att.head_dim
        kt = K.prefill_attention(c.hw, flops, pre * heads * q_tiles, peak_flops=attn_peak)
        bd.kernel(kt, pre > 0, c.launch)
    c.attn_gemm(bd, tokens, heads * att.v_head_dim, h)
    bd.collective(c.allreduce(tokens * h * BF16))


def _ffn(c: Ctx, bd: Breakdown, ffn: FeedForward, tokens, total_tokens) -> np.ndarray:
    """One feed-forward block on one GPU. Returns the intermediate width per token it produced
    (for elementwise traffic)."""
    h = c.model.hidden
    lay = c.layout
    t_a = lay.attn_tp
    if ffn.kind == "dense":
        inter = ffn.intermediate / t_a
        c.gemm(bd, tokens, h, 2 * inter)
        c.gemm(bd, tokens, inter, h)
        bd.collective(c.allreduce(tokens * h * BF16))
        return inter
    e, k = ffn.num_experts, ffn.top_k
    c.gemm(bd, tokens, h, e, bf16=True)  # router
    ep = lay.ep.astype(float)
    pairs = total_tokens * k                       # (token, expert) assignments in this stage
    local = e / ep
    mean_load = pairs / ep
    # Busiest GPU, max of ep draws: the binomial spread of the assignments, plus real routers'
    # uneven expert popularity (coefficient of variation `routing_skew` per expert, averaged over
    # the GPU's local experts).
    var = (1.0 - 1.0 / ep) / np.maximum(mean_load, 1e-9) + c.engine.routing_skew ** 2 / local
    spread = np.sqrt(2.0 * np.log(np.maximum(ep, 1.0)) * var)
    load = np.minimum(mean_load * (1.0 + spread), pairs)
    hit = 1.0 - np.power(1.0 - k / e, np.maximum(total_tokens, 0.0))   # chance an expert gets a token
    active = np.maximum(local * hit, np.where(pairs > 0, 1.0, 0.0))
    tpe = np.where(active > 0, load / np.maximum(active, 1e-9), 0.0)
    kt = K.grouped_gemm(c.hw, active, tpe, h, ffn.expert_intermediate / lay.tp, weight_bytes=c.wb,
                        peak_flops=c.peak, scale=c.engine.moe_gemm_efficiency, **c.grouped_quantized)
    bd.kernel(kt, 2.0 * (pairs > 0), c.launch)
    # Routing and moving tokens to and from their experts (this GPU's share of the pairs).
    moved = K.elementwise(c.hw, load * c.engine.moe_bytes_per_pair * h / lay.tp)
    bd.kernel(moved, c.engine.small_kernels_per_moe_layer * (pairs > 0), c.launch)
    if ffn.num_shared_experts:
        inter = ffn.shared_intermediate / t_a
        c.gemm(bd, tokens, h, 2 * inter)
        c.gemm(bd, tokens, inter, h)
    # Attention-DP groups hold different tokens: send each token to the groups owning its experts
    # (all-to-all dispatch) and bring the results back (combine), or, where the engine gathers
    # instead, every group receives every token and the results are reduce-scattered. Without
    # attention-DP every GPU already has every token and the partial sums are all-reduced below.
    groups = lay.attn_groups
    if c.engine.moe_dispatch == "allgather":
        remote = (groups - 1).astype(float)
    else:
        remote = (groups - 1) * (1.0 - np.power(1.0 - 1.0 / groups, k))
    a2a = tokens * remote * h / lay.tp
    members = np.where(groups > 1, lay.stage_gpus, 1)
    e = c.engine
    moving = waiting = 0.0
    for nbytes in (a2a * e.a2a_bytes_per_element, a2a * BF16):  # dispatch, then combine
        bw_s, lat_s = comm.alltoall(c.hw, members, nbytes, efficiency=e.a2a_efficiency)
        moving = moving + bw_s
        waiting = waiting + lat_s + np.where(members > 1, e.a2a_latency_s, 0.0)
    # With two micro-batches in turn, one's tokens travel while the other computes: only the
    # transfer time the layer's own work cannot cover shows (its fixed latency still does).
    covered = np.where(e.moe_overlap_a2a & (groups > 1), np.minimum(moving, bd.compute + bd.memory), 0.0)
    bd.collective((moving - covered, waiting))
    bd.collective(c.allreduce(tokens * h * BF16))
    # Intermediate elements per token of this GPU's attention group (for elementwise traffic): the
    # busiest GPU activates `load` token-expert pairs of width expert_intermediate / tp.
    return load * ffn.expert_intermediate / lay.tp / np.maximum(tokens, 1e-9) + ffn.shared_intermediate / t_a


def _layer(c: Ctx, att: Attention, ffn: FeedForward, t: Tokens) -> Breakdown:
    n = len(c.layout)
    bd = Breakdown.zeros(n)
    dec, pre = _busiest_group(c.layout, t)
    tokens = dec + pre * t.plen
    total = t.dec + t.pre * t.plen
    _attention(c, bd, att, t, dec, pre, tokens)
    inter = _ffn(c, bd, ffn, tokens, total)
    t_a = c.layout.attn_tp
    e = c.engine
    heads = att.num_heads / t_a
    kv_width = (att.kv_lora_rank + att.qk_rope_head_dim if att.kind == "mla"
                else kv_heads_per_gpu(att, t_a) * att.head_dim)
    per_token = (e.ew_hidden * c.model.hidden + e.ew_q_dim * heads * att.head_dim
                 + e.ew_kv_dim * kv_width + e.ew_ffn_intermediate * inter)
    # Norms fused into the all-reduce kernel (small payloads only) launch nothing of their own.
    fused = (t_a > 1) & (tokens * c.model.hidden * BF16 <= e.allreduce_fusion_max_bytes)
    kernels = e.small_kernels_per_layer - e.allreduce_fused_norms * fused
    bd.kernel(K.elementwise(c.hw, tokens * per_token), kernels * (tokens > 0), c.launch)
    return bd


def _busiest_group(layout: Layout, t: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """(decode sequences, prompt pieces) of the busiest attention-DP group, which sets the pace."""
    groups = layout.attn_groups.astype(float)
    pre = t.pre / groups if t.pre_busiest is None else np.minimum(t.pre_busiest, t.pre)
    return np.ceil(t.dec / groups), pre


def _head(c: Ctx, t: Tokens) -> Breakdown:
    """Final norm and lm_head (logits of the last token of each sequence), vocabulary-split."""
    bd = Breakdown.zeros(len(c.layout))
    dec, pre = _busiest_group(c.layout, t)
    rows = dec + pre
    c.gemm(bd, rows, c.model.hidden, c.model.vocab / c.layout.attn_tp, bf16=True)
    kt = K.elementwise(c.hw, rows * c.engine.ew_final_hidden * c.model.hidden)
    bd.kernel(kt, c.engine.small_kernels_final * (rows > 0), c.launch)
    return bd


@dataclass
class StepCost:
    tick: np.ndarray          # seconds the slowest stage takes (the pipeline's period)
    through: np.ndarray       # seconds for one pass through every stage (latency)
    breakdown: Breakdown      # of the slowest stage

    @property
    def bottleneck(self) -> np.ndarray:
        return self.breakdown.bottleneck()


def forward(model: ModelSpec, hw: Hardware, engine: Engine, layout: Layout, prec: Precision,
            tokens: Tokens) -> StepCost:
    """One forward pass of `tokens` through every stage of each placement's replica."""
    n = len(layout)
    t = Tokens(*(np.broadcast_to(np.asarray(v, float), (n,)).copy() for v in
                 (tokens.dec, tokens.ctx, tokens.pre, tokens.plen, tokens.pctx)),
               pre_busiest=None if tokens.pre_busiest is None
               else np.broadcast_to(np.asarray(tokens.pre_busiest, float), (n,)))
    model = realized(model, engine)
    c = Ctx(model, hw, engine, layout, prec)
    per_group = [_layer(c, g.attention, g.ffn, t) for g in model.groups]
    head = _head(c, t)
    tick = np.zeros(n)
    through = np.zeros(n)
    slow = Breakdown.zeros(n)
    dec_g, pre_g = _busiest_group(layout, t)
    act_bytes = (dec_g + pre_g * t.plen) * model.hidden * BF16
    g_stage = layout.stage_gpus
    domain = hw.scale_up_domain_gpus
    for p in np.unique(layout.pp):
        # Only this depth's rows, and each distinct stage (layer counts, last or not) priced once:
        # deep pipelines (PP up to the layer count) have few distinct stages.
        rows = np.flatnonzero(layout.pp == p)
        m_rows = rows.size
        groups = [b.take(rows) for b in per_group]
        counts = stage_layer_counts(model.layer_group_index, len(model.groups), int(p))
        kinds: dict[tuple, list[int]] = {}
        for s in range(int(p)):
            kinds.setdefault((tuple(counts[s].tolist()), s == p - 1), []).append(s)
        send_in = comm.send(hw, act_bytes[rows], False)
        send_out = comm.send(hw, act_bytes[rows], True)
        best = Breakdown.zeros(m_rows)
        best_t = np.full(m_rows, -np.inf)
        passed = np.zeros(m_rows)
        for (cnt, last), stages in kinds.items():
            bd = Breakdown.zeros(m_rows)
            for g, c in enumerate(cnt):
                if c:
                    bd = bd.plus(groups[g].scaled(float(c)))
            if last:
                cand = bd.plus(head.take(rows))
                passed += cand.total
            else:
                # Stages are packed whole into scale-up domains: the hand-off to the next stage
                # leaves the domain when a stage fills one or the domain's stage slots run out.
                cross = handoff_leaves_domain(g_stage[rows][:, None], np.array(stages)[None, :], domain)
                n_cross = cross.sum(axis=1)
                inside, outside = bd.scaled(1.0), bd.scaled(1.0)
                inside.collective(send_in)
                outside.collective(send_out)
                passed += (len(stages) - n_cross) * inside.total + n_cross * outside.total
                # The slower of the two kinds of stage that occur (crossing is not always slower:
                # a fabric's fitted latency may exceed the network's).
                use_out = (n_cross == len(stages)) | ((n_cross > 0) & (outside.total > inside.total))
                cand = outside.select(use_out, inside)
            total = cand.total
            better = (total > best_t) | np.isnan(total)
            best = cand.select(better, best)
            best_t = np.where(better, total, best_t)
        tick[rows] = best_t
        through[rows] = passed
        slow.put(rows, best)
    return StepCost(tick, through, slow)


def __getattr__(name: str):
    # decode_step and prefill_step now live in cost/iteration.py (they include the engine's host
    # work and pipeline schedule); the old import path keeps working.
    if name in ("decode_step", "prefill_step"):
        from . import iteration
        return getattr(iteration, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
