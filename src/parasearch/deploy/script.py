"""launch.sh and bench.sh around the engines' commands.

launch.sh takes the node's rank (`NODES="host0 host1" ./launch.sh 1`) and starts what runs on
that node, each process in the background with its output in logs/; node addresses come from
NODES, in the order the header lists the nodes. bench.sh runs from any machine that reaches
node 0 and saves its results under results/, next to plan.json.
"""

from __future__ import annotations

from .plan import Deployment
from .shell import Command, word
from .topology import Server, Slot


def host(node: int) -> str:
    return "${NODE[%d]}" % node


def url(server: Server, scheme: str = "http://") -> str:
    return f"{scheme}{host(server.head)}:{server.port}"


def visible_devices(slot: Slot, gpus_per_node: int) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for a server that shares its node; nothing when it has the node."""
    if slot.first_gpu == 0 and slot.gpus == gpus_per_node:
        return {}
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in range(slot.first_gpu, slot.first_gpu + slot.gpus))}


def _prelude(dep: Deployment) -> list[str]:
    return [
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        f"MODEL={word('${MODEL:-' + dep.checkpoint + '}')}",
        'read -r -a NODE <<< "${NODES:-localhost}"',
    ]


def _header(dep: Deployment, what: str, tool_version: str) -> list[str]:
    from .write import engine_module

    e = dep.engine
    lines = ["#!/usr/bin/env bash",
             f"# {what}: written by `parasearch deploy` (parasearch {tool_version}) for {e.framework} {e.version}",
             f"# (engine profile '{e.name}'): {engine_module(e.framework).CHECKED}.",
             f"# Problem {dep.problem.name}: {dep.model.name}, {dep.precision.weights} weights, "
             f"{dep.precision.kv_cache} KV, {dep.input_tokens} in / {dep.output_tokens} out tokens."]
    for s in dep.servers:
        where = ", ".join(f"node {sl.node}" + (f" GPUs {sl.first_gpu}-{sl.first_gpu + sl.gpus - 1}"
                                               if sl.gpus != s.gpus_per_node else "") for sl in s.slots)
        lines.append(f"# server {s.index}: {s.role} {s.shape.label(s.replicas)} on {s.hardware.name} ({where}), "
                     f"port {s.port}")
    return lines


def launch_script(dep: Deployment, per_node: dict[int, list[Command | str]], tool_version: str,
                  notes: list[str]) -> str:
    lines = _header(dep, "launch.sh", tool_version)
    lines.append("# Nodes, in the order NODES lists their addresses:")
    for i, n in enumerate(dep.nodes):
        lines.append(f"#   {i}: pool {n.pool} ({n.hardware}) node {n.index_in_pool}, {n.gpus} GPUs")
    used = sorted(per_node)
    usage = "./launch.sh" if len(dep.nodes) == 1 else f'NODES="host0 ... host{len(dep.nodes) - 1}" ./launch.sh RANK'
    lines.append(f"# Run on each node with its rank: {usage}")
    lines += [f"# Note: {n}" for n in notes]
    lines += _prelude(dep)
    if len(dep.nodes) > 1:
        lines.append(f'if (( ${{#NODE[@]}} < {len(dep.nodes)} )); then echo "launch.sh: set NODES to the '
                     f'{len(dep.nodes)} node addresses, in order" >&2; exit 2; fi')
    lines += ['RANK="${1:-0}"', "mkdir -p logs",
              'run() { local log="$1"; shift; echo "launch.sh: starting $1 ... (logs/$log)"; '
              '"$@" > "logs/$log" 2>&1 & }',
              'case "$RANK" in']
    for node in used:
        lines.append(f"  {node})")
        for c in per_node[node]:
            # a heredoc (several lines) stays unindented, or its terminator would not be seen
            lines.append(c.render("    ") if isinstance(c, Command) else c if "\n" in c else "    " + c)
        lines.append("    ;;")
    lines += [f'  *) echo "launch.sh: no process runs on node $RANK (this deployment uses nodes '
              f'{", ".join(map(str, used))})" >&2; exit 2 ;;', "esac", "wait"]
    return "\n".join(lines) + "\n"


def bench_script(dep: Deployment, body: list[Command | str], tool_version: str, notes: list[str]) -> str:
    lines = _header(dep, "bench.sh", tool_version)
    lines.append(f"# Load: {dep.concurrency} requests in flight, {dep.input_tokens} in / {dep.output_tokens} out "
                 f"tokens each (fixed); results go to results/, next to plan.json, for `parasearch validate`.")
    lines += [f"# Note: {n}" for n in notes]
    lines += _prelude(dep)
    lines += ['HOST="${HOST:-${NODE[0]}}"', f'NUM_PROMPTS="${{NUM_PROMPTS:-{dep.num_prompts}}}"', "mkdir -p results"]
    for c in body:
        lines.append(c.render() if isinstance(c, Command) else c)
    return "\n".join(lines) + "\n"
