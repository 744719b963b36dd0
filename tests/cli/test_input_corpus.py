"""The nasty-input corpus: every input surface (problem YAML, config.json, hardware YAML, measurement
CSV, kernels JSON, calibration profile, CLI options) fed what an attacker or a typo would feed it.
Each case must end with its documented exit code (2 options, 3 files, 4 infeasible), one line on
stderr, no traceback, no "internal error", and quickly. Add a row for every new class of input.

A case is (id, files, argv, exit code, text the one line must hold). `files` maps a name to its
content: str or bytes; FIFO for a named pipe; DIR for a directory. In argv, `{tmp}` is the case's
folder and `{name}` a file of the case.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conftest import ROOT, run_cli

FIFO, DIR = object(), object()
B = "model: llama-3.2-1b\ncluster: {hardware: h100-sxm, nodes: 1, gpus_per_node: 8}\n" \
    "workload: {input_tokens: 512, output_tokens: 128}\nmethod: exhaustive\n"
LLAMA = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 8,
         "num_key_value_heads": 8, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}
CSV_HEAD = "hardware,model,phase,batch,context,step_time_s\n"
ROW = "h100-sxm,llama-3.1-8b,decode,1,1024,0.01\n"
KERNELS = {"gemm": [{"M": m, "K": 4096, "N": 4096, "time_s": 2e-5 * m} for m in (1, 2, 4, 8, 16, 32)]}
STEP = ["--phase", "decode", "--batch", "1", "--context", "8"]
H100 = (ROOT / "hardware_catalog" / "h100-sxm.yaml").read_text()


def cfg(**patch) -> str:
    return json.dumps({**LLAMA, **patch})


def moe(**patch) -> str:
    return cfg(**{"architectures": ["Qwen3MoeForCausalLM"], "num_experts": 4, "num_experts_per_tok": 2,
                  "moe_intermediate_size": 16, **patch})


def laughs(levels: int, width: int, key: str = "a") -> str:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return B + "\n".join(lines).replace("l0:", f"{key}:", 0) + "\n"


def search(name="p.yaml", *extra):
    return ["search", "{tmp}/" + name, *extra]


def estimate_model(name="config.json"):
    return ["estimate", "-m", "{tmp}/" + name, "-H", "h100-sxm", *STEP]


CORPUS = [
    # --- problem YAML: parser bounds --------------------------------------------------------------
    ("yaml-billion-laughs", {"p.yaml": laughs(9, 10)}, search(), 3, "alias"),
    ("yaml-doubling-bomb", {"p.yaml": laughs(30, 2)}, search(), 3, "alias"),
    ("yaml-bomb-under-a-valid-key", {"p.yaml": B + "search: {max_batch: [&a0 [1, 1, 1, 1, 1, 1, 1, 1], "
                                     + ", ".join(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, 9))
                                     + "]}\n"}, search(), 3, "alias"),
    ("yaml-deep-flow-nesting", {"p.yaml": "a: " + "[" * 200_000}, search(), 3, "nested more than"),
    ("yaml-deep-block-nesting", {"p.yaml": "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "x: 1\n"},
     search(), 3, "nested more than"),
    ("yaml-many-values", {"p.yaml": "a: [" + "1," * 400_000 + "]\n"}, search(), 3, "values"),
    ("yaml-c1-control", {"p.yaml": B + "name: a\x9fb\n"}, search(), 3, "U+009F"),
    ("yaml-escaped-control", {"p.yaml": B + 'name: "a\\eb"\n'}, search(), 3, "control character U+001B"),
    ("yaml-4300-digit-int", {"p.yaml": B.replace("512", "9" * 5000)}, search(), 3, "cannot be read"),
    ("yaml-complex-key", {"p.yaml": B + "? [a, b]\n: 1\n"}, search(), 3, "plain names"),
    ("yaml-nul", {"p.yaml": B.encode() + b"\x00"}, search(), 3, "NUL"),
    ("yaml-not-utf8", {"p.yaml": b"model: \xff\xfe\n"}, search(), 3, "UTF-8"),
    ("yaml-too-large", {"p.yaml": "# " + "x" * 1_100_000 + "\n"}, search(), 3, "too large"),
    # --- files that are not files ------------------------------------------------------------------
    ("problem-fifo", {"p.yaml": FIFO}, search(), 3, "not a regular file"),
    ("problem-dev-zero", {}, ["search", "/dev/zero"], 3, "not a regular file"),
    ("problem-dev-urandom", {}, ["search", "/dev/urandom"], 3, "not a regular file"),
    ("problem-directory", {"d": DIR}, search("d"), 3, "is a directory"),
    ("problem-missing", {}, search("nope.yaml"), 3, "no such file"),
    ("problem-path-5000-chars", {}, ["search", "a/" * 2500 + "p.yaml"], 3, "not a usable file name"),
    ("model-fifo", {"config.json": FIFO}, estimate_model(), 2, "not a regular file"),
    ("model-dev-zero", {}, ["estimate", "-m", "/dev/zero", "-H", "h100-sxm", *STEP], 2, "not a regular file"),
    ("model-name-300-chars", {}, ["estimate", "-m", "m" * 300, "-H", "h100-sxm", *STEP], 2, "unknown model"),
    ("model-path-300-char-name", {}, ["estimate", "-m", "{tmp}/" + "m" * 300 + ".json", "-H", "h100-sxm", *STEP], 2,
     "not a usable file name"),
    ("model-in-problem-300-chars", {"p.yaml": B.replace("llama-3.2-1b", "x" * 300)}, search(), 3, "unknown model"),
    ("csv-directory", {"m.csv": DIR}, ["validate", "{tmp}/m.csv"], 3, "is a directory"),
    ("csv-fifo", {"m.csv": FIFO}, ["validate", "{tmp}/m.csv"], 3, "not a regular file"),
    ("kernels-fifo", {"k.json": FIFO}, ["calibrate", "{tmp}/k.json", "-H", "h100-sxm", "-o", "{tmp}/o.yaml"], 3,
     "not a regular file"),
    ("profile-fifo", {"c.yaml": FIFO}, ["estimate", "-m", "llama-3.2-1b", "-H", "h100-sxm", *STEP, "--calibration",
                                        "{tmp}/c.yaml"], 3, "not a regular file"),
    # --- problem numbers: strict, finite, within what real systems have -------------------------------
    ("nodes-true", {"p.yaml": B.replace("nodes: 1", "nodes: true")}, search(), 3, "must be an integer"),
    ("gpus-per-node-string", {"p.yaml": B.replace("gpus_per_node: 8", "gpus_per_node: '8'")}, search(), 3,
     "must be an integer"),
    ("input-tokens-fraction", {"p.yaml": B.replace("512", "512.5")}, search(), 3, "must be an integer"),
    ("arrival-rate-inf", {"p.yaml": B.replace("output_tokens: 128", "output_tokens: 128, arrival_rate: .inf")},
     search(), 3, "finite"),
    ("arrival-rate-nan", {"p.yaml": B.replace("output_tokens: 128", "output_tokens: 128, arrival_rate: .nan")},
     search(), 3, "finite"),
    ("price-1e308", {"p.yaml": B + "price_per_gpu_hour: 1e308\n"}, search(), 3, "price_per_gpu_hour"),
    ("lognormal-median-1e308", {"p.yaml": B.replace("output_tokens: 128", "output_tokens: {distribution: lognormal, "
                                                    "median: 1e308, sigma: 1}")}, search(), 3, "median"),
    ("lognormal-sigma-100", {"p.yaml": B.replace("output_tokens: 128", "output_tokens: {distribution: lognormal, "
                                                 "median: 100, sigma: 100}")}, search(), 3, "sigma"),
    ("slo-1e-300", {"p.yaml": B + "slo: {tpot_s: 1e-300}\n"}, search(), 3, "slo.tpot_s"),
    ("nodes-1e9", {"p.yaml": B.replace("nodes: 1", "nodes: 1e9")}, search(), 3, "cluster.nodes"),
    ("cluster-over-a-million-gpus", {"p.yaml": B.replace("nodes: 1", "nodes: 100000").replace("gpus_per_node: 8",
                                                                                           "gpus_per_node: 1024")},
     search(), 3, "more than any cluster"),
    ("max-batch-huge", {"p.yaml": B + "search: {max_batch: [100000000000000000000]}\n"}, search(), 3, "max_batch"),
    ("tp-3", {"p.yaml": B + "search: {tp: [3]}\n"}, search(), 3, "tp=3 does not divide the 32 attention heads"),
    ("pp-1000", {"p.yaml": B + "search: {pp: [1000]}\n"}, search(), 3, "pp=1000 exceeds the 16 layers"),
    ("ep-on-dense", {"p.yaml": B + "search: {ep: [2]}\n"}, search(), 3, "dense"),
    ("min-gpus-over-max", {"p.yaml": B + "search: {min_gpus: 8, max_gpus: 4}\n"}, search(), 3,
     "min_gpus (8) is larger than max_gpus (4)"),
    ("attn-dp-string", {"p.yaml": B + "search: {attn_dp: ['yes']}\n"}, search(), 3, "attn_dp"),
    ("context-beyond-model", {"p.yaml": B.replace("512", "200000")}, search(), 3, "maximum context of 131,072"),
    ("name-too-long", {"p.yaml": B + "name: " + "n" * 300 + "\n"}, search(), 3, "name"),
    ("time-limit-1e9", {"p.yaml": B + "ilp: {time_limit_s: 1e9}\n"}, search(), 3, "ilp.time_limit_s"),
    # --- least authority -------------------------------------------------------------------------
    ("storage-elsewhere", {"p.yaml": B + "optuna: {storage: /tmp/parasearch-evil.log}\n"}, search(), 3,
     "inside its own folder"),
    ("storage-escape", {"p.yaml": B + "optuna: {storage: ../evil.log}\n"}, search(), 3, "inside its own folder"),
    ("storage-rdb-in-file", {"p.yaml": B + "optuna: {storage: 'postgresql://u:secret@10.0.0.1/db'}\n"}, search(), 3,
     "--storage or PARASEARCH_STORAGE"),
    ("study-shell", {"p.yaml": B + "optuna: {study: '$(touch /tmp/pwned)'}\n"}, search(), 3, "a study name is"),
    # --- config.json ----------------------------------------------------------------------------------
    ("config-heads-1e9", {"config.json": cfg(num_attention_heads=10**9, num_key_value_heads=1, hidden_size=10**9)},
     estimate_model(), 2, "more than any real model"),
    ("config-layers-1e9", {"config.json": cfg(num_hidden_layers=10**9)}, estimate_model(), 2,
     "more than any real model"),
    ("config-experts-1e9", {"config.json": moe().replace('"num_experts": 4', '"num_experts": 1000000000')},
     estimate_model(), 2, "more than any real model"),
    ("config-7-heads-on-4096", {"config.json": cfg(num_attention_heads=7, num_key_value_heads=7, hidden_size=4096)},
     estimate_model(), 2, "not a multiple"),
    ("config-kv-over-heads", {"config.json": cfg(num_key_value_heads=16)}, estimate_model(), 2, "exceeds"),
    ("config-top-k-over-experts", {"config.json": moe(num_experts_per_tok=8)}, estimate_model(), 2, "exceeds the 4"),
    ("config-mlp-only-all", {"config.json": moe(mlp_only_layers="all")}, estimate_model(), 2, "layer indices"),
    ("config-4300-digit-int", {"config.json": cfg()[:-1] + ', "max_position_embeddings": ' + "9" * 5000 + "}"},
     estimate_model(), 2, "digits"),
    ("config-deep-json", {"config.json": "[" * 100_000 + "]" * 100_000}, estimate_model(), 2, "nested too deeply"),
    ("config-too-large", {"config.json": " " * 1_100_000 + "{}"}, estimate_model(), 2, "too large"),
    ("config-context-beyond", {}, ["estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--phase", "decode",
                                   "--batch", "1", "--context", "10000000"], 2, "maximum context of 131,072"),
    # --- hardware YAML ---------------------------------------------------------------------------------
    ("hardware-negative-bandwidth", {"gpu.yaml": H100.replace("bytes_per_s: 450e9", "bytes_per_s: -450e9")},
     ["estimate", "-m", "llama-3.2-1b", "-H", "{tmp}/gpu.yaml", *STEP], 3, "must be a positive number"),
    ("hardware-fractional-sms", {"gpu.yaml": H100.replace("sm_count: 132", "sm_count: 132.5")},
     ["estimate", "-m", "llama-3.2-1b", "-H", "{tmp}/gpu.yaml", *STEP], 3, "integer"),
    ("hardware-hbm-typo", {"gpu.yaml": H100.replace("hbm_bytes: 85017493504", "hbm_bytes: 85017493504e9")},
     ["estimate", "-m", "llama-3.2-1b", "-H", "{tmp}/gpu.yaml", *STEP], 3, "between"),
    ("hardware-efficiency-over-1", {"gpu.yaml": H100.replace("gemm_flops: 0.7427", "gemm_flops: 7.4")},
     ["estimate", "-m", "llama-3.2-1b", "-H", "{tmp}/gpu.yaml", *STEP], 3, "between"),
    # --- measurement CSV --------------------------------------------------------------------------------
    ("csv-field-over-128k", {"m.csv": CSV_HEAD + "h100-sxm," + "x" * 200_000 + ",decode,1,10,0.01\n"},
     ["validate", "{tmp}/m.csv"], 3, "characters"),
    ("csv-too-large", {"m.csv": CSV_HEAD + ROW * 30_000}, ["validate", "{tmp}/m.csv"], 3, "too large"),
    ("csv-too-many-rows", {"m.csv": CSV_HEAD + ROW * 12_000}, ["validate", "{tmp}/m.csv"], 3, "at most 10,000"),
    ("csv-time-1e-300", {"m.csv": CSV_HEAD + ROW.replace("0.01", "1e-300")}, ["validate", "{tmp}/m.csv"], 3,
     "step_time_s"),
    ("csv-batch-huge", {"m.csv": CSV_HEAD + ROW.replace(",1,1024", ",1e30,1024")}, ["validate", "{tmp}/m.csv"], 3,
     "batch"),
    # --- kernels JSON and fits ---------------------------------------------------------------------------
    ("kernels-time-1e-300", {"k.json": json.dumps({"gemm": [{**r, "time_s": 1e-300} for r in KERNELS["gemm"]]})},
     ["calibrate", "{tmp}/k.json", "-H", "h100-sxm", "-o", "{tmp}/o.yaml"], 3, "outside what a kernel"),
    ("kernels-4300-digit-int", {"k.json": '{"gemm": [{"M": ' + "9" * 5000 + ', "K": 1, "N": 1, "time_s": 1}]}'},
     ["calibrate", "{tmp}/k.json", "-H", "h100-sxm", "-o", "{tmp}/o.yaml"], 3, "digits"),
    ("kernels-negative-bandwidth", {"k.json": json.dumps({**KERNELS, "hbm_copy": {"bw_Bps": -5e12}})},
     ["calibrate", "{tmp}/k.json", "-H", "h100-sxm", "-o", "{tmp}/o.yaml"], 3, "bw_Bps"),
    ("calibrate-unphysical-fit", {"m.csv": CSV_HEAD + "".join(f"h200,qwen2.5-32b,decode,{b},2048,0.0012\n"
                                                             for b in (1, 8, 16, 32))},
     ["calibrate", "{tmp}/m.csv", "-H", "h200", "-o", "{tmp}/o.yaml"], 3, "cannot follow these measurements"),
    # --- CLI options --------------------------------------------------------------------------------------
    ("seed-negative", {"p.yaml": B}, search("p.yaml", "--method", "optuna", "--seed", "-1"), 2, "--seed"),
    ("seed-10-to-30", {"p.yaml": B}, search("p.yaml", "--method", "optuna", "--seed", str(10**30)), 2, "--seed"),
    ("trials-zero", {"p.yaml": B}, search("p.yaml", "--trials", "0"), 2, "--trials"),
    ("time-limit-nan", {"p.yaml": B}, search("p.yaml", "--time-limit", "nan"), 2, "--time-limit"),
    ("study-bad-name", {"p.yaml": B}, search("p.yaml", "--method", "optuna", "--study", "a b"), 2, "a study name is"),
    ("storage-text-file", {"p.yaml": B, "notes.txt": "hello\n"},
     search("p.yaml", "--method", "optuna", "--storage", "{tmp}/notes.txt"), 2, "not an Optuna journal"),
    ("storage-directory", {"p.yaml": B, "d": DIR}, search("p.yaml", "--method", "optuna", "--storage", "{tmp}/d"), 2,
     "not a regular file"),
    ("storage-fifo", {"p.yaml": B, "f": FIFO}, search("p.yaml", "--method", "optuna", "--storage", "{tmp}/f"), 2,
     "not a regular file"),
    ("storage-sqlite-on-text", {"p.yaml": B, "notes.db": "hello\n"},
     search("p.yaml", "--method", "optuna", "--storage", "sqlite:///{tmp}/notes.db"), 2, "cannot open storage"),
    ("storage-missing-folder", {"p.yaml": B}, search("p.yaml", "--method", "optuna", "--storage", "{tmp}/no/s.log"),
     2, "does not exist"),
    ("tp-3-estimate", {}, ["estimate", "-m", "llama-3.2-1b", "-H", "h100-sxm", "--tp", "3", *STEP], 2,
     "does not split"),
    ("sweep-a-billion-gpus", {}, ["sweep", "--nodes", "1000000", "--gpus-per-node", "1000"], 2, "more than any cluster"),
    ("max-batch-zero", {}, ["estimate", "-m", "llama-3.2-1b", "-H", "h100-sxm", "--input-tokens", "8",
                            "--output-tokens", "8", "--max-batch", "0"], 2, "--max-batch"),
]


def _materialize(tmp, files: dict) -> None:
    for name, content in files.items():
        path = tmp / name
        if content is FIFO:
            os.mkfifo(path)
        elif content is DIR:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus(tmp_path, case):
    _, files, argv, code, needle = case
    _materialize(tmp_path, files)
    t0 = time.perf_counter()
    rc, out, err = run_cli(*(a.replace("{tmp}", str(tmp_path)) for a in argv))
    seconds = time.perf_counter() - t0
    assert rc == code, err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert seconds < 12, f"took {seconds:.1f} s"  # a hang is what this corpus exists to catch, not a speed target


def test_the_corpus_covers_every_class():
    ids = " ".join(c[0] for c in CORPUS)
    for needle in ("laughs", "bomb", "fifo", "dev-zero", "dev-urandom", "directory", "300-char", "4300-digit",
                   "c1-control", "1e308", "1e9", "nodes-true", "field-over-128k", "seed-negative", "seed-10-to-30",
                   "storage-text-file", "context-beyond", "top-k", "mlp-only", "7-heads", "negative-bandwidth",
                   "time-1e-300", "unphysical-fit", "tp-3", "pp-1000", "min-gpus-over-max", "storage-elsewhere",
                   "study-shell", "storage-rdb", "too-large"):
        assert needle in ids, needle


def test_a_problem_file_cannot_create_a_file_elsewhere(tmp_path):
    target = tmp_path / "elsewhere" / "evil.sh"
    target.parent.mkdir()
    p = tmp_path / "work" / "p.yaml"
    p.parent.mkdir()
    p.write_text(B.replace("method: exhaustive", "method: optuna") +
                 f"optuna: {{storage: {target}, study: 'x$(touch {tmp_path}/pwned)', trials: 3}}\n")
    rc, _, err = run_cli("search", str(p))
    assert rc == 3 and not target.exists() and not (tmp_path / "pwned").exists()


def test_a_study_next_to_the_problem_file_is_allowed(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(B.replace("method: exhaustive", "method: optuna") + "optuna: {storage: study.log, trials: 4}\n")
    rc, out, err = run_cli("search", str(p), "--json")
    assert rc == 0, err
    assert (tmp_path / "study.log").is_file() and json.loads(out)["info"]["storage"] == str(tmp_path / "study.log")


def test_passwords_never_reach_the_terminal(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(B.replace("method: exhaustive", "method: optuna"))
    rc, _, err = run_cli("search", str(p), "--storage", "postgresql://alice:hunter2@127.0.0.1:1/db?connect_timeout=2")
    assert rc == 2 and "hunter2" not in err and "alice:***@" in err
    from parasearch.search.storage import mask_url
    assert mask_url("mysql://u:p%40ss@h/db?password=x&a=1") == "mysql://u:***@h/db?password=***&a=1"


def test_options_the_method_ignores_are_named(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(B)
    rc, _, err = run_cli("search", str(p), "--trials", "5", "--storage", str(tmp_path / "s.log"), "--json")
    assert rc == 0 and "--trials, --storage do not apply to the exhaustive method" in err
    assert not (tmp_path / "s.log").exists()


def test_weights_without_tensor_cores_are_noted_not_refused():
    rc, out, err = run_cli("estimate", "-m", "llama-3.2-1b", "-H", "a100-sxm-80gb", "--weights", "fp8", *STEP,
                           "--json")
    assert rc == 0 and json.loads(out)["step_time_s"] > 0
    assert err.count("\n") == 1 and "weight-only quantization" in err and "bf16 GEMMs" in err
    rc, _, err = run_cli("estimate", "-m", "llama-3.2-1b", "-H", "l40s", "--weights", "fp8", *STEP, "--json")
    assert rc == 0 and err == ""  # L40S has FP8 tensor cores


def test_no_numpy_warning_reaches_stderr(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(B.replace("output_tokens: 128", "output_tokens: {distribution: lognormal, median: 1, sigma: 5, "
                           "max: 4096}") + "price_per_gpu_hour: 9999\nobjectives: [cost, ttft]\n")
    rc, _, err = run_cli("search", str(p), "--json")
    assert rc in (0, 4) and "Warning" not in err
