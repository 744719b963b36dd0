"""Serving-engine profiles (`engine_catalog/*.yaml`): what an engine runs besides GEMMs and attention,
and how it schedules: chunked prefill, KV admission, CUDA graphs, host overhead, pipeline and
expert-parallel policy.

A profile is data. The cost model reads these fields as mechanisms (e.g. "host work per step
overlaps the GPU" or "steps above this batch run without CUDA graphs"); it never branches on an
engine's name. Every number in a profile file carries a provenance under its `sources:` mapping
(a document, or "fitted to ... of data/published"); the loader refuses a number without one.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields, replace
from importlib import resources
from typing import Any

from ..errors import ParasearchError, SpecError
from . import _yaml

FRAMEWORKS = ("reference", "vllm", "sglang", "trtllm")
# Which sliding-window models the KV manager frees pages outside the window for: every one,
# only hybrid ones (some layers windowed, some full), or none (windowed layers keep full KV).
SLIDING_WINDOW = ("all", "hybrid", "none")
MOE_DISPATCH = ("alltoall", "allgather")  # attention-DP token exchange around the experts
# Attention-DP ranks either prefill in the same steps (a rank with a prompt makes every rank with
# waiting prompts prefill) or each when its own prompts arrive.
ATTN_DP_PREFILL = ("aligned", "independent")
TIER_FIELDS = ("max_batch", "max_num_tokens", "cuda_graph_max_batch", "runtime_reserve_bytes")
# How an engine sizes its KV pool from its memory fraction f (docs/engines.md):
#   free   (TensorRT-LLM): KV = f x (HBM - weights - workspace - runtime)
#   total  (vLLM):         KV = f x HBM - weights - workspace - runtime
#   static (SGLang):       KV = f x HBM - weights (workspace and runtime live in the rest)
MEMORY_FRACTION_OF = ("free", "total", "static")
DEFAULT_ENGINE = "vllm"
# Profiles that were renamed: the old name still loads, and says what replaced it.
ALIASES = {"fused": "trtllm"}


@dataclass(frozen=True)
class Engine:
    name: str
    description: str
    framework: str                   # reference | vllm | sglang | trtllm: whose launch flags apply
    version: str                     # the engine release this profile describes
    # Kernels: launches and elementwise traffic besides GEMMs and attention.
    small_kernels_per_layer: int
    small_kernels_final: int
    small_kernels_per_moe_layer: int  # routing and token permutation around the expert GEMMs
    moe_bytes_per_pair: float         # their traffic per (token, expert) pair, per unit of hidden size
    ew_hidden: float                  # elementwise bytes per token per layer, per unit of hidden size
    ew_q_dim: float
    ew_kv_dim: float
    ew_ffn_intermediate: float
    ew_final_hidden: float
    decode_split_kv_tokens: int       # split-KV (flash-decoding) chunk; 0: one block per (sequence, KV head)
    sliding_window: str               # see SLIDING_WINDOW
    # Scheduler.
    max_batch: int                    # default cap on running sequences per scheduler (rank)
    max_num_tokens: int               # tokens per step (chunked-prefill budget, decode tokens included)
    kv_reserved_output: float         # share of a request's output tokens reserved at admission
    cuda_graph_max_batch: int         # decode steps up to this batch replay CUDA graphs; 0: none
    graphs_for_mixed_steps: bool      # steps that carry prompt chunks also replay graphs
    mixed_prefill: bool               # prompt chunks share steps with decodes (else they run instead of them)
    attn_dp_prefill: str              # see ATTN_DP_PREFILL
    # Memory.
    memory_fraction: float            # see MEMORY_FRACTION_OF
    memory_fraction_of: str
    runtime_reserve_bytes: float      # CUDA context, NCCL/cuBLAS workspaces, graph pools
    kv_block_tokens: int
    # Host: the CPU work of one scheduler step (scheduling, input preparation, sampling, output).
    host_step_s: float
    host_per_seq_s: float             # grows with the sequences in the step
    host_overlap: bool                # overlapped with the GPU's previous step (async scheduling)
    host_overlap_with_pp: bool        # ... also when the model is pipelined
    eager_launch_s: float             # host cost of one kernel launch outside a CUDA graph
    # Pipeline parallelism.
    pp_micro_batches: bool            # the running batch is split into pp micro-batches in flight
    pp_extra_micro_batches: int       # micro-batches in flight beyond pp (they hide the sync below)
    pp_sync_s: float                  # per micro-batch and stage: the hand-off no overlap hides
    # Mixture of experts.
    moe_dispatch: str                 # see MOE_DISPATCH
    a2a_bytes_per_element: float      # token dispatch format (1: FP8, DeepEP-style)
    a2a_efficiency: float             # share of link bandwidth the all-to-all kernels reach
    a2a_latency_s: float              # fixed cost of one dispatch or combine
    routing_skew: float               # coefficient of variation of expert load (0: uniform routing)
    moe_gemm_efficiency: float        # the engine's grouped expert GEMMs against the hardware's fit
    gemm_efficiency: float            # its quantized (FP8/FP4) dense GEMMs against the hardware's fit
    # Residual-add + RMSNorm kernels per layer that ride inside the tensor-parallel all-reduce
    # (one fused kernel) on these GPU families, for all-reduce payloads up to the size given.
    allreduce_fused_norms: int = 0
    allreduce_fusion_max_bytes: int = 0
    allreduce_fusion_families: tuple = ()
    # Per micro-batch tick, for each stage beyond the first: the sampled tokens' host-side trip
    # down the chain of stages (each rank receives them from the one before and passes them on).
    pp_sync_per_stage_s: float = 0.0
    # Attention-DP MoE layers run as two micro-batches in turn (SGLang's two-batch overlap, vLLM's
    # dual-batch overlap), so one's all-to-all travels while the other computes.
    moe_overlap_a2a: bool = False
    # The engine has its own one-shot all-reduce kernel (each GPU reads every peer's buffer and
    # reduces, one hop and one barrier) besides the two-shot/ring one, and picks the faster per
    # payload. It needs a switched or fully meshed fabric: the hardware's `oneshot_latency_s`.
    oneshot_allreduce: bool = False
    sources: tuple = ()               # (field path, provenance) pairs, as written in the file
    # Defaults that depend on the GPU: (min memory GiB, families it applies to (empty: all),
    # families excluded, ((field, value), ...)); the first match wins (vLLM and SGLang size their
    # batch, chunk and graph defaults by GPU memory and architecture).
    tiers: tuple = ()

    @property
    def kv_reservation(self) -> str:
        """`max` when the whole output is reserved at admission (no eviction), else `mean`."""
        return "max" if self.kv_reserved_output >= 1.0 else "mean"

    def on(self, hw) -> "Engine":
        """The profile as it runs on `hw`: its GPU-dependent defaults resolved."""
        if self.allreduce_fused_norms and hw.family not in self.allreduce_fusion_families:
            return replace(self, allreduce_fused_norms=0).on(hw)
        gib = hw.hbm_bytes / 2**30
        for min_gib, only, excluded, values in self.tiers:
            if gib >= min_gib and (not only or hw.family in only) and hw.family not in excluded:
                return replace(self, tiers=(), **dict(values))
        return replace(self, tiers=()) if self.tiers else self

    def provenance(self, path: str) -> str | None:
        return dict(self.sources).get(path)

    def with_overrides(self, **kw: Any) -> "Engine":
        """A copy with some fields replaced (`None` values are ignored). `kv_reservation: max|mean`
        and `kv_free_fraction` are accepted as the older spellings."""
        kw = {k: v for k, v in kw.items() if v is not None}
        if "kv_reservation" in kw:
            kw["kv_reserved_output"] = 1.0 if kw.pop("kv_reservation") == "max" else 0.5
        if "kv_free_fraction" in kw:
            kw["memory_fraction"], kw["memory_fraction_of"] = kw.pop("kv_free_fraction"), "free"
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in kw.items() if k in known})


# (YAML path, field, kind, lower bound, upper bound). Kinds: int, num, bool, text, choice.
_FIELDS: tuple[tuple[str, str, str, float, float], ...] = (
    ("kernels.small_kernels_per_layer", "small_kernels_per_layer", "int", 0, 1000),
    ("kernels.small_kernels_final", "small_kernels_final", "int", 0, 1000),
    ("kernels.small_kernels_per_moe_layer", "small_kernels_per_moe_layer", "int", 0, 1000),
    ("kernels.moe_bytes_per_pair", "moe_bytes_per_pair", "num", 0, 1000),
    ("kernels.elementwise_bytes_per_token.hidden", "ew_hidden", "num", 0, 1000),
    ("kernels.elementwise_bytes_per_token.q_dim", "ew_q_dim", "num", 0, 1000),
    ("kernels.elementwise_bytes_per_token.kv_dim", "ew_kv_dim", "num", 0, 1000),
    ("kernels.elementwise_bytes_per_token.ffn_intermediate", "ew_ffn_intermediate", "num", 0, 1000),
    ("kernels.elementwise_bytes_per_token.final_hidden", "ew_final_hidden", "num", 0, 1000),
    ("kernels.decode_split_kv_tokens", "decode_split_kv_tokens", "int", 0, 10_000_000),
    ("kernels.sliding_window", "sliding_window", "choice", 0, 0),
    ("scheduler.max_batch", "max_batch", "int", 1, 1_000_000),
    ("scheduler.max_num_tokens", "max_num_tokens", "int", 1, 10_000_000),
    ("scheduler.kv_reserved_output", "kv_reserved_output", "num", 0, 1),
    ("scheduler.cuda_graph_max_batch", "cuda_graph_max_batch", "int", 0, 1_000_000),
    ("scheduler.graphs_for_mixed_steps", "graphs_for_mixed_steps", "bool", 0, 0),
    ("scheduler.mixed_prefill", "mixed_prefill", "bool", 0, 0),
    ("scheduler.attn_dp_prefill", "attn_dp_prefill", "choice", 0, 0),
    ("memory.fraction", "memory_fraction", "num", 0.01, 1),
    ("memory.fraction_of", "memory_fraction_of", "choice", 0, 0),
    ("memory.runtime_reserve_bytes", "runtime_reserve_bytes", "num", 0, 1e12),
    ("memory.kv_block_tokens", "kv_block_tokens", "int", 1, 1_000_000),
    ("host.step_s", "host_step_s", "num", 0, 1.0),
    ("host.per_seq_s", "host_per_seq_s", "num", 0, 0.01),
    ("host.overlap", "host_overlap", "bool", 0, 0),
    ("host.overlap_with_pp", "host_overlap_with_pp", "bool", 0, 0),
    ("host.eager_launch_s", "eager_launch_s", "num", 0, 0.01),
    ("pipeline.micro_batches", "pp_micro_batches", "bool", 0, 0),
    ("pipeline.extra_micro_batches", "pp_extra_micro_batches", "int", 0, 64),
    ("pipeline.sync_s", "pp_sync_s", "num", 0, 1.0),
    ("moe.dispatch", "moe_dispatch", "choice", 0, 0),
    ("moe.a2a_bytes_per_element", "a2a_bytes_per_element", "num", 0.25, 4),
    ("moe.a2a_efficiency", "a2a_efficiency", "num", 0.01, 1),
    ("moe.a2a_latency_s", "a2a_latency_s", "num", 0, 0.1),
    ("moe.routing_skew", "routing_skew", "num", 0, 10),
    ("moe.gemm_efficiency", "moe_gemm_efficiency", "num", 0.05, 2),
    ("gemm.quantized_efficiency", "gemm_efficiency", "num", 0.05, 2),
    ("kernels.allreduce_fusion.norms", "allreduce_fused_norms", "int", 0, 16),
    ("kernels.allreduce_fusion.max_bytes", "allreduce_fusion_max_bytes", "int", 0, 1e12),
    ("kernels.allreduce_fusion.families", "allreduce_fusion_families", "families", 0, 0),
    ("pipeline.sync_per_stage_s", "pp_sync_per_stage_s", "num", 0, 1.0),
    ("moe.overlap_a2a", "moe_overlap_a2a", "bool", 0, 0),
    ("kernels.oneshot_allreduce", "oneshot_allreduce", "bool", 0, 0),
)
# Fields a profile may leave out (the engine has no such mechanism): those the dataclass gives a
# default, which then applies.
_DEFAULTED = {f.name for f in fields(Engine) if f.default is not MISSING}
OPTIONAL_PATHS = tuple(p for p, name, *_ in _FIELDS if name in _DEFAULTED)
NUMERIC_PATHS = tuple(p for p, _, kind, _, _ in _FIELDS if kind in ("int", "num"))
_CHOICES = {"memory_fraction_of": MEMORY_FRACTION_OF, "sliding_window": SLIDING_WINDOW, "moe_dispatch": MOE_DISPATCH,
            "attn_dp_prefill": ATTN_DP_PREFILL}


def _get(d: Any, path: str) -> Any:
    cur = d
    for k in path.split("."):
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _from_doc(doc: _yaml.Located) -> Engine:
    d = doc.data
    if not isinstance(d, dict):
        raise SpecError("an engine file must be a mapping", file=doc.file, line=1)

    def fail(path: str, msg: str):
        raise SpecError(msg, file=doc.file, line=doc.line_of(tuple(path.split("."))), field=path)

    sources = d.get("sources") or {}
    if not isinstance(sources, dict):
        fail("sources", "must be a mapping of field path to provenance")
    values: dict[str, Any] = {}
    for path, name, kind, lo, hi in _FIELDS:
        v = _get(d, path)
        if v is None and path in OPTIONAL_PATHS:
            continue
        if v is None:
            fail(path, "missing")
        if kind == "families":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                fail(path, f"must be a list of GPU family names, got {v!r}")
            v = tuple(v)
        elif kind == "bool":
            if not isinstance(v, bool):
                fail(path, f"must be true or false, got {v!r}")
        elif kind == "choice":
            allowed = _CHOICES[name]
            if v not in allowed:
                fail(path, f"must be one of {', '.join(allowed)}, got {v!r}")
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
            if not ok or (kind == "int" and int(v) != v):
                what = "an integer" if kind == "int" else "a number"
                fail(path, f"must be {what} from {lo:g} to {hi:g}, got {v!r}")
            v = int(v) if kind == "int" else float(v)
            if not str(sources.get(path, "")).strip():
                fail(path, "has no provenance: add it under `sources:` (a document, or what it was fitted to)")
        values[name] = v
    framework = d.get("framework")
    if framework not in FRAMEWORKS:
        fail("framework", f"must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    return Engine(name=str(d.get("name", "")), description=str(d.get("description", "")),
                  framework=framework, version=str(d.get("version", "")),
                  sources=tuple((str(k), str(v)) for k, v in sources.items()), tiers=_tiers(doc, values), **values)


def _tiers(doc: _yaml.Located, base: dict) -> tuple:
    """`scheduler.tiers`: a list of {min_memory_gib, families?, exclude_families?, and some of TIER_FIELDS}."""
    raw = _get(doc.data, "scheduler.tiers")
    if raw is None:
        return ()
    where = ("scheduler", "tiers")
    if not isinstance(raw, list) or not raw:
        raise SpecError("must be a list of tiers", file=doc.file, line=doc.line_of(where), field="scheduler.tiers")
    out = []
    for i, tier in enumerate(raw):
        here = where + (i,)

        def bad(msg):
            raise SpecError(msg, file=doc.file, line=doc.line_of(here), field=f"scheduler.tiers[{i}]")
        if not isinstance(tier, dict):
            bad("must be a mapping")
        unknown = set(tier) - {"min_memory_gib", "families", "exclude_families", *TIER_FIELDS}
        if unknown:
            bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: min_memory_gib, families, "
                "exclude_families, " + ", ".join(TIER_FIELDS))
        gib = tier.get("min_memory_gib")
        if isinstance(gib, bool) or not isinstance(gib, (int, float)) or not 0 <= gib <= 1e5:
            bad(f"min_memory_gib must be a number from 0 to 100000, got {gib!r}")
        lists = {}
        for key in ("families", "exclude_families"):
            v = tier.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                bad(f"{key} must be a list of GPU family names")
            lists[key] = tuple(v)
        values = {}
        for k in TIER_FIELDS:
            if k in tier:
                v = tier[k]
                integer = k != "runtime_reserve_bytes"
                ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and 0 <= v <= 1e12
                      and (not integer or int(v) == v))
                if not ok:
                    bad(f"{k} must be a{'n integer' if integer else ' number'} from 0 to 1e12, got {v!r}")
                values[k] = int(v) if integer else float(v)
        out.append((float(gib), lists["families"], lists["exclude_families"], tuple(values.items())))
    return tuple(out)


def catalog_names() -> list[str]:
    root = resources.files("parasearch") / "engine_catalog"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve_name(name: str) -> tuple[str, str | None]:
    """(catalog name, a note when an old alias was used)."""
    if name in ALIASES:
        new = ALIASES[name]
        return new, f"engine '{name}' was replaced by per-engine profiles; using '{new}' (see `parasearch catalog engines`)"
    return name, None


def load_engine(name_or_path: str) -> Engine:
    """An engine profile: a catalog name (`vllm`, `sglang`, `trtllm`, `reference`) or a path to a
    profile YAML of the same form."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return _from_doc(_yaml.load(text))
    text, _ = resolve_name(text)
    if text not in catalog_names():
        raise ParasearchError(f"unknown engine '{name_or_path}'", hint="catalog: " + ", ".join(catalog_names())
                              + "; or a path to an engine YAML")
    res = resources.files("parasearch") / "engine_catalog" / f"{text}.yaml"
    return _from_doc(_yaml.loads(res.read_text(), f"engine_catalog/{text}.yaml"))


def to_yaml(engine: Engine, header: str = "") -> str:
    """The profile as a YAML file of the catalog's form (every number with its provenance)."""
    import yaml

    doc: dict[str, Any] = {"name": engine.name, "framework": engine.framework, "version": engine.version,
                           "description": engine.description}
    written = []
    for path, name, _, _, _ in _FIELDS:
        v = getattr(engine, name)
        if path in OPTIONAL_PATHS and not v:
            continue            # a mechanism this engine does not have
        written.append(path)
        cur = doc
        *parents, leaf = path.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[leaf] = float(f"{v:.4g}") if isinstance(v, float) else list(v) if isinstance(v, tuple) else v
    if engine.tiers:
        doc["scheduler"]["tiers"] = [{"min_memory_gib": g, **({"families": list(o)} if o else {}),
                                      **({"exclude_families": list(x)} if x else {}), **dict(v)}
                                     for g, o, x, v in engine.tiers]
    sources = dict(engine.sources)
    doc["sources"] = {**{p: sources.get(p, "") for p in NUMERIC_PATHS if p in written}, **sources}
    text = yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True)
    lines = "".join(f"# {h}\n" if h else "#\n" for h in header.splitlines()) if header else ""
    return lines + text
