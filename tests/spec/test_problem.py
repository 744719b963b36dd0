import math

import pytest

from parasearch.spec import load_problem, problem_from_text
from parasearch.spec._schema import OutputIn
from parasearch.spec.problem import output_lengths
from tests.conftest import ROOT

MINIMAL = """
model: llama-3.1-70b          # catalog name or path to a config.json
precision: {weights: fp8, kv_cache: fp8}
cluster: {hardware: h200, nodes: 1, gpus_per_node: 8}
workload: {input_tokens: 128, output_tokens: 2048}
slo: {ttft_s: 5.0, tpot_s: 0.2}
"""


def test_the_minimal_form_from_the_issue_loads():
    p = problem_from_text(MINIMAL)
    assert p.model.name == "llama-3.1-70b" and p.precision.weights == "fp8"
    assert p.pool.gpus == 8 and p.pool.hardware.name == "h200"
    assert p.workload.input_tokens == 128 and p.workload.output_tokens == 2048
    assert p.slo.tpot_s == 0.2 and p.method == "auto"


def test_every_shipped_problem_loads_and_there_are_at_least_six():
    files = sorted((ROOT / "problems").glob("*.yaml"))
    assert len(files) >= 6
    gpus = [load_problem(f).total_gpus for f in files]
    assert max(gpus) >= 128


def test_lognormal_output_mean_is_clipped_at_max():
    mean, reserve, desc = output_lengths(OutputIn(distribution="lognormal", median=12000, sigma=0.8, max=32768))
    full = 12000 * math.exp(0.8 ** 2 / 2)
    assert mean < full and 12000 < mean < 32768 and reserve == 32768 and "lognormal" in desc
    mean, reserve, _ = output_lengths(OutputIn(distribution="exponential", mean=1000))
    assert mean == 1000 and reserve == pytest.approx(1000 * math.log(100))
    assert output_lengths(4096)[:2] == (4096.0, 4096.0)


def test_engine_overrides_and_local_config_paths(tmp_path):
    import json
    from importlib import resources
    cfg = (resources.files("parasearch") / "model_catalog" / "llama-3.1-8b.json").read_text()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(cfg)
    f = tmp_path / "p.yaml"
    f.write_text("model: m/config.json\ncluster: {hardware: h100-sxm}\nworkload: {input_tokens: 8, output_tokens: 8}\n"
                 "engine: {name: trtllm, kv_reservation: mean, max_num_tokens: 4096}\n")
    p = load_problem(f)
    assert p.model.num_layers == 32 and p.engine.name == "trtllm"
    assert p.engine.kv_reservation == "mean" and p.engine.max_num_tokens == 4096
    assert p.engine.kv_reserved_output == 0.5 and load_problem(f).engine.framework == "trtllm"
    json.loads(cfg)


def test_pools_form():
    p = problem_from_text("model: deepseek-r1\ncluster:\n  pools:\n    - {name: a, hardware: h100-sxm, nodes: 4}\n"
                          "    - {name: b, hardware: h200, nodes: 2, price_per_gpu_hour: 4}\n"
                          "workload: {input_tokens: 1024, output_tokens: 1024, arrival_rate: 10}\n")
    assert [q.name for q in p.pools] == ["a", "b"] and p.total_gpus == 48 and p.declared_pools
    assert p.pools[1].price_per_gpu_hour == 4 and p.workload.arrival_rate == 10
