"""Dump the command-line options the engines themselves define, as the JSON test data that
tests/deploy checks every generated flag against.

Run it with a Python that has the engines installed (never a parasearch dependency):

    VLLM_TARGET_DEVICE=cpu /path/to/venv/bin/python scripts/dump_engine_flags.py tests/deploy/data

It builds each parser the way the engine's own entry point does and records, for every option
string, whether it takes a value and its choices:
- `vllm serve`: vllm.entrypoints.common.cli_args.make_arg_parser (what `vllm serve` uses);
- `vllm bench serve`: vllm.benchmarks.serve.add_cli_args;
- `python -m sglang.launch_server`: ServerArgs.add_cli_args;
- `python -m sglang.benchmark.serving`: its cli_main parser, with parse_args intercepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def options(parser: argparse.ArgumentParser) -> dict:
    out = {}
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        takes_value = action.nargs != 0
        choices = sorted(map(str, action.choices)) if action.choices else None
        for s in action.option_strings:
            out[s] = {"dest": action.dest, "takes_value": takes_value, "choices": choices,
                      "nargs": action.nargs if isinstance(action.nargs, (int, str)) else None,
                      "deprecated": "Deprecated" in type(action).__name__ or bool(getattr(action, "deprecated", False))}
    return dict(sorted(out.items()))


def vllm_serve_parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.common.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


def vllm_bench_serve_parser() -> argparse.ArgumentParser:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    p = FlexibleArgumentParser()
    add_cli_args(p)
    return p


def sglang_launch_server_parser() -> argparse.ArgumentParser:
    from sglang.srt.server_args import ServerArgs

    p = argparse.ArgumentParser()
    ServerArgs.add_cli_args(p)
    return p


class _Captured(Exception):
    pass


def _stub_missing(*names: str) -> None:
    """Optional dataset libraries the benchmark imports at module level but its parser does not
    need (`datasets`, `gguf`: absent from a --no-deps install) become empty modules."""
    import importlib.util
    import types
    from unittest.mock import MagicMock

    class Stub(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return MagicMock(name=f"{self.__name__}.{name}")

    for name in names:
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = Stub(name)


def sglang_bench_serving_parser() -> argparse.ArgumentParser:
    """The parser `python -m sglang.benchmark.serving` builds (caught as it is about to parse)."""
    _stub_missing("datasets", "gguf")
    import sglang.benchmark.serving as serving

    seen = {}

    def capture(self, args=None, namespace=None):
        seen["parser"] = self
        raise _Captured

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        old_argv, sys.argv = sys.argv, ["sglang.benchmark.serving"]
        serving.cli_main()
    except _Captured:
        pass
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv = old_argv
    return seen["parser"]


def _one_option_a_line(doc: dict) -> str:
    """JSON with one line per option, so a regenerated table diffs by option."""
    head = {k: v for k, v in doc.items() if k != "commands"}
    lines = ["{" + json.dumps(head)[1:-1] + ', "commands": {']
    for i, (name, opts) in enumerate(doc["commands"].items()):
        lines.append(f" {json.dumps(name)}: {{")
        items = list(opts.items())
        lines += [f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if j < len(items) - 1 else "") for j, (k, v) in enumerate(items)]
        lines.append(" }" + ("," if i < len(doc["commands"]) - 1 else ""))
    return "\n".join(lines + ["}}"]) + "\n"


def main(out_dir: str) -> None:
    import sglang
    import vllm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for engine, version, commands in (
        ("vllm", vllm.__version__, {"vllm serve": vllm_serve_parser, "vllm bench serve": vllm_bench_serve_parser}),
        ("sglang", sglang.__version__, {"sglang.launch_server": sglang_launch_server_parser,
                                        "sglang.benchmark.serving": sglang_bench_serving_parser}),
    ):
        doc = {"engine": engine, "version": version,
               "generated_by": "scripts/dump_engine_flags.py from the installed packages' own parsers",
               "commands": {name: options(fn()) for name, fn in commands.items()}}
        path = out / f"{engine}-{version}-flags.json"
        path.write_text(_one_option_a_line(doc))
        print(f"wrote {path}: " + ", ".join(f"{k} {len(v)} options" for k, v in doc["commands"].items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/deploy/data")
