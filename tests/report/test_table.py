"""Tables for real terminals: at 80 columns no line is longer and no number is cut; the header
says what was asked; on a fixed cluster the rows follow the whole cluster's throughput."""

from dataclasses import replace

import pytest
from rich.console import Console

from parasearch.catalog.engines import load_engine
from parasearch.report.fmt import compact, duration
from parasearch.report.plan import plan_table
from parasearch.report.rows import result_dict
from parasearch.report.table import pareto_table
from parasearch.search import run_search
from parasearch.space.label import placement_label
from parasearch.spec import load_problem
from tests.conftest import ROOT

# Every shipped single-pool problem, and a cluster plan (the 1,024-GPU plan takes seconds more to solve).
PROBLEMS = sorted(p.stem for p in (ROOT / "problems").glob("*.yaml") if p.stem != "deepseek-r1-1k-gpus-3-pools")


def _render(problem, result, width=80, **kw) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    if getattr(result, "plan", None) is not None:
        plan_table(problem, result.plan, console)
    else:
        pareto_table(problem, result_dict(problem, result), console, **kw)
    return console.export_text()


@pytest.fixture(scope="module")
def results():
    out = {}
    for name in PROBLEMS:
        p = load_problem(ROOT / "problems" / f"{name}.yaml")
        out[name] = (p, run_search(p, progress=False))
    return out


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_shipped_problem_fits_80_columns_with_nothing_cut(results, name):
    problem, result = results[name]
    text = _render(problem, result, explain=True) if result.__class__.__name__ == "SearchResult" else \
        _render(problem, result)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    assert problem.model.name in text and f"engine {problem.engine.name}" in text
    if getattr(result, "plan", None) is not None:
        for r in result.plan["allocation"]:  # each row's numbers whole, on one line
            assert any(all(c in line.split() for c in (str(r["gpus"]), compact(r["requests_per_s"]))) for line in lines)
        return
    assert "cluster" in text  # the whole-cluster throughput column
    res = result_dict(problem, result)
    for k, r in enumerate(res["pareto"], 1):
        first = r["goodput_rps"] if "traffic" in res else r["output_tokens_per_s"]
        cells = [compact(first), compact(r["output_tokens_per_s_per_gpu"]), compact(r["tokens_per_s_per_user"])]
        cells += [duration(r.get(f"{x.metric}_{x.stat}_s")) for x in problem.slo.percentiles] if "traffic" in res \
            else [duration(r["tpot_s"])]
        row = [line.split() for line in lines if line.split()[:1] == [str(k)]]
        assert row and all(c in row[0] for c in cells), (k, cells, row)


def test_the_header_names_gpus_on_default_efficiencies(results):
    from parasearch.report.header import problem_header
    from parasearch.spec import problem_from_text
    text = ("model: llama-3.1-70b\ncluster:\n  pools:\n    - {name: a, hardware: mi325x}\n"
            "    - {name: b, hardware: h100-sxm}\nworkload: {input_tokens: 128, output_tokens: 128, arrival_rate: 1}\n")
    lines = " ".join(line for line, _ in problem_header(problem_from_text(text)))
    # The MI325X has neither kernel timings nor published rows; the H100 has both.
    assert "mi325x: default kernel efficiencies" in lines and "h100-sxm" not in lines.split(":")[-1]
    problem, result = results["llama-3.1-70b-fp8-h100"]
    assert "default kernel efficiencies" not in _render(problem, result)


def test_top_and_explain(results):
    problem, result = results["llama-3.1-70b-fp8-h100"]
    res = result_dict(problem, result)
    short = _render(problem, result, top=3)
    assert f"{len(res['pareto'])} placements, top 3 shown" in short
    assert [line.split()[0] for line in short.splitlines() if line.split()[:1] in (["3"], ["4"])] == ["3"]
    full = _render(problem, result, explain=True)
    for k, r in enumerate(res["pareto"], 1):
        assert f"{k}. {r['why']}" in " ".join(full.split())


def test_a_fixed_cluster_ranks_by_its_total_throughput():
    """Llama-70B on 8xH100. For the cluster, whose 8 GPUs are there anyway, the top row delivers the
    most tokens/s in total; ranked per GPU, the top row is the most efficient per GPU it uses."""
    base = load_problem(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
    base = replace(base, engine=load_engine("reference"))
    assert base.fixed_fleet
    cluster = result_dict(base, run_search(base, "exhaustive"))
    per_gpu_problem = replace(base, ranking="per-gpu")
    per_gpu = result_dict(per_gpu_problem, run_search(per_gpu_problem, "exhaustive"))
    assert (cluster["ranking"], per_gpu["ranking"]) == ("cluster", "per-gpu")
    c, g = cluster["pareto"][0], per_gpu["pareto"][0]
    assert c["output_tokens_per_s"] >= g["output_tokens_per_s"]
    assert g["output_tokens_per_s_per_gpu"] >= c["output_tokens_per_s_per_gpu"]
    for res, key in ((cluster, "output_tokens_per_s"), (per_gpu, "output_tokens_per_s_per_gpu")):
        values = [r[key] for r in res["pareto"]]
        assert values == sorted(values, reverse=True)
    text = _render(per_gpu_problem, run_search(per_gpu_problem, "exhaustive"))
    assert "ranked by output tok/s per GPU" in text


def test_a_layout_that_leaves_gpus_idle_is_marked():
    p = load_problem(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
    p = replace(p, engine=load_engine("reference"), limits=replace(p.limits, tp=(2,), pp=(3,)))  # 6 of 8 GPUs
    res = run_search(p, "exhaustive")
    text = _render(p, res)
    assert all(r["gpus"] == 6 for r in result_dict(p, res)["pareto"])
    assert " 6/8 " in text and "leaves the rest idle" in text


def test_a_target_rate_sizes_the_fleet_so_rows_rank_per_gpu():
    p = load_problem(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml")
    assert p.fixed_fleet
    assert not replace(p, workload=replace(p.workload, arrival_rate=5.0)).fixed_fleet
    assert not replace(p, limits=replace(p.limits, max_gpus=4)).fixed_fleet


@pytest.mark.parametrize("args,label", [
    ((1,), "TP1"), ((2, 3, 4), "TP2 PP3 EP4"), ((2, 3, 4, 1, True), "TP2 PP3 EP4 +attnDP"),
    ((1, 1, 1, 8), "DP8"), ((2, 2, 1, 2), "DP2 TP2 PP2"), ((1, 1, 8, 16, True), "DP16 EP8 +attnDP"),
])
def test_one_label_style(args, label):
    assert placement_label(*args) == label


def test_json_rows_and_plans_label_placements_the_same_way(results):
    problem, result = results["deepseek-r1-reasoning-4xh200"]
    for r in result_dict(problem, result)["pareto"]:
        assert r["placement"] == placement_label(r["tp"], r["pp"], r["ep"], r["dp"], r["attn_dp"])
    _, plan = results["llama-3.1-70b-mixed-pools"]
    for r in plan.plan["allocation"]:
        assert r["placement"] == placement_label(r["tp"], r["pp"], r["ep"], r["replicas"], r["attn_dp"])


@pytest.mark.parametrize("x,text", [(3308, "3.31k"), (25_734, "25.7k"), (999.6, "1.00k"), (19.27, "19.3"),
                                    (817, "817"), (2.5e6, "2.50M"), (None, "-"), (float("nan"), "-")])
def test_compact_numbers(x, text):
    assert compact(x) == text


@pytest.mark.parametrize("s,text", [(0.0518, "52ms"), (0.0075, "7.5ms"), (1.234, "1.2s"), (31.0, "31s"),
                                    (None, "-")])
def test_compact_durations(s, text):
    assert duration(s) == text
