"""`parasearch sweep`: a small sweep regenerated, its figures and findings checked."""

import json

import pytest

from tests.conftest import ROOT, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    rc, out, err = run_cli("sweep", "--nodes", "1", "--models", "llama-3.1-8b,qwen2.5-32b",
                           "--workloads", "chat-1k/1k,reasoning-1k/32k", "--report", str(folder), "--json")
    assert rc == 0, err
    return folder, json.loads(out)


def test_small_sweep_writes_a_report_and_three_figures(small):
    folder, _ = small
    text = (folder / "README.md").read_text()
    assert text.count("### ") == 5 and "## Best strategy per model and workload" in text
    for name in ("reasoning_cliff.png", "capacity_trap.png", "tp_scaling.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5000
        assert f"]({name})" in text
    assert not (folder / "moe_strategies.png").exists()  # no MoE model swept, no empty MoE figure


def test_figures_show_the_capacity_trap(small):
    _, res = small
    pts = {(p["model"], p["workload"], p["strategy"]): p for p in res["points"]}
    dp_chat = pts[("llama-3.1-8b", "chat-1k/1k", "DP")]
    dp_long = pts[("llama-3.1-8b", "reasoning-1k/32k", "DP")]
    assert dp_long["concurrency_per_gpu"] < dp_chat["concurrency_per_gpu"] / 4
    assert dp_long["bottleneck"] == "kv-capacity" and dp_long["mfu"] < dp_chat["mfu"] / 4
    tp8_long = pts[("llama-3.1-8b", "reasoning-1k/32k", "TP8")]
    assert tp8_long["concurrency_per_gpu"] > dp_long["concurrency_per_gpu"]
    verdicts = {f["number"]: f["verdict"] for f in res["findings"]}
    assert verdicts[1] == "confirmed" and verdicts[2] == "confirmed"
    assert verdicts[4] == "not tested" and verdicts[5] == "not tested"


def test_terminal_summary_and_bad_input():
    rc, out, _ = run_cli("sweep", "--nodes", "1", "--models", "llama-3.1-8b", "--workloads", "chat-1k/1k")
    assert rc == 0 and "Best strategy per model and workload" in out and "1. confirmed" in out
    rc, _, err = run_cli("sweep", "--workloads", "chat-2k")
    assert rc == 2 and "allowed: chat-1k/1k" in err
    rc, _, err = run_cli("sweep", "--models", "gpt-9")
    assert rc == 2 and "unknown model 'gpt-9'" in err


def test_shipped_report_is_current(tmp_path):
    """The committed example is exactly what its documented command regenerates: the default engine
    (vllm) on H200 nodes, the hardware the study measured on, with no batch cap."""
    shipped = ROOT / "examples" / "reasoning-characterization" / "README.md"
    rc, _, err = run_cli("sweep", "--hardware", "h200", "--report", str(tmp_path))
    assert rc == 0, err
    regenerated = (tmp_path / "README.md").read_text().replace(str(tmp_path), "examples/reasoning-characterization")
    assert regenerated == shipped.read_text()
    assert "engine profile: vllm" in regenerated and "NVIDIA H200" in regenerated
