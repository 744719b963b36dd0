"""Test helpers: the engines' accepted options (tests/deploy/data, generated from the engines'
own parsers or read from their sources) and the commands of a deployment's scripts."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from parasearch.deploy.shell import commands, invocation

DATA = Path(__file__).parent / "data"


@lru_cache(maxsize=None)
def table(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def options(command: str) -> dict:
    """Accepted options of one command: {option string: {"takes_value", "choices", ...}}."""
    for name in ("vllm-0.33.0-flags.json", "sglang-0.5.23-flags.json", "trtllm-1.2-options.json"):
        cmds = table(name)["commands"]
        if command in cmds:
            return cmds[command]
    routers = table("routers-flags.json")["commands"]
    return {k: {"takes_value": True, "choices": v["choices"]} for k, v in routers[command]["options"].items()} \
        | {k: {"takes_value": False, "choices": None} for k, v in routers[command]["options"].items()
           if v["default"] == "False"}


def parse(args: list[str]) -> list[tuple[str, list[str]]]:
    """[(flag, values)] of a command's arguments (a value never starts with --)."""
    out: list[tuple[str, list[str]]] = []
    for a in args:
        if a.startswith("-") and not a.lstrip("-").replace(".", "").isdigit():
            out.append((a, []))
        elif out:
            out[-1][1].append(a)
    return out


def invocations(script: str, program: list[str]) -> list[list[tuple[str, list[str]]]]:
    """The parsed arguments of every line of `script` that runs `program` (its words, positional
    arguments included: ["vllm", "serve", "$MODEL"])."""
    found = []
    for argv in commands(script):
        rest = invocation(argv, program)
        if rest is not None:
            found.append(parse(rest))
    return found


def check_flags(args: list[tuple[str, list[str]]], command: str) -> list[str]:
    """Problems with `args` against `command`'s accepted options: unknown flags, values given to a
    switch or missing, values outside the choices, deprecated spellings."""
    opts = options(command)
    bad = []
    for flag, values in args:
        spec = opts.get(flag)
        if spec is None:
            bad.append(f"{command}: unknown {flag}")
            continue
        if spec.get("deprecated"):
            bad.append(f"{command}: deprecated {flag}")
        if spec["takes_value"] and not values:
            bad.append(f"{command}: {flag} without a value")
        if not spec["takes_value"] and values:
            bad.append(f"{command}: switch {flag} given {values}")
        if spec.get("choices") and any(v not in spec["choices"] and "$" not in v for v in values):
            bad.append(f"{command}: {flag} {values} not in {spec['choices']}")
    return bad


def flag_dict(args: list[tuple[str, list[str]]]) -> dict:
    return {f: (v[0] if len(v) == 1 else v or None) for f, v in args}
