import json

import pytest

from tests.conftest import run_cli


def test_decode_step_json_has_the_promised_fields():
    rc, out, err = run_cli("estimate", "--model", "llama-3.1-70b", "--hardware", "h200", "--tp", "8", "--phase",
                           "decode", "--batch", "64", "--context", "4096", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["step_time_s"] > 0 and r["bottleneck"] in ("compute", "memory", "interconnect", "latency")
    assert r["memory"]["kv_bytes_per_token_per_gpu"] == 40960
    assert r["memory"]["fits"] is True and r["memory"]["weights_bytes_per_gpu"] > 17e9


def test_serving_json_and_table():
    args = ["estimate", "-m", "llama-3.1-70b", "-H", "h100-sxm", "--tp", "2", "--weights", "fp8", "--kv-cache", "fp8",
            "--input-tokens", "128", "--output-tokens", "2048"]
    rc, out, _ = run_cli(*args, "--json")
    r = json.loads(out)
    for k in ("output_tokens_per_s", "output_tokens_per_s_per_gpu", "batch", "tpot_s", "ttft_s"):
        assert r[k] > 0
    assert r["output_tokens_per_s"] == pytest.approx(2 * r["output_tokens_per_s_per_gpu"])
    rc, out, _ = run_cli(*args)
    assert rc == 0 and "binding resource" in out and "kv-capacity" in out


def test_prefill_of_a_model_that_does_not_fit_says_so():
    rc, out, _ = run_cli("estimate", "-m", "llama-3.1-405b", "-H", "h100-sxm", "--tp", "8", "--phase", "prefill",
                         "--batch", "1", "--context", "1024", "--json")
    r = json.loads(out)
    assert rc == 0 and r["memory"]["fits"] is False and r["bottleneck"] == "weights-memory"


@pytest.mark.parametrize("args,needle", [
    (["-m", "nope", "-H", "h100-sxm", "--phase", "decode", "--batch", "1", "--context", "1"], "unknown model 'nope'"),
    (["-m", "llama-3.1-8b", "-H", "h999", "--phase", "decode", "--batch", "1", "--context", "1"], "unknown hardware"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--tp", "3", "--phase", "decode", "--batch", "1", "--context", "1"],
     "allowed: 1, 2, 4, 8"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--ep", "2", "--phase", "decode", "--batch", "1", "--context", "1"],
     "is dense"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--phase", "decode", "--batch", "0", "--context", "1"],
     "--batch must be a positive integer"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--phase", "warmup", "--batch", "1", "--context", "1"], "allowed: decode"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--weights", "int3", "--phase", "decode", "--batch", "1", "--context", "1"],
     "allowed: bf16, fp8, fp4"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm"], "nothing to estimate"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm", "--tp", "x"], "--tp"),
    (["-m", "missing/config.json", "-H", "h100-sxm", "--phase", "decode", "--batch", "1", "--context", "1"],
     "no such file"),
])
def test_bad_input_is_one_line_without_traceback(args, needle):
    rc, out, err = run_cli("estimate", *args)
    assert rc != 0 and out == ""
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_malformed_config_json(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"architectures": ["LlamaForCausalLM"],\n "hidden_size": }')
    rc, _, err = run_cli("estimate", "-m", str(p), "-H", "h100-sxm", "--phase", "decode", "--batch", "1",
                         "--context", "1")
    assert rc == 2 and f"{p}:2: malformed config.json" in err


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
def test_a_kv_limited_batch_fits_under_the_engines_own_reservation(engine):
    """The batch in flight is sized by the engine's KV reservation (vLLM: the prompt and half the
    output on average; TensorRT-LLM: the whole output, no eviction); the memory check reads the
    same reservation, so a KV-limited batch fits rather than being reported as overflowing."""
    rc, out, err = run_cli("estimate", "-m", "gpt-oss-20b", "-H", "rtx-pro-6000", "--engine", engine,
                           "--input-tokens", "2000", "--output-tokens", "8000", "--json")
    assert rc == 0, err
    r = json.loads(out)
    mem = r["memory"]
    assert r["bottleneck"] == "kv-capacity" and r["batch"] == r["kv_limited_batch"] > 1
    assert mem["fits"] and mem["kv_bytes_needed_per_gpu"] <= mem["kv_budget_bytes_per_gpu"]
    assert mem["kv_bytes_needed_per_gpu"] > 0.9 * mem["kv_budget_bytes_per_gpu"]
