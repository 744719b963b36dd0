"""TensorRT-LLM (PyTorch backend): `trtllm-serve` with an extra_llm_api_options YAML,
`trtllm-serve disaggregated` for prefill/decode plans, and `trtllm-bench throughput`.

TensorRT-LLM could not be installed here; the options come from its sources
(tensorrt_llm/commands/serve.py, tensorrt_llm/llmapi/llm_args.py, tensorrt_llm/bench/...)
as docs/deploy.md lists them.
- `--tp_size` is every GPU of a pipeline stage (tp * ep), `--ep_size ep` (moe_expert_parallel_size),
  `--pp_size pp`; `enable_attention_dp` runs attention data parallel over all tp_size ranks.
- `max_batch_size` caps one rank (attention-DP) and one micro-batch (the capacity scheduler admits
  max_batch_size x pp requests), so it is the replica's batch / ranks / pp.
- The trtllm profile assumes what this YAML sets: chunked prefill on, CUDA graphs padded up to
  the batch (`cuda_graph_config.enable_padding`, `max_batch_size` = the rank's batch).
- A replica larger than a node runs under one `mpirun ... trtllm-llmapi-launch trtllm-serve`
  started from its first node.
"""

from __future__ import annotations

import json
import math

import yaml

from ..cost.serving import engine_budget
from .plan import Deployment
from .script import host, url, visible_devices
from .shell import Command
from .topology import ROUTER_PORT, Group, Server

NAME = "trtllm"
TITLE = "TensorRT-LLM"
CHECKED = "options as TensorRT-LLM's sources define them (not checked against an installed copy)"
# free_gpu_memory_fraction: the KV pool's share of what weights and workspace leave
MEMORY_FLAG_MEANS = "free"
KV_DTYPE = {"fp8": "fp8", "bf16": "auto"}
CONFIG = "extra-llm-api-config.yml"
DISAGG_CONFIG = "disagg-config.yml"


def per_server(g: Group, model) -> tuple[int, bool]:
    return 1, False


def _sizes(dep: Deployment, s: Server) -> tuple[int, int, int | None]:
    sh = s.shape
    if dep.model.is_moe:
        return sh.tp * sh.ep, sh.pp, sh.ep
    return sh.tp, sh.pp, None


def rank_batch(dep: Deployment, s: Server) -> int:
    tp_size, pp, _ = _sizes(dep, s)
    ranks = tp_size if s.shape.attn_dp else 1
    return max(1, math.ceil(s.max_batch / ranks / pp))


def llm_api_options(dep: Deployment, s: Server) -> dict:
    """The extra_llm_api_options of server `s` (keys of TorchLlmArgs / BaseLlmArgs)."""
    eng = dep.engine_on(s)
    batch = rank_batch(dep, s)
    opts = {"enable_attention_dp": bool(s.shape.attn_dp), "max_batch_size": batch,
            "max_num_tokens": engine_budget(eng, 1, batch), "max_seq_len": dep.max_model_len,
            "enable_chunked_prefill": True,
            "kv_cache_config": {"dtype": KV_DTYPE[dep.precision.kv_cache],
                                "free_gpu_memory_fraction": dep.memory[s.index].fraction},
            "cuda_graph_config": {"enable_padding": True, "max_batch_size": batch}}
    if s.role != "aggregated":
        opts["cache_transceiver_config"] = {"backend": "DEFAULT", "max_tokens_in_buffer": dep.max_model_len}
    if s.role == "prefill":
        opts["disable_overlap_scheduler"] = True   # not supported on context servers (examples/disaggregated)
    return opts


def _config_names(dep: Deployment) -> dict[int, str]:
    """One YAML per distinct set of options: `extra-llm-api-config.yml` when all servers share one,
    else one per role and pool."""
    texts = {s.index: json.dumps(llm_api_options(dep, s), sort_keys=True) for s in dep.servers}
    if len(set(texts.values())) == 1:
        return {i: CONFIG for i in texts}
    names: dict[str, str] = {}
    for s in dep.servers:
        names.setdefault(texts[s.index], f"extra-llm-api-config-{s.role}-{s.pool}-{len(names) + 1}.yml")
    return {i: names[t] for i, t in texts.items()}


def engine_args(dep: Deployment, s: Server) -> list[tuple[str, object]]:
    tp_size, pp, ep = _sizes(dep, s)
    args: list[tuple[str, object]] = [("--backend", "pytorch"), ("--tp_size", tp_size), ("--pp_size", pp)]
    if ep is not None:
        args.append(("--ep_size", ep))
    args.append(("--extra_llm_api_options", _config_names(dep)[s.index]))
    return args


def notes(dep: Deployment) -> list[str]:
    out = []
    if any(s.shape.attn_dp and s.shape.tp > 1 for s in dep.servers):
        out.append("TensorRT-LLM's attention data parallelism runs attention on every rank alone (attention "
                   "TP 1); the plan groups tp GPUs per attention rank")
    if len(dep.servers) > 1 and not dep.disaggregated:
        out.append("TensorRT-LLM has no load balancer for aggregated replicas; vllm-router (pip install "
                   "vllm-router) fronts them here, any OpenAI-compatible one works")
    return out


def _mpirun(s: Server) -> list[str]:
    hosts = ",".join(f"{host(sl.node)}:{sl.gpus}" for sl in s.slots)
    return ["mpirun", "--allow-run-as-root", "-H", hosts, "-np", str(s.gpus), "trtllm-llmapi-launch"]


def server_commands(dep: Deployment, s: Server) -> dict[int, Command | str]:
    """The server's command on its first node; mpirun starts the ranks of the other nodes."""
    prefix = _mpirun(s) if len(s.slots) > 1 else []
    c = Command([*prefix, "trtllm-serve", "$MODEL"], env=visible_devices(s.slots[0], s.gpus_per_node),
                log=f"server{s.index}.log")
    c.add("--host", "0.0.0.0").add("--port", s.port)
    for flag, value in engine_args(dep, s):
        c.add(flag, value)
    others = {sl.node: f'echo "launch.sh: node {sl.node} runs ranks of server {s.index}, started by mpirun from '
                       f'node {s.head}"' for sl in s.slots[1:]}
    return {s.head: c, **others}


def disagg_config(dep: Deployment) -> list[str]:
    """The shell that writes disagg-config.yml on node 0 (a heredoc, so node addresses expand)."""
    ctx = [s for s in dep.servers if s.role == "prefill"]
    gen = [s for s in dep.servers if s.role != "prefill"]
    lines = [f"cat > {DISAGG_CONFIG} <<EOF", "hostname: 0.0.0.0", f"port: {ROUTER_PORT}", "backend: pytorch"]
    for key, group in (("context_servers", ctx), ("generation_servers", gen)):
        lines += [f"{key}:", f"  num_instances: {len(group)}", "  urls:"]
        lines += [f'    - "{url(s, "")}"' for s in group]
    return ["\n".join(lines + ["EOF"])]


def router(dep: Deployment) -> list[Command | str]:
    """What node 0 runs in front of the servers: the disaggregated server (after writing its
    config), or a load balancer for several replicas; nothing for one server."""
    if dep.disaggregated:
        return [*disagg_config(dep), Command(["trtllm-serve", "disaggregated"], log="router.log").add("-c", DISAGG_CONFIG)]
    from . import vllm

    return vllm.router(dep)    # vllm-router's round robin over the replicas (see notes)


DATASET_SNIPPET = """python3 - "$DATASET" "$NUM_PROMPTS" <<'EOF'
# trtllm-bench's dataset format: one JSON object per line with task_id, input_ids, output_tokens
import json, random, sys
random.seed(0)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        ids = [random.randrange(1000, {vocab}) for _ in range({isl})]
        f.write(json.dumps({{"task_id": i, "input_ids": ids, "output_tokens": {osl}}}) + "\\n")
EOF"""


def bench(dep: Deployment) -> tuple[list, dict]:
    if dep.disaggregated:
        # trtllm-bench runs one engine in-process; a disaggregated plan is measured through its router.
        from .vllm import bench_command

        name = f"openai-c{dep.concurrency}.json"
        version = f"TensorRT-LLM {dep.engine.version} (profile)"
        return [bench_command(dep, name, backend="openai", version=version)], {
            "tool": "vllm bench serve --backend openai", "result": f"results/{name}",
            "concurrency": dep.concurrency, "replicas_measured": "all"}
    s = dep.servers[0]
    tp_size, pp, ep = _sizes(dep, s)
    concurrency = s.max_batch if dep.kind == "cluster-plan" else dep.placement["batch"]
    name = f"trtllm-bench-c{concurrency}.json"
    lines: list = ['DATASET="results/dataset-%d-%d.jsonl"' % (dep.input_tokens, dep.output_tokens),
                   DATASET_SNIPPET.format(vocab=dep.model.vocab - 1000, isl=dep.input_tokens, osl=dep.output_tokens)]
    prefix = _mpirun(s) if len(s.slots) > 1 else []
    c = Command([*prefix, "trtllm-bench", "--model", "$MODEL", "throughput"],
                env=visible_devices(s.slots[0], s.gpus_per_node))
    c.add("--dataset", "$DATASET").add("--backend", "pytorch").add("--tp", tp_size).add("--pp", pp)
    if ep is not None:
        c.add("--ep", ep)
    c.add("--concurrency", concurrency).add("--num_requests", "$NUM_PROMPTS")
    c.add("--extra_llm_api_options", _config_names(dep)[s.index]).add("--streaming")
    c.add("--report_json", f"results/{name}")
    lines.append(c)
    return lines, {"tool": "trtllm-bench throughput", "result": f"results/{name}", "concurrency": concurrency,
                   "replicas_measured": 1,
                   "note": "trtllm-bench starts its own engine for one replica: stop launch.sh's servers first"}


def files(dep: Deployment) -> dict[str, str]:
    out = {}
    names = _config_names(dep)
    for s in dep.servers:
        header = (f"# extra_llm_api_options for {s.role} server(s) {s.shape.label()} on {s.hardware.name}, "
                  f"TensorRT-LLM {dep.engine.version} (keys of tensorrt_llm/llmapi/llm_args.py).\n")
        out[names[s.index]] = header + yaml.safe_dump(llm_api_options(dep, s), sort_keys=False)
    return out
