"""`parasearch sweep`: model sizes x parallel strategies x workloads on one cluster.

A strategy fills the whole cluster with identical replicas (dp = GPUs / replica size). Each
point is steady-state serving with as many sequences in flight per replica as its KV cache holds
(no batch cap, by default), so the concurrency the memory allows shows directly. With a batch cap
(`max_batch`), the points it holds down are marked (`cap_binds`) and every table, title and
verdict that uses them says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..catalog.engines import Engine
from ..catalog.hardware import Hardware
from ..catalog.models import ModelSpec, load_model
from ..cost.layout import Layout
from ..cost.memory import attention_params_per_gpu
from ..cost.precision import Precision, math_format
from ..cost.serving import Workload, serve
from ..cost.step import RESOURCES
from ..defaults import KV_CACHE
from ..space.label import placement_label
from ..space.rules import placement_ok

DEFAULT_MODELS = ("llama-3.1-8b", "qwen2.5-32b", "llama-3.1-70b", "llama-3.1-405b", "deepseek-r1")
SIZE_LABEL = {"llama-3.1-8b": "8B", "qwen2.5-32b": "32B", "qwen3-32b": "32B", "llama-3.1-70b": "70B",
              "llama-3.1-405b": "405B", "deepseek-r1": "671B MoE"}
WORKLOADS = {  # name -> (input tokens, output tokens)
    "chat-1k/1k": (1024, 1024),
    "reasoning-1k/8k": (1024, 8192),
    "reasoning-1k/16k": (1024, 16384),
    "reasoning-1k/32k": (1024, 32768),
    "prefill-8k/512": (8192, 512),
}


@dataclass(frozen=True)
class Strategy:
    name: str
    kind: str      # dp, tp, pp, hybrid, ep, ep+adp
    tp: int = 1
    pp: int = 1
    ep: int = 1
    attn_dp: bool = False

    @property
    def replica(self) -> int:
        return self.tp * self.pp * self.ep


def strategies(model: ModelSpec, gpus_per_node: int, total: int) -> list[Strategy]:
    """Replica shapes, named as placements are everywhere (`TP4 PP2`); DP fills the cluster with
    copies of each, so the pure data-parallel strategy is just `DP`."""
    out = [Strategy("DP", "dp")]
    n = 2
    while n <= min(gpus_per_node, total):
        out.append(Strategy(f"TP{n}", "tp", tp=n))
        out.append(Strategy(f"PP{n}", "pp", pp=n))
        n *= 2
    g = gpus_per_node
    for tp, pp in ((g // 2, 2), (g, 2), (g, 4)):
        if tp >= 2 and tp * pp <= total:
            out.append(Strategy(placement_label(tp, pp), "hybrid", tp=tp, pp=pp))
    if 2 * g <= total:
        out.append(Strategy(f"TP{2 * g}", "tp", tp=2 * g))
    if model.is_moe:
        for ep in (g, 2 * g, 4 * g):
            if ep <= total and model.num_experts % ep == 0:
                out.append(Strategy(f"EP{ep}", "ep", ep=ep))
                out.append(Strategy(placement_label(1, ep=ep, attn_dp=True), "ep+adp", ep=ep, attn_dp=True))
        out.append(Strategy(placement_label(g, ep=2, attn_dp=True), "ep+adp", tp=g, ep=2, attn_dp=True))
    return [s for s in out if placement_ok(model, s.tp, s.pp, s.ep, s.attn_dp) and s.replica <= total]


@dataclass
class SweepPoint:
    model: str
    size: str
    strategy: str
    kind: str
    tp: int
    pp: int
    ep: int
    attn_dp: bool
    gpus: int
    workload: str
    input_tokens: int
    output_tokens: int
    fits: bool
    tokens_per_s_per_gpu: float
    tpot_s: float
    concurrency_per_replica: float
    concurrency_per_gpu: float
    kv_limited_concurrency: float
    kv_share: float            # live KV (average context) as a share of GPU memory
    kv_reserved_share: float   # KV pages reserved for the batch (input + full output each)
    mfu: float
    bottleneck: str
    step_shares: dict = field(default_factory=dict)
    batch_cap: int | None = None  # sequences per replica the sweep allowed; None: what the KV cache holds
    cap_binds: bool = False       # the cap, not the KV cache, set this point's concurrency


def active_params(model: ModelSpec) -> float:
    """Parameters one token passes through (MoE: attention, shared and top-k routed experts)."""
    h = model.hidden
    total = 2.0 * model.vocab * h / 2  # the lm_head (the embedding lookup does no math)
    for idx in model.layer_group_index:
        g = model.groups[idx]
        split, replicated = attention_params_per_gpu(g.attention, h, np.ones(1, dtype=np.int64))
        att = float(split[0] + replicated[0])
        f = g.ffn
        ffn = 3 * h * (f.intermediate if f.kind == "dense" else f.top_k * f.expert_intermediate + f.shared_intermediate)
        total += att + ffn
    return total


def run_sweep(hw: Hardware, engine: Engine, *, nodes: int, gpus_per_node: int, models=DEFAULT_MODELS,
              workloads=tuple(WORKLOADS), max_batch: int | None = None, weights: str | None = None,
              kv_cache: str = KV_CACHE) -> list[SweepPoint]:
    """Every strategy of every model on every workload. `max_batch` caps sequences per replica;
    None (the default) lets each replica hold as many as its KV cache does."""
    total = nodes * gpus_per_node
    cap = np.inf if max_batch is None else float(max_batch)
    points: list[SweepPoint] = []
    for name in models:
        m = load_model(name)
        prec = Precision(weights or m.native_weights, kv_cache)
        strats = strategies(m, gpus_per_node, total)
        lay = Layout.of([s.tp for s in strats], [s.pp for s in strats], [s.ep for s in strats],
                        [total // s.replica for s in strats], [s.attn_dp for s in strats])
        per_token = 2.0 * active_params(m)
        peak = hw.peak_flops(math_format(prec.weights, hw))
        for w in workloads:
            inp, out = WORKLOADS[w]
            s = serve(m, hw, engine, lay, prec, Workload(float(inp), float(out)), cap)
            capped = s.fits & (s.batch >= cap) & (s.kv_limit > cap)
            tokens_per_s = s.output_tokens_per_s * (1 + inp / out)  # prompt tokens are processed too
            mfu = per_token * tokens_per_s / (lay.gpus * peak)
            bd = s.breakdown if s.breakdown is not None else s.step.breakdown
            tot = bd.total
            for i, st in enumerate(strats):
                shares = {r: float(getattr(bd, r)[i] / tot[i]) if tot[i] > 0 else 0.0 for r in RESOURCES}
                points.append(SweepPoint(
                    name, SIZE_LABEL.get(name, name), st.name, st.kind, st.tp, st.pp, st.ep, st.attn_dp,
                    int(lay.gpus[i]), w, inp, out, bool(s.fits[i]), float(s.per_gpu[i]), float(s.tpot_s[i]),
                    float(s.batch[i]), float(s.batch[i] * lay.dp[i] / lay.gpus[i]), float(s.kv_limit[i]),
                    float(s.kv_share[i]), float(s.kv_reserved[i] / hw.hbm_bytes), float(mfu[i]) if s.fits[i] else 0.0,
                    str(s.bottleneck[i]), shares, max_batch, bool(capped[i])))
    return points


def best(points: list[SweepPoint], model: str, workload: str, kinds=None) -> SweepPoint | None:
    cands = [p for p in points if p.model == model and p.workload == workload and p.fits
             and (kinds is None or p.kind in kinds)]
    return max(cands, key=lambda p: p.tokens_per_s_per_gpu) if cands else None


def find(points: list[SweepPoint], model: str, workload: str, strategy: str) -> SweepPoint | None:
    return next((p for p in points if p.model == model and p.workload == workload and p.strategy == strategy), None)
