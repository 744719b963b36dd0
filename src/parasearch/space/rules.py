"""Which parallel degrees a model admits (docs/placement.md states the rules).

The enumerator builds only placements that pass these rules; `check_placement` explains, in one
line, why a hand-given placement cannot work and which values would.
"""

from __future__ import annotations

from ..catalog.models import ModelSpec
from ..errors import ParasearchError


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def attention_tp_ok(model: ModelSpec, t: int) -> bool:
    """Heads split evenly; GQA KV heads are split or, past their count, replicated evenly."""
    for g in model.groups:
        a = g.attention
        if a.num_heads % t:
            return False
        if a.kind == "gqa" and a.num_kv_heads % t and t % a.num_kv_heads:
            return False
    return True


def ffn_tp_ok(model: ModelSpec, attn_tp: int, expert_tp: int) -> bool:
    for g in model.groups:
        f = g.ffn
        if f.kind == "dense" and f.intermediate % attn_tp:
            return False
        if f.kind == "moe":
            if f.expert_intermediate % expert_tp:
                return False
            if f.shared_intermediate and f.shared_intermediate % attn_tp:
                return False
    return True


def pp_problem(model: ModelSpec, pp: int) -> str | None:
    """Why `pp` stages cannot hold the model's layers (None: they can)."""
    return f"pp={pp} exceeds the {model.num_layers} layers" if pp > model.num_layers else None


def experts_problem(model: ModelSpec, ep: int) -> str | None:
    """Why `ep` ranks cannot share a MoE model's experts evenly (None: they can, or it is dense)."""
    if model.is_moe and model.num_experts % ep:
        return (f"ep={ep} does not divide the {model.num_experts} experts "
                f"(allowed: {', '.join(map(str, divisors(model.num_experts)))})")
    return None


def _broken_rules(model: ModelSpec, tp: int, pp: int, ep: int, dp: int, attn_dp: bool):
    """Each rule the placement breaks, as a function that words it (worded only when asked: the
    enumerator only needs to know whether there is one)."""
    bad = [(name, v) for name, v in (("tp", tp), ("pp", pp), ("ep", ep), ("dp", dp)) if v < 1]
    if bad:
        for name, v in bad:
            yield lambda name=name, v=v: f"{name} must be >= 1, got {v}"
        return
    if why := pp_problem(model, pp):
        yield lambda: why
    if ep > 1 and not model.is_moe:
        yield lambda: f"ep={ep} needs a mixture-of-experts model; {model.name} is dense (use ep=1)"
    if why_ep := experts_problem(model, ep):
        yield lambda: why_ep
    if attn_dp and ep == 1:
        yield lambda: "attention data parallelism needs ep > 1 (it runs one attention group per expert-parallel rank)"
    t_a = tp if attn_dp else tp * ep
    if not attention_tp_ok(model, t_a):
        yield lambda: (f"attention tensor parallelism {t_a} does not split {model.attention_heads} heads / "
                       f"{model.kv_heads} KV heads evenly (allowed: "
                       f"{', '.join(str(d) for d in divisors(model.attention_heads) if attention_tp_ok(model, d))})")
    elif not ffn_tp_ok(model, t_a, tp):
        yield lambda: f"tp={tp} does not split the feed-forward width evenly"


def placement_ok(model: ModelSpec, tp: int, pp: int, ep: int, attn_dp: bool) -> bool:
    """Whether a replica shape passes every rule (what the enumerator builds)."""
    return next(_broken_rules(model, tp, pp, ep, 1, attn_dp), None) is None


def placement_problems(model: ModelSpec, tp: int, pp: int, ep: int, dp: int, attn_dp: bool) -> list[str]:
    """Every rule the placement breaks, as short phrases (empty: valid)."""
    return [word() for word in _broken_rules(model, tp, pp, ep, dp, attn_dp)]


def check_placement(model: ModelSpec, tp: int, pp: int, ep: int, dp: int, attn_dp: bool) -> None:
    problems = placement_problems(model, tp, pp, ep, dp, attn_dp)
    if problems:
        raise ParasearchError("invalid placement: " + "; ".join(problems))
