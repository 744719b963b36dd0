"""Models from Hugging Face ids, without the network: a fake hub cache (HF_HUB_CACHE in a temporary
folder, HF_HUB_OFFLINE=1) holds config.json files in the hub's own layout."""

import json

import pytest

from parasearch.catalog import hub
from parasearch.catalog.models import load_model
from parasearch.errors import ParasearchError
from tests.conftest import run_cli

LLAMA_8B = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
            "num_key_value_heads": 8, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256}
QUANT = {
    "acme/Llama-8B-AWQ-custom": ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"}, "int4"),
    "acme/llama-8b-gptq": ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "int4"),
    "acme/llama-8b-gptq-8bit": ({"quant_method": "gptq", "bits": 8}, "bf16"),  # W8A16 is not modelled
    "acme/llama-8b-w4a16-ct": ({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {
        "group_0": {"weights": {"num_bits": 4, "type": "int", "group_size": 128}, "input_activations": None}}},
        "int4"),
    "acme/llama-8b-fp8-ct": ({"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {
        "group_0": {"weights": {"num_bits": 8, "type": "float"}, "input_activations": {"num_bits": 8,
                                                                                         "type": "float"}}}}, "fp8"),
    "acme/llama-8b-nvfp4-ct": ({"quant_method": "compressed-tensors", "config_groups": {
        "group_0": {"weights": {"num_bits": 4, "type": "float", "group_size": 16}}}}, "fp4"),
    "acme/llama-8b-modelopt": ({"quant_method": "modelopt", "quant_algo": "FP8"}, "fp8"),
    "acme/llama-8b-modelopt-nvfp4": ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "fp4"),
    "acme/llama-8b-mxfp4": ({"quant_method": "mxfp4"}, "mxfp4"),
    "acme/llama-8b-fp8": ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8"),
    "acme/llama-8b": (None, "bf16"),
    "nvidia/Acme-8B-Instruct-FP8": (None, "fp8"),  # the config says nothing; the id does
    "nvidia/Acme-8B-Instruct-FP4": (None, "fp4"),
}


def _put(cache, repo_id: str, cfg: dict) -> None:
    """One repo in the hub's cache layout: refs/main names a snapshot that holds config.json."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    c = tmp_path / "hub"
    for repo_id, (q, _) in QUANT.items():
        _put(c, repo_id, {**LLAMA_8B, **({"quantization_config": q} if q else {})})
    monkeypatch.setenv("HF_HUB_CACHE", str(c))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return c


@pytest.mark.parametrize("repo_id", sorted(QUANT))
def test_quantization_is_read_from_the_cached_config(cache, repo_id):
    m = load_model(repo_id)
    assert m.name == repo_id and m.num_layers == 32 and m.kv_heads == 8
    assert m.native_weights == QUANT[repo_id][1]
    assert str(cache) in m.source


def test_offline_and_not_cached_is_one_clear_line(cache):
    with pytest.raises(ParasearchError) as e:
        load_model("acme/not-downloaded")
    msg = e.value.one_line()
    assert "\n" not in msg and str(cache) in msg and "--model path/to/config.json" in msg
    assert "HF_HUB_OFFLINE" in msg
    rc, out, err = run_cli("estimate", "-m", "acme/not-downloaded", "-H", "h100-sxm", "--phase", "decode",
                           "--batch", "1", "--context", "8")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and str(cache) in err


@pytest.mark.parametrize("repo_id,name,weights", [
    ("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-70b", "bf16"),
    ("nvidia/Llama-3.1-70B-Instruct-FP8", "llama-3.1-70b", "fp8"),
    ("nvidia/Llama-3.3-70B-Instruct-FP4", "llama-3.3-70b", "fp4"),
    ("nvidia/DeepSeek-R1-FP4", "deepseek-r1", "fp4"),
    ("deepseek-ai/DeepSeek-R1", "deepseek-r1", "fp8"),
    ("Qwen/Qwen2.5-72B-Instruct-AWQ", "qwen2.5-72b", "int4"),
    ("Qwen/Qwen3-32B-FP8", "qwen3-32b", "fp8"),
])
def test_catalog_models_resolve_offline_without_the_hub(monkeypatch, tmp_path, repo_id, name, weights):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))

    def no_hub(*_):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(hub, "hub_config", no_hub)
    m = load_model(repo_id)
    assert (m.name, m.native_weights) == (name, weights)


def test_a_problem_takes_the_checkpoints_weights_unless_told(cache, tmp_path):
    from parasearch.spec import problem_from_text

    base = ("model: acme/Llama-8B-AWQ-custom\ncluster: {hardware: h100-sxm, nodes: 1, gpus_per_node: 8}\n"
            "workload: {input_tokens: 512, output_tokens: 128}\n")
    assert problem_from_text(base, base_dir=tmp_path).precision.weights == "int4"
    told = base + "precision: {weights: bf16}\n"
    assert problem_from_text(told, base_dir=tmp_path).precision.weights == "bf16"
    p = tmp_path / "p.yaml"
    p.write_text(told)
    rc, out, err = run_cli("search", str(p), "--json")
    assert rc == 0 and "checkpoint holds int4 weights; using bf16 weights as asked" in err
    p.write_text(base)
    rc, out, err = run_cli("search", str(p), "--json")
    assert rc == 0 and err == "" and json.loads(out)["pareto"]


def test_a_local_folder_named_like_a_repo_id_is_a_path(tmp_path, monkeypatch):
    folder = tmp_path / "acme" / "local-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    monkeypatch.chdir(tmp_path)
    m = load_model("acme/local-model")
    assert m.name == "local-model" and m.source.endswith("config.json")
