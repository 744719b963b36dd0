"""Model architectures: Hugging Face `config.json` files turned into a frozen `ModelSpec`.

Only what the cost oracle needs is kept: layer shapes, attention kind (GQA or MLA, with an
optional sliding window per layer), dense or mixture-of-experts feed-forward. Every supported
family is read from its own config keys; an architecture that cannot be modelled is refused.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from .. import files
from ..errors import ParasearchError, SpecError


@dataclass(frozen=True)
class Attention:
    kind: str                 # "gqa" (includes MHA and MQA) or "mla"
    num_heads: int
    num_kv_heads: int         # GQA: KV heads; MLA: 1 (one shared latent)
    head_dim: int             # query/key width per head (MLA: nope + rope)
    v_head_dim: int
    window: int | None = None  # sliding-window size in tokens, None for full attention
    # MLA only (DeepSeek-V2/V3/R1)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0


@dataclass(frozen=True)
class FeedForward:
    kind: str                 # "dense" or "moe"
    intermediate: int = 0     # dense width (gated: three matrices)
    num_experts: int = 0
    top_k: int = 0
    expert_intermediate: int = 0
    num_shared_experts: int = 0
    shared_intermediate: int = 0


@dataclass(frozen=True)
class LayerGroup:
    """`count` consecutive-or-not layers that share one shape."""

    count: int
    attention: Attention
    ffn: FeedForward


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hidden: int
    vocab: int
    tied_embeddings: bool
    groups: tuple[LayerGroup, ...]
    layer_group_index: tuple[int, ...]  # for each layer in order, which group it belongs to
    source: str = ""
    native_weights: str = "bf16"
    # The checkpoint keeps its attention projections in bf16 (its quantization_config leaves them
    # out: gpt-oss's MXFP4 covers the experts only).
    bf16_attention: bool = False
    max_context: int | None = None     # max_position_embeddings: the longest sequence the model serves
    extras: dict = field(default_factory=dict, compare=False, hash=False)

    def attention_weights(self, weights: str) -> str:
        """The format of the attention projections when the model runs `weights`: bf16 where the
        checkpoint, in its own format, leaves them unquantized."""
        return "bf16" if self.bf16_attention and weights == self.native_weights else weights

    @property
    def num_layers(self) -> int:
        return len(self.layer_group_index)

    # Cached: the placement rules ask these for every shape the enumerator tries (the groups never
    # change; `replace` builds a new spec with an empty cache).
    @cached_property
    def is_moe(self) -> bool:
        return any(g.ffn.kind == "moe" for g in self.groups)

    @property
    def uses_mla(self) -> bool:
        return any(g.attention.kind == "mla" for g in self.groups)

    @cached_property
    def num_experts(self) -> int:
        return max((g.ffn.num_experts for g in self.groups), default=0)

    @property
    def attention_heads(self) -> int:
        return self.groups[0].attention.num_heads

    @property
    def kv_heads(self) -> int:
        return self.groups[0].attention.num_kv_heads

    def without_windows(self) -> "ModelSpec":
        """The same model with every sliding-window layer attending the full context."""
        groups = tuple(replace(g, attention=replace(g.attention, window=None)) for g in self.groups)
        return replace(self, groups=groups)


class ModelError(ParasearchError):
    pass


MAX_CONFIG_BYTES = 1_000_000  # a Hugging Face config.json is a few kilobytes

# The largest value of each field a real model has, with room to spare (catalog maxima: 126 layers,
# hidden 16,384, 128 heads, 256 experts, vocabulary 202k, 10M context). A larger value is a typo or
# an attack, and the cost of the placement rules must not grow with it.
LIMITS = {
    "num_hidden_layers": 1024, "hidden_size": 131_072, "num_attention_heads": 2048, "num_key_value_heads": 2048,
    "head_dim": 4096, "v_head_dim": 4096, "qk_rope_head_dim": 4096, "qk_nope_head_dim": 4096,
    "q_lora_rank": 65_536, "kv_lora_rank": 65_536, "intermediate_size": 1_048_576,
    "moe_intermediate_size": 1_048_576, "shared_expert_intermediate_size": 1_048_576,
    "num_experts": 16_384, "num_local_experts": 16_384, "n_routed_experts": 16_384, "n_shared_experts": 64,
    "num_experts_per_tok": 16_384, "vocab_size": 16_777_216, "sliding_window": 134_217_728,
    "max_position_embeddings": 134_217_728, "decoder_sparse_step": 1024, "moe_layer_freq": 1024,
    "first_k_dense_replace": 1024,
}


def _int(cfg: dict, key: str, where: str, default: Any = ..., minimum: int = 1) -> int:
    if key not in cfg or cfg[key] is None:
        if default is ...:
            raise ModelError(f"{where}: config.json lacks '{key}'", hint="this architecture needs it")
        return default
    v = cfg[key]
    top = LIMITS.get(key, 16_777_216)
    if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or int(v) != v
            or v < minimum):
        raise ModelError(f"{where}: '{key}' must be an integer >= {minimum}, got {str(v)[:40]}")
    if v > top:
        raise ModelError(f"{where}: '{key}' is {str(v)[:40]}, more than any real model has (at most {top:,})")
    return int(v)


def _gqa(cfg: dict, where: str, window: int | None = None) -> Attention:
    heads = _int(cfg, "num_attention_heads", where)
    hidden = _int(cfg, "hidden_size", where)
    kv = _int(cfg, "num_key_value_heads", where, default=heads)
    if "head_dim" not in cfg or cfg["head_dim"] is None:
        if hidden < heads:
            raise ModelError(f"{where}: hidden_size ({hidden}) is smaller than num_attention_heads ({heads})")
        if hidden % heads:
            raise ModelError(f"{where}: hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads})",
                             hint="give head_dim if the heads are not hidden_size / heads wide")
    head_dim = _int(cfg, "head_dim", where, default=hidden // heads)
    if kv > heads:
        raise ModelError(f"{where}: num_key_value_heads ({kv}) exceeds num_attention_heads ({heads})")
    if heads % kv:
        raise ModelError(f"{where}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv})")
    return Attention("gqa", heads, kv, head_dim, head_dim, window)


def _sliding(cfg: dict, where: str) -> int | None:
    if cfg.get("use_sliding_window") is False:
        return None
    w = cfg.get("sliding_window")
    return None if w is None else _int(cfg, "sliding_window", where)


def _dense_layers(cfg, where, attention) -> tuple[list[LayerGroup], list[int]]:
    ffn = FeedForward("dense", intermediate=_int(cfg, "intermediate_size", where))
    n = _int(cfg, "num_hidden_layers", where)
    return [LayerGroup(n, attention, ffn)], [0] * n


def _parse_llama(cfg, where):  # Llama, Qwen2/2.5, Qwen3, Mistral
    return _dense_layers(cfg, where, _gqa(cfg, where, _sliding(cfg, where)))


def _moe(cfg, where, experts_key: str, inter_key: str, **shared) -> FeedForward:
    experts = _int(cfg, experts_key, where)
    top_k = _int(cfg, "num_experts_per_tok", where)
    if top_k > experts:
        raise ModelError(f"{where}: num_experts_per_tok ({top_k}) exceeds the {experts} experts ({experts_key})")
    return FeedForward("moe", num_experts=experts, top_k=top_k, expert_intermediate=_int(cfg, inter_key, where),
                       **shared)


def _layer_list(cfg, key: str, where: str, n: int) -> list[int]:
    """A list of layer indices, each in [0, n)."""
    v = cfg.get(key) or []
    if not isinstance(v, list) or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in v):
        raise ModelError(f"{where}: '{key}' must be a list of layer indices from 0 to {n - 1}, got {str(v)[:40]}")
    return v


def _parse_mixtral(cfg, where):
    n = _int(cfg, "num_hidden_layers", where)
    ffn = _moe(cfg, where, "num_local_experts", "intermediate_size")
    return [LayerGroup(n, _gqa(cfg, where, _sliding(cfg, where)), ffn)], [0] * n


def _parse_qwen_moe(cfg, where):  # Qwen2-MoE, Qwen3-MoE
    n = _int(cfg, "num_hidden_layers", where)
    att = _gqa(cfg, where, _sliding(cfg, where))
    shared = _int(cfg, "shared_expert_intermediate_size", where, default=0, minimum=0)
    moe = _moe(cfg, where, "num_experts", "moe_intermediate_size", num_shared_experts=1 if shared else 0,
               shared_intermediate=shared)
    step = _int(cfg, "decoder_sparse_step", where, default=1)
    mlp_only = set(_layer_list(cfg, "mlp_only_layers", where, n))
    dense_layers = [i for i in range(n) if i in mlp_only or (i + 1) % step]
    groups = [LayerGroup(n - len(dense_layers), att, moe)]
    index = [0] * n
    if dense_layers:
        groups.append(LayerGroup(len(dense_layers), att,
                                 FeedForward("dense", intermediate=_int(cfg, "intermediate_size", where))))
        for i in dense_layers:
            index[i] = 1
    return groups, index


def _parse_deepseek(cfg, where):  # DeepSeek-V2/V3/R1 (MLA)
    n = _int(cfg, "num_hidden_layers", where)
    heads = _int(cfg, "num_attention_heads", where)
    rope = _int(cfg, "qk_rope_head_dim", where)
    nope = _int(cfg, "qk_nope_head_dim", where)
    att = Attention("mla", heads, 1, nope + rope, _int(cfg, "v_head_dim", where),
                    q_lora_rank=_int(cfg, "q_lora_rank", where, default=0, minimum=0),
                    kv_lora_rank=_int(cfg, "kv_lora_rank", where),
                    qk_rope_head_dim=rope, qk_nope_head_dim=nope)
    first_dense = _int(cfg, "first_k_dense_replace", where, default=0, minimum=0)
    freq = _int(cfg, "moe_layer_freq", where, default=1)
    n_routed = _int(cfg, "n_routed_experts", where, default=0, minimum=0)
    dense = FeedForward("dense", intermediate=_int(cfg, "intermediate_size", where))
    if not n_routed:
        return [LayerGroup(n, att, dense)], [0] * n
    shared = _int(cfg, "n_shared_experts", where, default=0, minimum=0)
    moe_inter = _int(cfg, "moe_intermediate_size", where)
    moe = _moe(cfg, where, "n_routed_experts", "moe_intermediate_size", num_shared_experts=shared,
               shared_intermediate=shared * moe_inter)
    index = [1 if (i >= first_dense and i % freq == 0) else 0 for i in range(n)]
    n_moe = sum(index)
    return [LayerGroup(n - n_moe, att, dense), LayerGroup(n_moe, att, moe)], index


def _parse_gpt_oss(cfg, where):
    n = _int(cfg, "num_hidden_layers", where)
    window = _int(cfg, "sliding_window", where)
    full = _gqa(cfg, where)
    sliding = _gqa(cfg, where, window)
    moe = _moe(cfg, where, "num_local_experts", "intermediate_size")
    types = cfg.get("layer_types") or ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    kinds = ("sliding_attention", "full_attention")
    if not isinstance(types, list) or any(t not in kinds for t in types):
        raise ModelError(f"{where}: layer_types must list {' or '.join(kinds)} for each layer")
    if len(types) != n:
        raise ModelError(f"{where}: layer_types has {len(types)} entries for {n} layers")
    index = [0 if t == "sliding_attention" else 1 for t in types]
    return [LayerGroup(index.count(0), sliding, moe), LayerGroup(index.count(1), full, moe)], index


_PARSERS = {
    "LlamaForCausalLM": _parse_llama,
    "MistralForCausalLM": _parse_llama,
    "Qwen2ForCausalLM": _parse_llama,
    "Qwen3ForCausalLM": _parse_llama,
    "MixtralForCausalLM": _parse_mixtral,
    "Qwen2MoeForCausalLM": _parse_qwen_moe,
    "Qwen3MoeForCausalLM": _parse_qwen_moe,
    "DeepseekV2ForCausalLM": _parse_deepseek,
    "DeepseekV3ForCausalLM": _parse_deepseek,
    "GptOssForCausalLM": _parse_gpt_oss,
}
_MODEL_TYPES = {
    "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM", "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM", "gpt_oss": "GptOssForCausalLM",
}
SUPPORTED_ARCHITECTURES = tuple(sorted(_PARSERS))


def _compressed_tensors(q: dict) -> str | None:
    """The weight format of a compressed-tensors (llm-compressor) checkpoint, from the bits it states."""
    for group in (q.get("config_groups") or {}).values():
        w = group.get("weights") if isinstance(group, dict) else None
        if not isinstance(w, dict):
            continue
        bits, kind = w.get("num_bits"), str(w.get("type", "int")).lower()
        a = group.get("input_activations") or {}
        if bits == 4:
            return "fp4" if kind == "float" else "int4"   # NVFP4 / W4A16
        if bits == 8 and (kind == "float" or (isinstance(a, dict) and a.get("num_bits") == 8)):
            return "fp8"  # FP8, or W8A8 int8: the same bytes, and Hopper runs int8 at the fp8 rate
    fmt = str(q.get("format", "")).lower()
    return {"float-quantized": "fp8", "nvfp4-pack-quantized": "fp4"}.get(fmt)


def checkpoint_weights(cfg: dict) -> str | None:
    """The weight format a config's `quantization_config` states (fp8, fp4, mxfp4, int4), or None when it
    states none, or one the oracle does not model (int8 weight-only, 3-bit, ...)."""
    q = cfg.get("quantization_config")
    if not isinstance(q, dict):
        return None
    method = str(q.get("quant_method", "")).lower()
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8"
    if method == "mxfp4":  # gpt-oss: 4-bit values with a shared 8-bit exponent per 32
        return "mxfp4"
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        return "int4" if q.get("bits", 4) == 4 else None
    if method == "modelopt":  # NVIDIA TensorRT Model Optimizer checkpoints (nvidia/...-FP8, -FP4)
        algo = str(q.get("quant_algo", "")).upper()
        return "fp8" if algo == "FP8" else "fp4" if "FP4" in algo else "int4" if algo.startswith("W4A16") else None
    if method == "bitsandbytes":
        return "int4" if q.get("load_in_4bit") else None
    if method == "compressed-tensors":
        return _compressed_tensors(q)
    return None


def attention_unquantized(cfg: dict) -> bool:
    """Whether a quantized checkpoint lists its attention among the modules it leaves in bf16
    (`modules_to_not_convert` in Hugging Face's MXFP4 and bitsandbytes configs, `ignore` in
    compressed-tensors, `exclude_modules` in ModelOpt)."""
    q = cfg.get("quantization_config")
    if not isinstance(q, dict) or checkpoint_weights(cfg) is None:
        return False
    names = [n for k in ("modules_to_not_convert", "ignore", "exclude_modules") for n in (q.get(k) or [])
             if isinstance(n, str)]
    # The whole block ("model.layers.*.self_attn"), not one projection of it.
    return any("self_attn" in n and not n.split("self_attn", 1)[1].strip(".*") for n in names)


def from_config(cfg: Any, name: str, source: str = "") -> ModelSpec:
    """Build a ModelSpec from a parsed Hugging Face config dictionary."""
    where = source or name
    if not isinstance(cfg, dict):
        raise ModelError(f"{where}: config.json must hold a JSON object")
    if isinstance(cfg.get("text_config"), dict) and "hidden_size" not in cfg:
        raise ModelError(f"{where}: multimodal configs are not supported",
                         hint="pass the language model's own config.json")
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list):
        archs = [archs]
    arch = next((a for a in archs if isinstance(a, str) and a in _PARSERS), None)
    if arch is None:
        arch = _MODEL_TYPES.get(str(cfg.get("model_type", "")))
    if arch is None:
        got = (", ".join(map(str, archs[:4])) or f"model_type={cfg.get('model_type')!r}")[:120]
        raise ModelError(f"{where}: architecture {got} cannot be modelled",
                         hint="supported: " + ", ".join(SUPPORTED_ARCHITECTURES))
    try:
        groups, index = _PARSERS[arch](cfg, where)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a field of the wrong type
        raise ModelError(f"{where}: malformed config.json for {arch}: {exc}") from None
    used = sorted(set(index))  # a family parser may leave a group empty (no dense layers)
    index = [used.index(i) for i in index]
    return ModelSpec(
        name=name,
        hidden=_int(cfg, "hidden_size", where),
        vocab=_int(cfg, "vocab_size", where),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        groups=tuple(groups[i] for i in used),
        layer_group_index=tuple(index),
        source=source,
        native_weights=checkpoint_weights(cfg) or "bf16",
        bf16_attention=attention_unquantized(cfg),
        max_context=_int(cfg, "max_position_embeddings", where, default=None),
        extras={"architecture": arch},
    )


def catalog_names() -> list[str]:
    root = resources.files("parasearch") / "model_catalog"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


_SUFFIXES = ("-instruct", "-chat", "-base", "-v0.1", "-bf16", "-hf")
# Repo-id endings that name a quantized checkpoint (nvidia/Llama-3.1-70B-Instruct-FP8, ...-AWQ).
_QUANT_SUFFIXES = {"-fp8-dynamic": "fp8", "-fp8": "fp8", "-nvfp4": "fp4", "-fp4": "fp4", "-mxfp4": "mxfp4",
                   "-awq": "int4", "-gptq": "int4", "-int4": "int4", "-w4a16": "int4"}


def quantization_in_name(text: str) -> str | None:
    """The weight format a repo id's ending names (`-FP8`, `-FP4`/`-NVFP4`, `-AWQ`/`-GPTQ`/`-Int4`)."""
    key = text.strip().lower()
    found = None
    changed = True
    while changed:
        changed = False
        for suffix, fmt in _QUANT_SUFFIXES.items():
            if key.endswith(suffix):
                key, changed, found = key[: -len(suffix)], True, found or fmt
        for suffix in _SUFFIXES:
            if key.endswith(suffix):
                key, changed = key[: -len(suffix)], True
    return found


def catalog_alias(text: str) -> str | None:
    """The catalog name for a Hugging Face repo id or a variant of it
    (`meta-llama/Llama-3.1-70B-Instruct` -> `llama-3.1-70b`, `nvidia/DeepSeek-R1-FP4` -> `deepseek-r1`)."""
    key = text.strip().split("/")[-1].lower()
    if key.startswith("meta-"):
        key = key[len("meta-"):]
    changed = True
    while changed:
        changed = False
        for suffix in (*_QUANT_SUFFIXES, *_SUFFIXES):
            if key.endswith(suffix):
                key, changed = key[: -len(suffix)], True
    return key if key in catalog_names() else None


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def _catalog(key: str) -> ModelSpec:
    data = (resources.files("parasearch") / "model_catalog" / f"{key}.json").read_text()
    return from_config(json.loads(data), key, source=f"catalog:{key}")


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A catalog name (`llama-3.1-70b`), a path to a config.json (or its folder), or a Hugging Face
    repo id. Repo ids of catalog models resolve offline, without the Hub; any other id reads the
    config.json that `huggingface_hub` has cached, or downloads it. A quantized checkpoint's weight
    format comes from its `quantization_config`, else from its name (`-FP8`, `-FP4`, `-AWQ`)."""
    text = str(name_or_path)
    if not text.strip() or len(text) > files.MAX_NAME_CHARS or "\x00" in text:
        raise ModelError(f"'{files.short(text)}' is not a model name or a path",
                         hint="give a catalog name or a path to a config.json")
    path = Path(text)
    if not files.exists(path) and path.suffix != ".json":
        alias = catalog_alias(text)
        if alias:
            spec = _catalog(alias)
            named = quantization_in_name(text)
            return replace(spec, native_weights=named) if named else spec
        if _REPO_ID.match(text) and not text.startswith("."):
            from .hub import hub_config

            cfg, source = hub_config(text)
            spec = from_config(cfg, text, source=source)
            named = quantization_in_name(text)
            return replace(spec, native_weights=named) if named and checkpoint_weights(cfg) is None else spec
    looks_like_path = path.suffix == ".json" or "/" in text or files.exists(path)
    if not looks_like_path:
        key = text.lower()
        if key not in catalog_names():
            raise ModelError(f"unknown model '{files.short(text)}'",
                             hint="catalog: " + ", ".join(catalog_names()) + "; a Hugging Face id (org/name); "
                                  "or a path to a config.json")
        return _catalog(key)
    if files.probe(path) == "dir":
        path = path / "config.json"
    return from_config(read_config(path), _stem(path), source=files.short(str(path)))


def _stem(path: Path) -> str:
    return (path.parent.name if path.name == "config.json" else path.stem) or "model"


def read_config(path: Path) -> Any:
    """A config.json's JSON: a regular file of bounded size, with one-line errors."""
    try:
        return files.parse_json(files.read_text(path, limit=MAX_CONFIG_BYTES, what="a config.json"), str(path),
                                "config.json")
    except SpecError as exc:
        where = f"{exc.file}:{exc.line}" if exc.line else exc.file
        raise ModelError(f"{where}: {exc.message}",
                         hint=exc.hint and "give a catalog name, a Hugging Face id or a path to a config.json") from None
