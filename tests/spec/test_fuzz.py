"""Generated inputs for the loaders: whatever the file holds, the answer is a value or a one-line
ParasearchError, never another exception (which the CLI would report as an internal error)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parasearch.catalog import _yaml
from parasearch.catalog.models import from_config
from parasearch.errors import ParasearchError
from parasearch.spec import problem_from_text

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from([0, 1, -1, 2**63, 1e308, 1e-300, "", "all", "8", [], {}]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def _yaml_value(v) -> str:
    """A value in YAML flow form (JSON is YAML; floats that JSON cannot say are spelled out)."""
    if isinstance(v, float) and not math.isfinite(v):
        return ".nan" if v != v else (".inf" if v > 0 else "-.inf")
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_yaml_value(str(k))}: {_yaml_value(x)}" for k, x in v.items()) + "}"


BASE = {"model": "llama-3.2-1b", "cluster": {"hardware": "h100-sxm", "nodes": 1, "gpus_per_node": 8},
        "workload": {"input_tokens": 512, "output_tokens": 128}}
FIELDS = [("cluster", "nodes"), ("cluster", "gpus_per_node"), ("workload", "input_tokens"),
          ("workload", "output_tokens"), ("workload", "arrival_rate"), ("slo", "tpot_s"), ("search", "tp"),
          ("search", "max_batch"), ("search", "attn_dp"), ("optuna", "seed"), ("optuna", "storage"),
          ("optuna", "study"), ("ilp", "time_limit_s"), ("price_per_gpu_hour",), ("name",), ("engine",),
          ("precision", "weights"), ("objectives",), ("cluster", "pools")]


def _refused(exc: ParasearchError) -> None:
    """A refusal is what the CLI prints: one non-empty line."""
    line = exc.one_line()
    assert line.strip() and "\n" not in line, line


@FAST
@given(st.text(max_size=300))
def test_yaml_text(text):
    try:
        doc = _yaml.loads(text, "f.yaml")
    except ParasearchError as exc:
        _refused(exc)
    else:
        assert doc.file == "f.yaml"


@FAST
@given(st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=3))
def test_problem_fields(tmp_path_factory, edits):
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for path, v in edits:
        cur = doc
        for k in path[:-1]:
            cur = cur.setdefault(k, {}) if isinstance(cur.get(k, {}), dict) else {}
        cur[path[-1]] = v
    text = "\n".join(f"{k}: {_yaml_value(v)}" for k, v in doc.items()) + "\n"
    try:
        p = problem_from_text(text, "p.yaml", base_dir=tmp_path_factory.mktemp("p"))
    except ParasearchError as exc:
        _refused(exc)
    else:  # what loads is a problem the search can take: whole GPUs, positive token counts
        assert p.total_gpus >= 1 and p.workload.input_tokens >= 1 and p.workload.output_tokens >= 1


@FAST
@given(st.dictionaries(st.sampled_from(["hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                                        "num_hidden_layers", "intermediate_size", "vocab_size", "num_experts",
                                        "num_experts_per_tok", "moe_intermediate_size", "mlp_only_layers",
                                        "decoder_sparse_step", "sliding_window", "max_position_embeddings",
                                        "layer_types", "quantization_config", "architectures"]),
                       values, max_size=6),
       st.sampled_from(["LlamaForCausalLM", "Qwen3MoeForCausalLM", "DeepseekV3ForCausalLM", "GptOssForCausalLM",
                        "MixtralForCausalLM"]))
def test_config_json(patch, arch):
    cfg = {"architectures": [arch], "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 8,
           "num_hidden_layers": 4, "intermediate_size": 128, "vocab_size": 100, "num_experts": 4,
           "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
           "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8, "kv_lora_rank": 16, "sliding_window": 16,
           **patch}
    try:
        m = from_config(cfg, "m")
    except ParasearchError as exc:
        _refused(exc)
    else:  # what loads is a model the cost functions can take
        assert m.num_layers >= 1 and m.attention_heads >= 1 and m.kv_heads >= 1


numbers = st.one_of(st.integers(min_value=0, max_value=10**12), st.floats(min_value=1e-9, max_value=1e12),
                    st.sampled_from([1, 2, 8, 1e6, 1e-6, 0.5, 1e7]))
maybe = st.one_of(st.none(), numbers)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(nodes=numbers, gpn=numbers, inp=numbers, out=numbers, rate=maybe, tpot=maybe, price=maybe,
       method=st.sampled_from(["exhaustive", "ilp", "optuna", "auto"]), model=st.sampled_from(["llama-3.2-1b",
                                                                                              "qwen3-30b-a3b"]),
       hw=st.sampled_from(["h100-sxm", "a100-sxm-80gb", "gb200"]))
def test_search_of_any_numbers_ends_cleanly(tmp_path_factory, nodes, gpn, inp, out, rate, tpot, price, method, model,
                                            hw):
    from tests.conftest import run_cli

    text = (f"model: {model}\ncluster: {{hardware: {hw}, nodes: {nodes!r}, gpus_per_node: {gpn!r}}}\n"
            f"workload: {{input_tokens: {inp!r}, output_tokens: {out!r}"
            + (f", arrival_rate: {rate!r}" if rate is not None else "") + "}\n"
            + (f"slo: {{tpot_s: {tpot!r}}}\n" if tpot is not None else "")
            + (f"price_per_gpu_hour: {price!r}\nobjectives: [cost, ttft]\n" if price is not None else "")
            + f"method: {method}\noptuna: {{trials: 20}}\nilp: {{time_limit_s: 2, pareto_points: 2}}\n")
    p = tmp_path_factory.mktemp("p") / "p.yaml"
    p.write_text(text)
    rc, _, err = run_cli("search", str(p), "--json")
    assert rc in (0, 2, 3, 4), (text, err)
    assert "internal error" not in err and "Traceback" not in err and "Warning" not in err, (text, err)
    if rc:
        assert len(err.strip().splitlines()) == 1, (text, err)
