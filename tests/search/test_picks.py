"""The right answer on real data: Llama-3.1-70B FP8 on 8 GPUs (TensorRT-LLM, 128 in / 2048 out)
measured best per-GPU throughput is TP2 on H100 and TP1 or TP2 on H200."""

import pytest

from parasearch.search import run_search
from parasearch.spec import load_problem
from tests.conftest import ROOT


@pytest.mark.parametrize("name,allowed", [("llama-3.1-70b-fp8-h100", {2}), ("llama-3.1-70b-fp8-h200", {1, 2})])
def test_top_throughput_point_picks_the_measured_tp(name, allowed):
    res = run_search(load_problem(ROOT / "problems" / f"{name}.yaml"), "exhaustive")
    top = int(res.front[0])
    assert int(res.evaluation.space.layout.tp[top]) in allowed


def test_small_model_prefers_data_parallel_replicas():
    res = run_search(load_problem(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml"), "exhaustive")
    top = int(res.front[0])
    assert int(res.evaluation.space.layout.tp[top]) == 1 and int(res.evaluation.space.layout.dp[top]) > 1


def test_moe_prefers_expert_parallel_with_attention_dp_for_throughput():
    res = run_search(load_problem(ROOT / "problems" / "deepseek-r1-reasoning-4xh200.yaml"), "exhaustive")
    lay = res.evaluation.space.layout
    top = int(res.front[0])
    assert int(lay.ep[top]) > 1 and bool(lay.attn_dp[top])
