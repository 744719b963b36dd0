"""Closing the loop: `validate` reads the benchmarks' own result files with the plan.json they
measured and prints predicted against measured; `calibrate` refits an engine profile to a folder
of them and the refitted profile predicts them better. The result fixtures are written in the
formats of vLLM 0.33.0, SGLang 0.5.23 and TensorRT-LLM 1.2 (tests/deploy/data/results/README.md)."""

import copy
import json
import shutil

import pytest

from parasearch.calibration.bench_results import kind_of, read_results
from parasearch.catalog.engines import load_engine
from tests.conftest import ROOT, run_cli
from tests.deploy._flags import DATA

RESULTS = DATA / "results"


@pytest.mark.parametrize("engine,kind,fixture", [
    ("vllm", "vllm bench serve", "vllm/results/vllm-0.33.0-bench-serve.json"),
    ("sglang", "sglang.benchmark.serving", "sglang/results/sglang-0.5.23-bench-serving.jsonl"),
    ("trtllm", "trtllm-bench", "trtllm/results/trtllm-1.2-bench-report.json"),
])
def test_each_format_is_read_as_its_benchmark_wrote_it(engine, kind, fixture):
    (m,) = read_results(RESULTS / fixture)
    raw = [json.loads(line) for line in (RESULTS / fixture).read_text().splitlines() if line.strip()] \
        if fixture.endswith(".jsonl") else [json.loads((RESULTS / fixture).read_text())]
    assert m.tool == kind == kind_of(raw[0])
    assert m.engine_version.startswith({"vllm": "0.33", "sglang": "0.5.23", "trtllm": "1.2"}[engine])
    if engine == "trtllm":
        doc = raw[0]
        assert m.output_tokens_per_s == doc["performance"]["system_output_throughput_tok_s"]
        assert m.ttft_s == pytest.approx(doc["streaming_metrics"]["avg_ttft_ms"] / 1e3)
        assert m.input_tokens == doc["request_info"]["avg_input_length"] and m.replicas_measured == "1"
    else:
        doc = raw[0]
        assert m.output_tokens_per_s == doc["output_throughput"] and m.concurrency == doc["max_concurrency"]
        assert m.tpot_s == pytest.approx(doc["mean_tpot_ms"] / 1e3)
        assert m.output_tokens == doc["total_output_tokens"] / doc["completed"]


def test_validate_prints_predicted_against_measured_for_each_result():
    rc, out, err = run_cli("validate", str(RESULTS), "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert [r["tool"] for r in data["results"]] == ["sglang.benchmark.serving", "trtllm-bench", "vllm bench serve"]
    for r in data["results"]:
        for k in ("output_tokens_per_s", "ttft_s", "tpot_s"):
            assert r["predicted"][k] > 0 and r["measured"][k] > 0
            assert r["ratio"][k] == pytest.approx(r["predicted"][k] / r["measured"][k])
        assert r["plan"].endswith(f"{r['engine']}/plan.json") and r["profile"] == r["engine"]
    trt = data["results"][1]
    assert trt["replicas_measured"] == 1 and trt["concurrency"] == 256     # one replica, at the plan's batch
    rc, table, err = run_cli("validate", str(RESULTS / "vllm"))
    assert rc == 0, err
    ratio = data["results"][2]["ratio"]["output_tokens_per_s"]
    assert "DP4 TP2" in table and f"{ratio:.2f}" in table and "median predicted/measured" in table


def test_validate_reads_a_plan_deploy_wrote(tmp_path):
    """The result of a deployment, next to the plan.json `deploy` wrote for it."""
    rc, _, err = run_cli("deploy", str(ROOT / "problems" / "llama-3.1-70b-fp8-h200.yaml"), "--engine", "vllm",
                         "--out", str(tmp_path))
    assert rc == 0, err
    (tmp_path / "results").mkdir()
    shutil.copy(RESULTS / "vllm" / "results" / "vllm-0.33.0-bench-serve.json", tmp_path / "results")
    rc, out, err = run_cli("validate", str(tmp_path), "--json")
    assert rc == 0, err
    (r,) = json.loads(out)["results"]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert r["placement"] == plan["placement"]["placement"] and r["predicted"]["output_tokens_per_s"] > 0


def test_results_without_a_plan_or_of_another_layout_are_refused(tmp_path):
    shutil.copy(RESULTS / "vllm" / "results" / "vllm-0.33.0-bench-serve.json", tmp_path)
    rc, _, err = run_cli("validate", str(tmp_path / "vllm-0.33.0-bench-serve.json"))
    assert rc != 0 and "no plan.json" in err and "Traceback" not in err
    report = RESULTS / "trtllm" / "results" / "trtllm-1.2-bench-report.json"
    rc, _, err = run_cli("validate", str(report), "--plan", str(RESULTS / "vllm" / "plan.json"))
    assert rc != 0 and "measured trtllm" in err
    plan = json.loads((RESULTS / "trtllm" / "plan.json").read_text())
    for s in plan["servers"]:
        s["args"]["--tp_size"] = 2
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    rc, _, err = run_cli("validate", str(report), "--plan", str(tmp_path / "plan.json"))
    assert rc != 0 and "tp_size 1" in err


def test_calibrate_moves_predictions_toward_a_folder_of_results(tmp_path):
    """Results measured 30% under the oracle, at six concurrencies: the refitted profile's
    predictions land nearer them than the catalog profile's."""
    run = tmp_path / "runs" / "llama"
    shutil.copytree(RESULTS / "vllm", run)
    template = json.loads((run / "results" / "vllm-0.33.0-bench-serve.json").read_text())
    (run / "results" / "vllm-0.33.0-bench-serve.json").unlink()
    for c in (64, 128, 256, 512, 1024, 2048):
        doc = copy.deepcopy(template)
        doc.update(max_concurrency=c, completed=8 * c, total_input_tokens=128 * 8 * c,
                   total_output_tokens=2048 * 8 * c)
        (run / "results" / f"vllm-c{c}.json").write_text(json.dumps(doc))
    rc, out, err = run_cli("validate", str(tmp_path / "runs"), "--json")
    assert rc == 0, err
    for r in json.loads(out)["results"]:
        doc = json.loads((run / "results" / r["result"].split("/")[-1]).read_text())
        doc["output_throughput"] = 0.7 * r["predicted"]["output_tokens_per_s"]
        (run / "results" / r["result"].split("/")[-1]).write_text(json.dumps(doc))
    # the quantized-GEMM efficiency is what these compute-bound FP8 runs inform; bounds around the
    # catalog's value, whatever the catalog's value is
    g = load_engine("vllm").gemm_efficiency
    fitted = tmp_path / "vllm-fitted.yaml"
    rc, out, err = run_cli("calibrate", str(tmp_path / "runs"), "--engine", "vllm", "-o", str(fitted),
                           "--fit", f"gemm_efficiency={g / 4:.4g}:{min(g * 4, 2.0):.4g}", "--json")
    assert rc == 0, err
    fit = json.loads(out)
    assert fit["rows"] == 6 and fit["median_error_after"] < fit["median_error_before"]
    assert load_engine(str(fitted)).framework == "vllm"

    def errors(*extra):
        rc, out, err = run_cli("validate", str(tmp_path / "runs"), "--json", *extra)
        assert rc == 0, err
        return sorted(abs(r["ratio"]["output_tokens_per_s"] - 1) for r in json.loads(out)["results"])

    before, after = errors(), errors("--engine", str(fitted))
    assert before[len(before) // 2] == pytest.approx(3 / 7, rel=1e-3)    # 0.7 measured: predicted/measured = 1/0.7
    assert after[len(after) // 2] < 0.5 * before[len(before) // 2]


def test_a_refitted_profile_deploys_and_predicts_again(tmp_path):
    """deploy --engine PROFILE.yaml searches with it and names it in plan.json, so validate
    predicts the results with the same profile."""
    profile = tmp_path / "mine.yaml"
    rc, _, err = run_cli("calibrate", str(RESULTS / "vllm"), "--engine", "vllm", "-o", str(profile),
                         "--fit", "host_per_seq_s=1e-7:1e-3")
    assert rc == 0, err
    rc, _, err = run_cli("deploy", str(ROOT / "problems" / "llama-3.1-70b-fp8-h200.yaml"), "--engine", str(profile),
                         "--out", str(tmp_path / "dep"))
    assert rc == 0, err
    plan = json.loads((tmp_path / "dep" / "plan.json").read_text())
    assert plan["engine"]["profile"] == str(profile.resolve()) and plan["engine"]["framework"] == "vllm"
    assert "vllm serve" in (tmp_path / "dep" / "launch.sh").read_text()
    (tmp_path / "dep" / "results").mkdir()
    shutil.copy(RESULTS / "vllm" / "results" / "vllm-0.33.0-bench-serve.json", tmp_path / "dep" / "results")
    rc, out, err = run_cli("validate", str(tmp_path / "dep"), "--json")
    assert rc == 0, err
    assert json.loads(out)["results"][0]["profile"] == str(profile.resolve())
