import pytest

from parasearch.errors import SpecError
from parasearch.spec import load_problem, problem_from_text
from tests.conftest import ROOT

HEAD = "model: llama-3.1-8b\ncluster: {hardware: h100-sxm, nodes: 1, gpus_per_node: 8}\nengine: reference\n"


def test_percentile_slos_and_plain_numbers_still_meaning_the_mean():
    p = problem_from_text(HEAD + "workload: {input_tokens: 512, output_tokens: 128}\n"
                                 "slo: {ttft_s: {p99: 2.0, mean: 0.5}, tpot_s: {p90: 0.05}, e2e_s: 30}\n")
    assert (p.slo.ttft_s, p.slo.tpot_s, p.slo.e2e_s) == (0.5, None, 30)
    assert [(t.metric, t.stat, t.limit) for t in p.slo.percentiles] == [("ttft", "p99", 2.0), ("tpot", "p90", 0.05)]
    assert {t.name for t in p.slo.targets} == {"mean-ttft", "mean-e2e", "p99-ttft", "p90-tpot"}
    # Percentiles put the problem under load: goodput is the default objective, arrivals Poisson.
    assert p.under_load and p.objectives == ("goodput_per_gpu", "tokens_per_user")
    assert p.traffic.arrival == "poisson" and p.traffic.cv == 1.0 and p.traffic.rate is None


def test_plain_problems_are_not_under_load():
    p = problem_from_text(HEAD + "workload: {input_tokens: 512, output_tokens: 128}\nslo: {ttft_s: 1}\n")
    assert not p.under_load and p.objectives == ("throughput_per_gpu", "tokens_per_user")
    with pytest.raises(SpecError, match="goodput needs traffic"):
        problem_from_text(HEAD + "workload: {input_tokens: 512, output_tokens: 128}\nobjectives: [goodput_per_gpu]\n")


def test_a_trace_path_is_relative_to_the_problem_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text((ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv").read_text())
    f = tmp_path / "p.yaml"
    f.write_text(HEAD + "workload: {trace: sub/t.csv, rate: 12}\nslo: {ttft_s: {p99: 2}}\n")
    p = load_problem(f)
    assert p.traffic.arrival == "trace" and 1.0 < p.traffic.cv < 1.2 and p.traffic.rate == 12
    assert p.workload.arrival_rate == 12 and p.workload.input_tokens == pytest.approx(1150.1, abs=0.1)
    assert "3,002 requests" in p.traffic.description


def test_the_shipped_trace_problem_loads():
    p = load_problem(ROOT / "problems" / "llama-3.1-8b-azure-conv-h100.yaml")
    assert p.under_load and len(p.traffic.trace) == 3002 and p.slo.percentiles


def test_synthetic_arrivals_with_a_length_distribution():
    p = problem_from_text(HEAD + "workload: {input_tokens: 256, arrival: gamma, cv: 2, rate: 40,\n"
                                 "  output_tokens: {distribution: lognormal, median: 300, sigma: 1, max: 4000}}\n")
    t = p.traffic
    assert t.arrival == "gamma" and t.cv == 2 and t.rate == 40 and t.declared
    assert t.output_tokens.max() <= 4000 and abs(float(sorted(t.output_tokens)[len(t.output_tokens) // 2]) - 300) <= 2


@pytest.mark.parametrize("workload, words", [
    ("{trace: x.csv, input_tokens: 5}", "the trace gives"),
    ("{input_tokens: 5}", "give input_tokens and output_tokens, or a trace"),
    ("{input_tokens: 5, output_tokens: 5, arrival: gamma}", "needs cv"),
    ("{input_tokens: 5, output_tokens: 5, arrival: poisson, cv: 2}", "Poisson arrivals have cv 1"),
    ("{input_tokens: 5, output_tokens: 5, cv: 2}", "add arrival: gamma"),
    ("{input_tokens: 5, output_tokens: 5, rate: 2, arrival_rate: 2}", "not both"),
    ("{input_tokens: 5, output_tokens: 5, arrival: trace}", "needs a trace file"),
    ("{trace: missing.csv}", "missing.csv: no such file"),
])
def test_bad_workloads_are_one_line_with_the_line(workload, words):
    with pytest.raises(SpecError) as e:
        problem_from_text(HEAD + f"workload: {workload}\n", file="p.yaml")
    msg = e.value.one_line()
    assert msg.startswith("p.yaml:4: workload") and words in msg


def test_bad_percentile_slos():
    for slo, words in (("{ttft_s: {p98: 1}}", "unknown key; allowed: mean, p50, p90, p95, p99"),
                       ("{ttft_s: {}}", "at least one of"), ("{tpot_s: {p99: -1}}", "greater than or equal to")):
        with pytest.raises(SpecError) as e:
            problem_from_text(HEAD + "workload: {input_tokens: 5, output_tokens: 5}\n" + f"slo: {slo}\n", file="p.yaml")
        assert words in e.value.one_line() and ":5:" in e.value.one_line()
