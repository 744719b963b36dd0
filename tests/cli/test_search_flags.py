"""`parasearch search` from flags is the same problem as the file; --version; shell completion;
the CLI's heavy imports stay lazy."""

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

from parasearch.catalog import _yaml
from parasearch.cli.search import problem_dict
from tests.conftest import ROOT, run_cli

H100 = str(ROOT / "problems" / "llama-3.1-70b-fp8-h100.yaml")
H100_FLAGS = ["-m", "llama-3.1-70b", "-H", "h100-sxm", "--nodes", "1", "--gpus-per-node", "8",
              "--input-tokens", "128", "--output-tokens", "2048", "--ttft", "5", "--tpot", "0.2",
              "--weights", "fp8", "--kv-cache", "fp8"]


def test_flags_build_the_files_dictionary():
    data = _yaml.load(H100).data
    flags = {"--model": "llama-3.1-70b", "--hardware": "h100-sxm", "--nodes": 1, "--gpus-per-node": 8,
             "--input-tokens": 128, "--output-tokens": 2048, "--ttft": 5.0, "--tpot": 0.2, "--weights": "fp8",
             "--kv-cache": "fp8"}
    assert problem_dict(flags) == {k: v for k, v in data.items() if k != "name"}


def test_flags_and_file_give_the_same_front():
    rc, from_file, err = run_cli("search", H100, "--json")
    assert rc == 0, err
    rc, from_flags, err = run_cli("search", *H100_FLAGS, "--json")
    assert rc == 0, err
    a, b = json.loads(from_file), json.loads(from_flags)
    assert len(a["pareto"]) >= 5 and a["pareto"] == b["pareto"] and a["evaluated"] == b["evaluated"]


def test_flags_with_a_rate_and_an_engine_give_the_same_plan(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("model: llama-3.1-8b\nengine: reference\ncluster: {hardware: h200, nodes: 1, gpus_per_node: 4}\n"
                 "workload: {input_tokens: 1024, output_tokens: 256, arrival_rate: 30}\nslo: {tpot_s: 0.05}\n")
    rc, from_file, err = run_cli("search", str(f), "--json")
    assert rc == 0, err
    rc, from_flags, err = run_cli("search", "-m", "llama-3.1-8b", "--engine", "reference", "-H", "h200", "--gpus-per-node",
                                  "4", "--input-tokens", "1024", "--output-tokens", "256", "--arrival-rate", "30",
                                  "--tpot", "0.05", "--json")
    assert rc == 0, err
    a, b = json.loads(from_file), json.loads(from_flags)
    assert a["allocation"] and a["allocation"] == b["allocation"] and a["served_rate"] == b["served_rate"]


@pytest.mark.parametrize("args,needle", [
    ([H100, "-m", "llama-3.1-8b"], "give a problem file or problem flags (--model), not both"),
    (["-m", "llama-3.1-8b", "-H", "h100-sxm"], "a problem from flags needs --input-tokens, --output-tokens"),
    ([], "no problem given"),
    (H100_FLAGS + ["--ttft", "-1"], "--ttft must be a positive number"),
    (H100_FLAGS + ["--nodes", "0"], "--nodes must be a positive integer"),
    (["-m", "llama-3.1-8b", "-H", "tpu-v5", "--input-tokens", "8", "--output-tokens", "8"],
     "--hardware: unknown hardware 'tpu-v5'"),
    (H100_FLAGS + ["--weights", "fp16"], "--weights 'fp16' is not a format"),
    ([H100, "--top", "0"], "--top must be a positive integer"),
    ([H100, "--rank", "best"], "allowed: cluster, per-gpu"),
])
def test_bad_flags_are_one_line(args, needle):
    rc, out, err = run_cli("search", *args)
    assert rc == 2 and out == "" and needle in err and len(err.strip().splitlines()) == 1, err


def test_version_comes_from_the_package_metadata():
    rc, out, _ = run_cli("--version")
    assert rc == 0 and out.strip() == f"parasearch {version('parasearch')}"


def test_shell_completion(monkeypatch, capsys):
    from parasearch.cli.main import main

    rc, out, _ = run_cli("--help")
    assert "--install-completion" in out and "--show-completion" in out
    monkeypatch.setenv("_PARASEARCH_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "parasearch search --to")
    monkeypatch.setenv("COMP_CWORD", "2")
    with pytest.raises(SystemExit):
        main([])
    assert capsys.readouterr().out.split() == ["--top"]


def test_the_cli_imports_no_numpy_until_a_command_runs():
    code = "import sys, parasearch.cli.main; print(sorted(m for m in ('numpy', 'pydantic', 'huggingface_hub') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
