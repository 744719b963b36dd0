import json

import pytest

from parasearch.catalog.models import ModelError, catalog_names, load_model
from parasearch.cost.layout import Layout
from parasearch.cost.memory import kv_bytes_per_token, weight_bytes_per_gpu

EXPECTED = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-32b", "qwen3-32b", "qwen3-235b-a22b",
            "mixtral-8x7b", "deepseek-r1", "gpt-oss-120b"}


def test_catalog_has_every_required_model():
    assert EXPECTED <= set(catalog_names())


@pytest.mark.parametrize("name,params_b", [("llama-3.1-8b", 8.03), ("llama-3.1-70b", 70.55), ("llama-3.1-405b", 405.85),
                                           ("qwen2.5-32b", 32.76), ("mixtral-8x7b", 46.7), ("deepseek-r1", 671.0),
                                           ("qwen3-235b-a22b", 235.1), ("gpt-oss-120b", 116.8)])
def test_parameter_counts_match_published_sizes(name, params_b):
    m = load_model(name)
    params = weight_bytes_per_gpu(m, Layout.of(), "bf16")[0] / 2
    assert params / 1e9 == pytest.approx(params_b, rel=0.01)


def test_llama70b_memory_facts():
    m = load_model("llama-3.1-70b")
    assert weight_bytes_per_gpu(m, Layout.of(), "bf16")[0] / 1e9 == pytest.approx(141.1, abs=0.1)
    kv = kv_bytes_per_token(m, Layout.of(tp=[1, 8, 16]), "bf16")
    assert kv.tolist() == [327_680, 40_960, 40_960]


def test_deepseek_r1_mla_latent_is_not_split_by_tp():
    m = load_model("deepseek-r1")
    assert m.uses_mla and m.is_moe
    assert kv_bytes_per_token(m, Layout.of(tp=[1, 8]), "bf16").tolist() == [70_272, 70_272]
    kinds = [(g.count, g.ffn.kind) for g in m.groups]
    assert kinds == [(3, "dense"), (58, "moe")]
    moe = m.groups[1].ffn
    assert (moe.num_experts, moe.top_k, moe.num_shared_experts) == (256, 8, 1)


def test_gpt_oss_alternates_sliding_and_full_attention():
    m = load_model("gpt-oss-120b")
    windows = [m.groups[i].attention.window for i in m.layer_group_index]
    assert windows[:4] == [128, None, 128, None] and len(windows) == 36
    # Sliding layers stop growing past the window: per-token KV falls with context.
    short, long = kv_bytes_per_token(m, Layout.of(), "bf16", context=[128])[0], \
        kv_bytes_per_token(m, Layout.of(), "bf16", context=[32768])[0]
    assert long < short and long > short / 2


def test_local_config_json_loads(tmp_path):
    cfg = json.loads((load_model.__globals__["resources"].files("parasearch") / "model_catalog" / "llama-3.1-8b.json").read_text())
    p = tmp_path / "my-model" / "config.json"
    p.parent.mkdir()
    p.write_text(json.dumps(cfg))
    m = load_model(str(p))
    assert m.name == "my-model" and m.num_layers == 32
    assert load_model(str(p.parent)).hidden == 4096


@pytest.mark.parametrize("content,message", [
    ("{not json", "malformed config.json"),
    ('{"architectures": ["BertModel"], "hidden_size": 8}', "cannot be modelled"),
    ('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}', "lacks"),
    ('[1, 2]', "JSON object"),
    ('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 6, "num_key_value_heads": 4,'
     ' "num_hidden_layers": 2, "intermediate_size": 8, "vocab_size": 10}', "not a multiple"),
])
def test_bad_configs_give_clear_errors(tmp_path, content, message):
    p = tmp_path / "config.json"
    p.write_text(content)
    with pytest.raises(ModelError, match=message):
        load_model(str(p))


def test_unknown_model_lists_the_catalog():
    with pytest.raises(ModelError) as e:
        load_model("llama-9")
    assert "llama-3.1-70b" in e.value.one_line()


@pytest.mark.parametrize("repo,name", [("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b"),
                                       ("Qwen/Qwen2.5-32B", "qwen2.5-32b"),
                                       ("mistralai/Mixtral-8x7B-v0.1", "mixtral-8x7b"),
                                       ("deepseek-ai/DeepSeek-R1", "deepseek-r1")])
def test_hugging_face_repo_ids_resolve_to_the_catalog(repo, name):
    assert load_model(repo).name == name
