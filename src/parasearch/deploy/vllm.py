"""vLLM 0.33: `vllm serve`, `vllm bench serve`, and vllm-router in front of several servers.

How a placement maps onto vLLM (vllm/config/parallel.py, vllm/engine/arg_utils.py of 0.33.0):
- `--data-parallel-size` ranks of a dense model are independent replicas behind vLLM's own load
  balancer, so one server holds all the replicas, across nodes with `--data-parallel-size-local`,
  `--data-parallel-address` and `--headless --data-parallel-start-rank` on the other nodes.
- A MoE model's data-parallel ranks run the experts together (EP or TP over TP x DP), so they are
  attention data parallelism: an attention-DP replica is `--data-parallel-size ep
  --tensor-parallel-size tp --enable-expert-parallel`, one server per replica; a replica without
  attention-DP is `--tensor-parallel-size tp*ep`.
- With `--enable-expert-parallel` vLLM's EP size is TP x DP and each expert stays whole: exactly
  the plan when tp is 1; with tp > 1 the experts are split tp*ep ways instead (said in a note).
- `--max-num-seqs` caps each data-parallel rank: the replica's batch / ep under attention-DP.
- A replica larger than a node: `--nnodes --node-rank --master-addr`, `--headless` on the others.
- vLLM has no router of its own: several servers, or prefill and decode servers (NixlConnector
  through `--kv-transfer-config`), sit behind vllm-router (`pip install vllm-router`, 0.1.17).
"""

from __future__ import annotations

import json
import math

from ..cost.serving import engine_budget

from ..errors import ParasearchError
from .plan import Deployment
from .script import host, url, visible_devices
from .shell import Command
from .topology import ROUTER_PORT, Group, Server

NAME = "vllm"
TITLE = "vLLM"
CHECKED = "every flag as vLLM 0.33.0's own argument parser defines it"
DP_RPC_PORT = 13345          # --data-parallel-rpc-port of server k on its head node: 13345 + k
MASTER_PORT = 29501          # --master-port (multi-node replica): 29501 + k
NIXL_SIDE_CHANNEL = 5600     # VLLM_NIXL_SIDE_CHANNEL_PORT of server k: 5600 + 100 k (its ranks add their index;
                             # unique over the deployment, as a server's ranks may share a node with another's)
# --gpu-memory-utilization: a share of all GPU memory for everything vLLM allocates
MEMORY_FLAG_MEANS = "total"
KV_DTYPE = {"fp8": "fp8", "bf16": "auto"}


def per_server(g: Group, model) -> tuple[int, bool]:
    if not model.is_moe and g.shape.gpus <= g.gpus_per_node:
        return g.replicas, True
    return 1, False


def _degrees(dep: Deployment, s: Server) -> tuple[int, int, int]:
    """(tensor, pipeline, data) parallel sizes of server `s`."""
    sh = s.shape
    if sh.attn_dp:
        return sh.tp, sh.pp, sh.ep
    tp = sh.tp * sh.ep if dep.model.is_moe else sh.tp
    return tp, sh.pp, s.replicas


def engine_args(dep: Deployment, s: Server) -> list[tuple[str, object]]:
    tp, pp, dp = _degrees(dep, s)
    eng = dep.engine_on(s)
    ranks = s.shape.ep if s.shape.attn_dp else 1
    args: list[tuple[str, object]] = [("--tensor-parallel-size", tp), ("--pipeline-parallel-size", pp),
                                      ("--data-parallel-size", dp)]
    if dep.model.is_moe and s.shape.ep > 1:
        args.append(("--enable-expert-parallel", None))
    if s.shape.attn_dp:  # DeepEP all-to-all, which the vllm profile's MoE dispatch assumes
        args.append(("--all2all-backend", "deepep_high_throughput"))
        args.append(("--enable-dbo", None))  # dual-batch overlap, which the profile's moe.overlap_a2a assumes
    seqs = math.ceil(s.max_batch / ranks)
    args += [("--max-num-seqs", seqs), ("--max-num-batched-tokens", engine_budget(eng, pp, seqs)),
             ("--max-model-len", dep.max_model_len), ("--gpu-memory-utilization", dep.memory[s.index].fraction),
             ("--kv-cache-dtype", KV_DTYPE[dep.precision.kv_cache])]
    if dep.online_quantization:
        args.append(("--quantization", dep.online_quantization))
    if s.role != "aggregated":
        args.append(("--kv-transfer-config", json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"},
                                                         separators=(",", ":"))))
    return args


def notes(dep: Deployment) -> list[str]:
    out = []
    if dep.model.is_moe and any(s.shape.tp > 1 and s.shape.ep > 1 for s in dep.servers):
        out.append("vLLM's expert parallelism spans TP x DP with whole experts; the plan splits each expert "
                   "tp ways, so the engine's expert layout differs from the oracle's")
    return out


def server_commands(dep: Deployment, s: Server) -> dict[int, Command]:
    tp, pp, dp = _degrees(dep, s)
    world = tp * pp
    out: dict[int, Command] = {}
    for j, slot in enumerate(s.slots):
        c = Command(["vllm", "serve", "$MODEL"], env=visible_devices(slot, s.gpus_per_node),
                    log=f"server{s.index}-node{slot.node}.log")
        if s.role != "aggregated":
            c.env["VLLM_NIXL_SIDE_CHANNEL_PORT"] = str(NIXL_SIDE_CHANNEL + 100 * s.index)
        if j == 0:
            c.add("--host", "0.0.0.0").add("--port", s.port)
        for flag, value in engine_args(dep, s):
            c.add(flag, value)
        if len(s.slots) > 1:
            if world > s.gpus_per_node:
                if dp > 1:
                    raise ParasearchError(f"vLLM: data-parallel ranks of {world} GPUs span nodes; deploy does not "
                                          "write that layout (use --pick for another row)")
                c.add("--nnodes", len(s.slots)).add("--node-rank", j).add("--master-addr", host(s.head))
                c.add("--master-port", MASTER_PORT + s.on_node)
            else:
                start = sum(int(sl.gpus // world) for sl in s.slots[:j])
                c.add("--data-parallel-size-local", slot.gpus // world)
                if j:
                    c.add("--data-parallel-start-rank", start)
                c.add("--data-parallel-address", host(s.head)).add("--data-parallel-rpc-port", DP_RPC_PORT + s.on_node)
            if j:
                c.add("--headless")
        out[slot.node] = c
    return out


def router(dep: Deployment) -> list[Command]:
    """The router on node 0 in front of several servers, or of prefill and decode servers."""
    servers = dep.servers
    c = Command(["python3", "-m", "vllm_router.launch_router"], log="router.log")
    if dep.disaggregated:
        c.add("--vllm-pd-disaggregation")
        for s in servers:
            c.add("--prefill" if s.role == "prefill" else "--decode", url(s))
    elif len(servers) > 1:
        c.add("--worker-urls", [url(s) for s in servers]).add("--policy", "round_robin")
    else:
        return []
    return [c.add("--host", "0.0.0.0").add("--port", ROUTER_PORT)]


def bench_command(dep: Deployment, result_file: str, backend: str = "vllm",
                  version: str = "$(vllm --version 2>/dev/null || echo unknown)") -> Command:
    """`vllm bench serve` at the plan's load: fixed lengths (range ratio 0 samples [L, L]), EOS
    ignored; the result JSON carries the plan's name and the engine's version as metadata."""
    c = Command(["vllm", "bench", "serve"])
    c.add("--backend", backend).add("--base-url", "http://${HOST}:%d" % ROUTER_PORT).add("--model", "$MODEL")
    c.add("--dataset-name", "random").add("--random-input-len", dep.input_tokens)
    c.add("--random-output-len", dep.output_tokens).add("--random-range-ratio", 0).add("--ignore-eos")
    c.add("--num-prompts", "${NUM_PROMPTS}").add("--max-concurrency", dep.concurrency)
    c.add("--request-rate", f"{dep.request_rate:g}" if dep.request_rate else "inf")
    c.add("--save-result").add("--result-dir", "results").add("--result-filename", result_file)
    return c.add("--metadata", ["parasearch_plan=plan.json", f"engine={dep.engine.framework}",
                                f"engine_version={version}"])


def bench(dep: Deployment) -> tuple[list, dict]:
    name = f"vllm-c{dep.concurrency}.json"
    return [bench_command(dep, name)], {"tool": "vllm bench serve", "result": f"results/{name}",
                                        "concurrency": dep.concurrency, "replicas_measured": "all"}


def files(dep: Deployment) -> dict[str, str]:
    return {}
