"""Writing a deployment's files: launch.sh, bench.sh, plan.json and the engine's own configs."""

from __future__ import annotations

import json
import os
from importlib import import_module
from pathlib import Path

from ..errors import ParasearchError
from .plan import Deployment, plan_json
from .script import bench_script, launch_script

ENGINES = ("vllm", "sglang", "trtllm")


def engine_module(framework: str):
    if framework not in ENGINES:
        raise ParasearchError(f"parasearch deploy writes commands for {', '.join(ENGINES)}, not '{framework}'",
                              hint="give --engine vllm, sglang or trtllm (or a profile YAML of one of them)")
    return import_module(f"{__package__}.{framework}")


def render(dep: Deployment, tool_version: str) -> dict[str, str]:
    """File name -> text of everything `deploy` writes for `dep`."""
    eng = engine_module(dep.engine.framework)
    per_node: dict[int, list] = {}
    for s in dep.servers:
        for node, cmd in eng.server_commands(dep, s).items():
            per_node.setdefault(node, []).append(cmd)
    front = eng.router(dep)
    if front:
        per_node.setdefault(0, []).extend(front)
    notes = dep.notes = dep.notes + eng.notes(dep)
    bench_body, bench_info = eng.bench(dep)
    server_args = [{flag: value for flag, value in eng.engine_args(dep, s)} for s in dep.servers]
    files = {"launch.sh": launch_script(dep, per_node, tool_version, notes),
             "bench.sh": bench_script(dep, bench_body, tool_version, [bench_info["note"]] if "note" in bench_info else []),
             **eng.files(dep)}
    plan = plan_json(dep, server_args, bench_info, tool_version)
    files["plan.json"] = json.dumps(plan, indent=2) + "\n"
    return files


def write(files: dict[str, str], out_dir: str) -> list[str]:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in files.items():
            path = out / name
            path.write_text(text)
            if name.endswith(".sh"):
                os.chmod(path, 0o755)
            written.append(str(path))
    except OSError as exc:
        raise ParasearchError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return written
