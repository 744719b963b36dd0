"""Inputs that once ended in an internal error: each must now be one line naming the problem."""

import json

import pytest

from tests.conftest import ROOT, run_cli

LLAMA = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 8,
         "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}


def _one_line_error(rc, out, err):
    assert rc in (2, 3, 4), (rc, err)
    assert "internal error" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("patch", [{"hidden_size": float("inf")}, {"hidden_size": 4}, {"architectures": 5},
                                   {"architectures": [{}]}, {"quantization_config": "fp8"}])
def test_odd_config_json(tmp_path, patch):
    cfg = {**LLAMA, **patch}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg).replace("Infinity", "Infinity"))
    rc, out, err = run_cli("estimate", "-m", str(p), "-H", "h100-sxm", "--phase", "decode", "--batch", "1",
                           "--context", "8")
    if patch == {"quantization_config": "fp8"}:
        assert rc == 0  # an unknown quantization block just means bf16
    else:
        _one_line_error(rc, out, err)


def test_odd_moe_config_and_deep_json(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({**LLAMA, "architectures": ["Qwen3MoeForCausalLM"], "num_experts": 4,
                             "num_experts_per_tok": 2, "moe_intermediate_size": 16, "mlp_only_layers": 3}))
    _one_line_error(*run_cli("estimate", "-m", str(p), "-H", "h100-sxm", "--phase", "decode", "--batch", "1",
                             "--context", "8"))
    p.write_text("[" * 100_000 + "]" * 100_000)
    _one_line_error(*run_cli("estimate", "-m", str(p), "-H", "h100-sxm", "--phase", "decode", "--batch", "1",
                             "--context", "8"))


@pytest.mark.parametrize("cell", ["inf", "nan", "1e400"])
def test_odd_csv_numbers(tmp_path, cell):
    p = tmp_path / "m.csv"
    p.write_text(f"hardware,model,phase,batch,context,step_time_s\nh100-sxm,llama-3.1-8b,decode,{cell},10,0.01\n")
    rc, out, err = run_cli("validate", str(p))
    _one_line_error(rc, out, err)
    assert ":2: batch:" in err


def test_csv_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeffhardware,model,phase,batch,context,step_time_s\nh100-sxm,llama-3.1-8b,decode,1,10,0.01\n"
                  .encode("utf-8"))
    rc, out, _ = run_cli("validate", str(p), "--json")
    assert rc == 0 and json.loads(out)["count"] == 1


def test_odd_kernels_files(tmp_path):
    p = tmp_path / "k.json"
    p.write_text('{"meta": "x", "gemm": [{"M": 1, "K": 2, "N": 3, "time_s": Infinity}]}')
    _one_line_error(*run_cli("calibrate", str(p), "-H", "h100-sxm", "-o", str(tmp_path / "o.yaml")))
    p.write_text('{"gemm": []}')
    rc, out, err = run_cli("calibrate", str(p), "-H", "h100-sxm", "-o", str(tmp_path / "o.yaml"))
    _one_line_error(rc, out, err)
    assert "no kernel family" in err and not (tmp_path / "o.yaml").exists()


def test_unwritable_outputs(tmp_path):
    kernels = str(ROOT / "data" / "calibration" / "h100-sxm.kernels.json")
    _one_line_error(*run_cli("calibrate", kernels, "-H", "h100-sxm", "-o", str(tmp_path)))
    problem = str(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
    _one_line_error(*run_cli("search", problem, "--plot", str(tmp_path / "missing" / "x.png")))
    _one_line_error(*run_cli("search", problem, "--plot", str(tmp_path / "x.txt")))
    f = tmp_path / "file"
    f.write_text("")
    _one_line_error(*run_cli("sweep", "--nodes", "1", "--models", "llama-3.1-8b", "--report", str(f)))


def test_odd_problem_values(tmp_path):
    base = "model: llama-3.1-8b\ncluster: {hardware: h100-sxm}\nworkload: {input_tokens: 8, output_tokens: 8"
    for text in (base + ", arrival_rate: .inf}\n", base + "}\nsearch: {max_batch: [100000000000000000000]}\n",
                 base + "}\noptuna: {seed: -1}\n", base + "}\nobjectives: [throughput_per_gpu, cost]\n"):
        p = tmp_path / "p.yaml"
        p.write_text(text)
        rc, out, err = run_cli("search", str(p))
        _one_line_error(rc, out, err)
        assert rc == 3


def test_bad_hardware_and_engine_numbers(tmp_path):
    from parasearch.catalog.hardware import _catalog_root
    text = (_catalog_root() / "h100-sxm.yaml").read_text()
    p = tmp_path / "gpu.yaml"
    p.write_text(text.replace("gemm_bw: 0.8627", "gemm_bw: 0"))
    _one_line_error(*run_cli("estimate", "-m", "llama-3.1-8b", "-H", str(p), "--phase", "decode", "--batch", "1",
                             "--context", "8"))
    p.write_text(text.replace("domain_gpus: 8 ", "domain_gpus: .nan "))
    _one_line_error(*run_cli("estimate", "-m", "llama-3.1-8b", "-H", str(p), "--phase", "decode", "--batch", "1",
                             "--context", "8"))


def test_sweep_without_the_needed_workloads_says_not_tested():
    rc, out, _ = run_cli("sweep", "--models", "llama-3.1-8b", "--workloads", "reasoning-1k/8k", "--nodes", "1",
                         "--json")
    assert rc == 0
    verdicts = {f["number"]: (f["verdict"], f["evidence"]) for f in json.loads(out)["findings"]}
    assert verdicts[1][0] == "not tested" and "chat-1k/1k" in verdicts[1][1]
    assert verdicts[2][0] == "not tested" and verdicts[3][0] == "not tested"


def test_serving_estimate_that_holds_no_sequence_says_it_does_not_fit():
    rc, out, _ = run_cli("estimate", "-m", "llama-3.1-405b", "-H", "h100-sxm", "--tp", "8", "--weights", "bf16",
                         "--kv-cache", "fp8", "--input-tokens", "100000", "--output-tokens", "10000", "--json")
    r = json.loads(out)
    assert rc == 0 and r["memory"]["fits"] is False and r["batch"] == 0 and r["tpot_s"] is None
