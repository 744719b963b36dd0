"""A disaggregated cluster plan deploys as prefill servers, decode servers and the engine's
router, every flag one the engine (or its router) defines. The plan is written here, not solved,
so the test holds whatever the ILP would choose."""

import json
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from parasearch.deploy import plan as P
from parasearch.deploy.shell import commands
from parasearch.deploy.write import engine_module, render
from parasearch.spec.problem import problem_from_text
from tests.deploy._flags import check_flags, flag_dict, invocations, table

PROBLEM = """model: llama-3.1-70b
engine: {engine}
precision: {{weights: fp8, kv_cache: fp8}}
cluster: {{pools: [{{name: h200, hardware: h200, nodes: 2, gpus_per_node: 8}}]}}
workload: {{input_tokens: 8192, output_tokens: 512, arrival_rate: 20}}
"""


def allocation_row(role, tp, replicas, batch):
    row = {"pool": "h200", "hardware": "h200", "role": role, "placement": f"TP{tp}", "tp": tp, "pp": 1, "ep": 1,
           "attn_dp": False, "replicas": replicas, "gpus_per_replica": tp, "gpus": tp * replicas,
           "requests_per_s_per_replica": 5.0, "requests_per_s": 5.0 * replicas,
           "tpot_s": None if role == "prefill" else 0.03, "ttft_s": 0.8 if role == "prefill" else None,
           "bottleneck": "compute"}
    row["prompts_per_pass" if role == "prefill" else "max_batch"] = batch
    return row


def deploy(engine, tmp_path):
    problem = problem_from_text(PROBLEM.format(engine=engine))
    plan = {"allocation": [allocation_row("prefill", 2, 2, 1), allocation_row("decode", 4, 3, 128)],
            "served_output_tokens_per_s": 10240.0, "served_rate": 20.0, "gpus_used": 16,
            "disaggregation": {"chosen": True}, "objective": "goodput"}
    dep = P.from_plan(problem, SimpleNamespace(plan=plan), engine_module(engine), None, engine)
    files = render(dep, "test")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return files, json.loads(files["plan.json"])


def gpus_by_node(launch: str) -> dict[str, list[set]]:
    """Node rank -> GPU sets of the processes started there (None: the whole node)."""
    out: dict[str, list[set]] = {}
    rank = None
    for argv in commands(launch):
        if argv and argv[0].endswith(")") and argv[0][:-1].isdigit():
            rank = argv[0][:-1]
        env = [a for a in argv if a.startswith("CUDA_VISIBLE_DEVICES=")]
        if ("serve" in argv or "sglang.launch_server" in argv or "trtllm-serve" in argv) and "disaggregated" not in argv:
            out.setdefault(rank, []).append(set(env[0].split("=")[1].split(",")) if env else {"all"})
    return out


@pytest.mark.parametrize("engine", ("vllm", "sglang", "trtllm"))
def test_prefill_and_decode_servers_do_not_share_gpus(engine, tmp_path):
    files, plan = deploy(engine, tmp_path)
    for script in ("launch.sh", "bench.sh"):
        assert subprocess.run(["bash", "-n", str(tmp_path / script)]).returncode == 0
    roles = [s["role"] for s in plan["servers"]]
    assert set(roles) == {"prefill", "decode"}
    assert sum(s["gpus"] for s in plan["servers"]) == 16
    assert sum(s["replicas"] for s in plan["servers"] if s["role"] == "prefill") == 2
    assert sum(s["replicas"] for s in plan["servers"] if s["role"] == "decode") == 3
    by_node = gpus_by_node(files["launch.sh"])
    # One engine command per node each server occupies (a vLLM data-parallel server may span nodes).
    assert sorted(by_node) == ["0", "1"] and sum(map(len, by_node.values())) == sum(len(s["nodes"])
                                                                                   for s in plan["servers"])
    for rank, sets in by_node.items():
        seen = set()
        for gpus in sets:
            assert not (gpus & seen) and ("all" not in seen)
            seen |= gpus


def test_vllm_uses_nixl_and_vllm_router(tmp_path):
    files, plan = deploy("vllm", tmp_path)
    serves = invocations(files["launch.sh"], ["vllm", "serve", "$MODEL"])
    for args in serves:
        assert check_flags(args, "vllm serve") == []
        assert json.loads(flag_dict(args)["--kv-transfer-config"])["kv_connector"] == "NixlConnector"
    ports = [a.split("=")[1] for argv in commands(files["launch.sh"]) for a in argv
             if a.startswith("VLLM_NIXL_SIDE_CHANNEL_PORT=")]
    assert len(ports) == len(serves) and len(set(ports)) == len(plan["servers"])
    (router,) = invocations(files["launch.sh"], ["python3", "-m", "vllm_router.launch_router"])
    assert check_flags(router, "vllm_router.launch_router") == []
    flags = [f for f, _ in router]
    assert "--vllm-pd-disaggregation" in flags
    assert flags.count("--prefill") == roles(plan, "prefill") and flags.count("--decode") == roles(plan, "decode")
    (bench,) = invocations(files["bench.sh"], ["vllm", "bench", "serve"])
    assert flag_dict(bench)["--request-rate"] == "20"


def roles(plan, role):
    return sum(s["role"] == role for s in plan["servers"])


def test_sglang_uses_disaggregation_mode_and_sglang_router(tmp_path):
    files, plan = deploy("sglang", tmp_path)
    launches = [flag_dict(a) for a in invocations(files["launch.sh"], ["python3", "-m", "sglang.launch_server"])]
    for args in invocations(files["launch.sh"], ["python3", "-m", "sglang.launch_server"]):
        assert check_flags(args, "sglang.launch_server") == []
    modes = [f["--disaggregation-mode"] for f in launches]
    assert modes.count("prefill") == roles(plan, "prefill") and modes.count("decode") == roles(plan, "decode")
    bootstrap = sorted(f["--disaggregation-bootstrap-port"] for f in launches if f["--disaggregation-mode"] == "prefill")
    (router,) = invocations(files["launch.sh"], ["python3", "-m", "sglang_router.launch_router"])
    assert check_flags(router, "sglang_router.launch_router") == []
    assert "--pd-disaggregation" in dict(router)
    prefill = [v for f, v in router if f == "--prefill"]
    assert sorted(v[1] for v in prefill) == bootstrap            # each prefill URL with its bootstrap port
    (bench,) = invocations(files["bench.sh"], ["python3", "-m", "sglang.benchmark.serving"])
    assert check_flags(bench, "sglang.benchmark.serving") == [] and "--pd-separated" in dict(bench)


def test_trtllm_uses_its_disaggregated_server(tmp_path):
    files, plan = deploy("trtllm", tmp_path)
    known = table("trtllm-1.2-options.json")
    serves = invocations(files["launch.sh"], ["trtllm-serve", "$MODEL"])
    assert len(serves) == len(plan["servers"])
    for args in serves:
        assert check_flags(args, "trtllm-serve") == []
        opts = yaml.safe_load(files[flag_dict(args)["--extra_llm_api_options"]])
        assert set(opts) <= set(known["llm_api_options"])
        assert opts["cache_transceiver_config"]["backend"] in known["llm_api_options"]["cache_transceiver_config"]["backend"]
    prefill_yaml = [yaml.safe_load(t) for n, t in files.items() if n.endswith(".yml") and "prefill" in n]
    assert prefill_yaml and all(y["disable_overlap_scheduler"] for y in prefill_yaml)
    (router,) = invocations(files["launch.sh"], ["trtllm-serve", "disaggregated"])
    assert check_flags(router, "trtllm-serve disaggregated") == []
    heredoc = files["launch.sh"].split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    config = yaml.safe_load(heredoc)
    assert set(config) <= set(known["disagg_config"])
    assert config["context_servers"]["num_instances"] == len(config["context_servers"]["urls"]) == roles(plan, "prefill")
    assert config["generation_servers"]["num_instances"] == roles(plan, "decode")
    (bench,) = invocations(files["bench.sh"], ["vllm", "bench", "serve"])
    assert check_flags(bench, "vllm bench serve") == [] and flag_dict(bench)["--backend"] == "openai"
