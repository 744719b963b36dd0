import json

import pytest

from tests.conftest import ROOT, run_cli

TRACE = str(ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv")
PROBLEM = ROOT / "problems" / "llama-3.1-8b-azure-conv-h100.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def traced(tmp_path):
    """The shipped trace problem pinned to the reference engine, with a smaller space."""
    f = tmp_path / "p.yaml"
    f.write_text(PROBLEM.read_text().replace("../data", str(ROOT / "data"))
                 + "engine: reference\nsearch: {tp: [1, 2], pp: [1], max_batch: [32, 128]}\n")
    return str(f)


def test_trace_summary_table_json_and_plot(tmp_path):
    rc, out, err = run_cli("trace", TRACE)
    assert rc == 0, err
    assert "3,002 requests" in out and "P99" in out and "CV 1.09" in out and "Gamma fit" in out
    png = tmp_path / "t.png"
    rc, out, err = run_cli("trace", TRACE, "--json", "--plot", str(png))
    s = json.loads(out)
    assert rc == 0 and s["requests"] == 3002 and s["output_tokens"]["p99"] == 622
    assert 1 < s["interarrival"]["cv"] < 1.2 and s["dispersion"]
    assert png.read_bytes()[:8] == PNG and "wrote plot" in err


def test_trace_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,x,4\n")
    rc, _, err = run_cli("trace", str(bad))
    assert rc == 3 and f"{bad}:2: ContextTokens: not a number" in err and err.count("\n") == 1
    rc, _, err = run_cli("trace", str(tmp_path))
    assert rc == 3 and "not a regular file" in err


def test_search_under_traffic_reports_goodput_and_percentiles(traced, tmp_path):
    rc, out, err = run_cli("search", traced, "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["objectives"] == ["goodput_per_gpu", "tokens_per_user"] and r["traffic"]["slo"]
    rows = r["pareto"]
    assert rows
    for p in rows:
        assert p["goodput_rps"] > 0 and p["rate_rps"] == p["goodput_rps"]        # no target: at the goodput
        assert p["ttft_p50_s"] <= p["ttft_p90_s"] <= p["ttft_p99_s"]
        assert p["tpot_p50_s"] <= p["tpot_p90_s"] <= p["tpot_p99_s"]
        # At the goodput the SLO that binds sits at its limit, and the others hold.
        assert p["ttft_p99_s"] <= 2.0 * 1.001 and p["tpot_p90_s"] <= 0.05 * 1.001
        limit = {"p99-ttft": (p["ttft_p99_s"], 2.0), "p90-tpot": (p["tpot_p90_s"], 0.05)}.get(p["slo_binding"])
        if limit:
            assert limit[0] == pytest.approx(limit[1], rel=0.01)
    gp = [p["goodput_per_gpu_rps"] for p in rows]
    assert gp == sorted(gp, reverse=True)
    png = tmp_path / "s.png"
    rc, out, err = run_cli("search", traced, "--plot", str(png))
    assert rc == 0 and "goodput" in out and "P99 TTFT" in out and png.read_bytes()[:8] == PNG


def test_a_target_rate_prunes_placements_that_cannot_carry_it(traced, tmp_path):
    f = tmp_path / "rate.yaml"
    f.write_text(open(traced).read().replace("{trace:", "{rate: 60, trace:"))
    rc, out, err = run_cli("search", f"{f}", "--json", "--method", "exhaustive")  # auto: the ILP plans it
    assert rc == 0, err
    r = json.loads(out)
    assert all(p["goodput_rps"] >= 60 and p["rate_rps"] == 60 for p in r["pareto"])
    assert r["method"] == "exhaustive" and any(k.endswith("-slo") or k == "arrival-rate" for k in r["pruned"])


def test_simulate_prints_simulated_and_modelled_percentiles(traced, tmp_path):
    png = tmp_path / "sim.png"
    rc, out, err = run_cli("simulate", traced, "--placement", "DP8 b128", "--requests", "3000", "--json",
                           "--plot", str(png))
    assert rc == 0, err
    r = json.loads(out)
    assert r["placement"] == "DP8 b128" and r["rate_rps"] == pytest.approx(r["model_goodput_rps"])
    sim, model = r["simulated"], r["model"]
    assert sim["requests"] == 3000 and sim["unserved"] == 0
    assert sim["tpot"]["p90"] == pytest.approx(model["tpot"]["p90"], rel=0.25)
    assert png.read_bytes()[:8] == PNG
    rc, out, err = run_cli("simulate", traced, "--tp", "2", "--dp", "2", "--max-batch", "32", "--rate", "5",
                           "--requests", "1000")
    assert rc == 0 and "TTFT simulated" in out and "DP2 TP2 b32 at 5 req/s" in out


@pytest.mark.parametrize("args, words", [
    (("--placement", "TP2 XYZ"), "cannot read 'XYZ'"),
    (("--placement", "TP3"), "invalid placement"),
    (("--placement", "TP1 x9"), "do not fit"),
    (("--tp", "2", "--placement", "TP1"), "contradicts"),
    (("--requests", "10"), "at least 100"),
])
def test_simulate_rejects_bad_placements_in_one_line(traced, args, words):
    rc, _, err = run_cli("simulate", traced, *args)
    assert rc == 2 and words in err and err.count("\n") == 1
