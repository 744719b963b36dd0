"""SGLang 0.5.23: `python -m sglang.launch_server`, `python -m sglang.benchmark.serving`, and
sglang-router in front of several servers or of prefill and decode servers.

How a placement maps onto SGLang (sglang/srt/arg_groups/fields/parallel.py, runtime_context.py):
- `--tp-size` is every GPU of a pipeline stage (tp * ep), `--ep-size ep` splits the experts and
  leaves tp ways inside each, exactly the plan's MoE layout; `--pp-size pp`.
- Attention data parallelism is `--attn-dp-size ep` (the older `--dp-size N --enable-dp-attention`
  still parses in 0.5.23 but is deprecated). `--max-running-requests` is the server's total:
  SGLang gives each attention-DP worker max_running_requests // attn_dp_size
  (mem_cache/kv_cache_configurator.py, resolve_max_num_reqs), i.e. the replica's batch / ep.
- `--dp-size` counts full replicas inside one server, on one node; attention-DP does not run
  inside such replicas (num_dp_ranks = dp_size x attn_dp_size with one of them 1), so
  attention-DP replicas get a server each.
- FP8 KV is `--kv-cache-dtype fp8_e4m3` (`fp8` is refused); `--cuda-graph-max-bs` is ambiguous in
  0.5.23 and is not written (the profile assumes SGLang's own graph sizes).
- Disaggregation: `--disaggregation-mode prefill|decode` (transfer backend: SGLang's default,
  mooncake) behind `python -m sglang_router.launch_router --pd-disaggregation` (sglang-router 0.3.2).
"""

from __future__ import annotations

import math

from .plan import Deployment
from .script import host, url, visible_devices
from .shell import Command
from .topology import ROUTER_PORT, Group, Server

NAME = "sglang"
TITLE = "SGLang"
CHECKED = "every flag as SGLang 0.5.23's own argument parser defines it"
DIST_INIT_PORT = 5000        # --dist-init-addr HEAD:5000 + k for server k on its head node
BOOTSTRAP_PORT = 8998        # --disaggregation-bootstrap-port of prefill server k: 8998 + k
# --mem-fraction-static: the share of GPU memory for weights and the KV pool
MEMORY_FLAG_MEANS = "static"
KV_DTYPE = {"fp8": "fp8_e4m3", "bf16": "auto"}


def per_server(g: Group, model) -> tuple[int, bool]:
    if not g.shape.attn_dp and g.shape.gpus <= g.gpus_per_node:
        return g.gpus_per_node // g.shape.gpus, False
    return 1, False


def engine_args(dep: Deployment, s: Server) -> list[tuple[str, object]]:
    sh = s.shape
    eng = dep.engine_on(s)
    moe = dep.model.is_moe
    args: list[tuple[str, object]] = [("--tp-size", sh.tp * sh.ep if moe else sh.tp), ("--pp-size", sh.pp),
                                      ("--dp-size", s.replicas)]
    if moe and sh.ep > 1:
        args.append(("--ep-size", sh.ep))
    running = s.max_batch
    if sh.attn_dp:
        args.append(("--attn-dp-size", sh.ep))
        args.append(("--moe-a2a-backend", "deepep"))  # the all-to-all the sglang profile assumes
        args.append(("--enable-two-batch-overlap", None))  # and its overlap with compute (moe.overlap_a2a)
        running = sh.ep * math.ceil(s.max_batch / sh.ep)
    args += [("--max-running-requests", running), ("--chunked-prefill-size", eng.max_num_tokens),
             ("--context-length", dep.max_model_len), ("--mem-fraction-static", dep.memory[s.index].fraction),
             ("--kv-cache-dtype", KV_DTYPE[dep.precision.kv_cache])]
    if dep.online_quantization:
        args.append(("--quantization", dep.online_quantization))
    if s.role != "aggregated":
        args.append(("--disaggregation-mode", s.role))
        if s.role == "prefill":
            args.append(("--disaggregation-bootstrap-port", BOOTSTRAP_PORT + s.on_node))
    return args


def notes(dep: Deployment) -> list[str]:
    out = []
    if dep.disaggregated:
        out.append("SGLang moves KV caches with its default transfer backend (mooncake); add "
                   "--disaggregation-ib-device for your RDMA NICs, or --disaggregation-transfer-backend nixl")
    return out


def server_commands(dep: Deployment, s: Server) -> dict[int, Command]:
    out: dict[int, Command] = {}
    for j, slot in enumerate(s.slots):
        c = Command(["python3", "-m", "sglang.launch_server"], env=visible_devices(slot, s.gpus_per_node),
                    log=f"server{s.index}-node{slot.node}.log")
        c.add("--model-path", "$MODEL").add("--host", "0.0.0.0").add("--port", s.port)
        for flag, value in engine_args(dep, s):
            c.add(flag, value)
        if len(s.slots) > 1:
            c.add("--nnodes", len(s.slots)).add("--node-rank", j)
            c.add("--dist-init-addr", f"{host(s.head)}:{DIST_INIT_PORT + s.on_node}")
        out[slot.node] = c
    return out


def router(dep: Deployment) -> list[Command]:
    """The router on node 0 in front of several servers, or of prefill and decode servers."""
    c = Command(["python3", "-m", "sglang_router.launch_router"], log="router.log")
    if dep.disaggregated:
        c.add("--pd-disaggregation")
        for s in dep.servers:
            if s.role == "prefill":
                c.add("--prefill", [url(s), str(BOOTSTRAP_PORT + s.on_node)])
            else:
                c.add("--decode", url(s))
    elif len(dep.servers) > 1:
        c.add("--worker-urls", [url(s) for s in dep.servers]).add("--policy", "round_robin")
    else:
        return []
    return [c.add("--host", "0.0.0.0").add("--port", ROUTER_PORT)]


def bench(dep: Deployment) -> tuple[list, dict]:
    """SGLang's benchmark: random token ids sent as ids (exact lengths; `random` would download
    ShareGPT), range ratio 1 for fixed lengths (SGLang samples [L x ratio, L]), EOS ignored by default."""
    name = f"sglang-c{dep.concurrency}.jsonl"
    c = Command(["python3", "-m", "sglang.benchmark.serving"])
    c.add("--backend", "sglang").add("--base-url", "http://${HOST}:%d" % ROUTER_PORT).add("--model", "$MODEL")
    c.add("--dataset-name", "random-ids").add("--tokenize-prompt").add("--random-input-len", dep.input_tokens)
    c.add("--random-output-len", dep.output_tokens).add("--random-range-ratio", 1)
    c.add("--num-prompts", "${NUM_PROMPTS}").add("--max-concurrency", dep.concurrency)
    c.add("--request-rate", f"{dep.request_rate:g}" if dep.request_rate else "inf")
    if dep.disaggregated:
        c.add("--pd-separated")
    c.add("--output-file", f"results/{name}").add("--tag", "parasearch_plan=plan.json")
    return [c], {"tool": "python -m sglang.benchmark.serving", "result": f"results/{name}",
                 "concurrency": dep.concurrency, "replicas_measured": "all"}


def files(dep: Deployment) -> dict[str, str]:
    return {}
