import csv
import json

import pytest

from tests.conftest import ROOT, run_cli

PROBLEM = str(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")


def test_search_json_has_the_promised_shape():
    rc, out, err = run_cli("search", PROBLEM, "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["method"] == "exhaustive" and r["evaluated"] > 100 and isinstance(r["pruned"], dict)
    assert r["seconds"] >= 0
    for p in r["pareto"]:
        for k in ("dp", "tp", "pp", "ep", "gpus", "output_tokens_per_s_per_gpu", "tokens_per_s_per_user", "ttft_s",
                  "tpot_s", "bottleneck"):
            assert k in p
        assert p["gpus"] == p["dp"] * p["tp"] * p["pp"] * p["ep"]
    per_gpu = [p["output_tokens_per_s_per_gpu"] for p in r["pareto"]]
    per_user = [p["tokens_per_s_per_user"] for p in r["pareto"]]
    assert per_gpu == sorted(per_gpu, reverse=True)
    assert per_user == sorted(per_user)  # a front: giving up throughput buys interactivity


def test_table_csv_and_plot(tmp_path):
    c, png = tmp_path / "front.csv", tmp_path / "front.png"
    rc, out, err = run_cli("search", PROBLEM, "--csv", str(c), "--plot", str(png))
    assert rc == 0, err
    assert "/GPU" in out and "cluster" in out and "binds" in out and "evaluated" in out
    rows = list(csv.DictReader(c.open()))
    assert rows and float(rows[0]["output_tokens_per_s_per_gpu"]) > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in err


def test_price_gives_dollars_per_million_tokens():
    rc, out, _ = run_cli("search", str(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml"), "--json")
    r = json.loads(out)
    top = r["pareto"][0]
    expected = 2.5 * top["gpus"] / 3600 / top["output_tokens_per_s"] * 1e6
    assert top["usd_per_million_tokens"] == pytest.approx(expected)


def _write(tmp_path, text: str, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD = "model: llama-3.1-8b\ncluster: {hardware: h100-sxm, nodes: 1, gpus_per_node: 8}\n" \
       "workload: {input_tokens: 512, output_tokens: 128}\n"


@pytest.mark.parametrize("text,needle", [
    ("model: [unclosed\n", ":1: not valid YAML"),
    (GOOD + "colour: blue\n", ":4: colour: unknown key; allowed: name, model"),
    (GOOD.replace("512", "'many'"), ":3: workload.input_tokens: must be an integer, got many"),
    (GOOD.replace("nodes: 1", "nodes: -2"), ":2: cluster.nodes: Input should be greater than or equal to 1"),
    (GOOD.replace("llama-3.1-8b", "llama-9b"), ":1: model: unknown model 'llama-9b'"),
    (GOOD.replace("h100-sxm", "tpu-v5"), ":2: cluster.hardware: unknown hardware 'tpu-v5'"),
    ("", ":1: the file is empty"),
    ("just a sentence\n", ":1: a problem file must be a mapping"),
    (GOOD + "slo: {tpot_s: 0}\n", ":4: slo.tpot_s: Input should be greater than or equal to 0.000001"),
    (GOOD + "search: {ep: [2]}\n", ":4: search.ep: llama-3.1-8b is dense"),
])
def test_bad_problem_files_exit_3_with_file_line_field(tmp_path, text, needle):
    path = _write(tmp_path, text)
    rc, out, err = run_cli("search", path)
    assert rc == 3 and out == ""
    assert err.startswith(f"parasearch: error: {path}")
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_binary_huge_and_missing_files_exit_3(tmp_path):
    b = tmp_path / "b.yaml"
    b.write_bytes(bytes(range(256)))
    h = tmp_path / "h.yaml"
    h.write_text("model: x\n" + "# pad\n" * 300_000)
    for path, needle in ((str(b), "not a text file"), (str(h), "too large"), (str(tmp_path / "none.yaml"), "no such file")):
        rc, _, err = run_cli("search", path)
        assert rc == 3 and needle in err


def test_nothing_fits_exits_4_and_names_the_binding_constraint(tmp_path):
    weights = _write(tmp_path, "model: llama-3.1-405b\ncluster: {hardware: l40s, nodes: 1, gpus_per_node: 8}\n"
                               "workload: {input_tokens: 512, output_tokens: 128}\n", "w.yaml")
    rc, out, err = run_cli("search", weights)
    assert rc == 4 and out == "" and "weights do not fit" in err and "short by" in err
    slo = _write(tmp_path, GOOD + "slo: {tpot_s: 0.001}\n", "s.yaml")
    rc, _, err = run_cli("search", slo)
    assert rc == 4 and "TPOT SLO of 0.001 s is out of reach" in err and "over)" in err
    kv = _write(tmp_path, "model: llama-3.1-70b\nprecision: {weights: fp8}\ncluster: {hardware: h100-sxm, nodes: 1, "
                          "gpus_per_node: 1}\nworkload: {input_tokens: 100000, output_tokens: 30000}\n", "k.yaml")
    rc, _, err = run_cli("search", kv)
    # vLLM (the default engine) holds the prompt and, on average, half the output per sequence.
    assert rc == 4 and "KV cache: one sequence of 115,000 tokens (100,000 prompt + 15,000 output tokens" in err


def test_bad_options():
    rc, _, err = run_cli("search", PROBLEM, "--method", "magic")
    assert rc == 2 and "allowed: auto, exhaustive, optuna, ilp" in err
    rc, _, err = run_cli("search", PROBLEM, "--trials", "0")
    assert rc == 2 and "--trials must be a positive integer" in err
