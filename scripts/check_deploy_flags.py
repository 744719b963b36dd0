"""Feed every command `parasearch deploy` wrote to the engine's own argument parser.

Local check, not a test (the engines are never parasearch dependencies). Write deployments with
parasearch's environment, then run this with a Python that has vllm and sglang installed:

    parasearch deploy problems/llama-3.1-70b-fp8-h200.yaml --engine vllm --out /tmp/dep/llama-vllm
    VLLM_TARGET_DEVICE=cpu /path/to/engines/bin/python scripts/check_deploy_flags.py /tmp/dep/*

Shell expansions are replaced by sample values ($MODEL, ${NODE[k]}, $(...)), then each
`vllm serve`, `vllm bench serve`, `sglang.launch_server` and `sglang.benchmark.serving` line is
parsed by the parser that command builds; a refused flag or value, or a deprecation warning the
parser prints, is reported. Exit status 1 when anything was refused.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("deploy_shell", ROOT / "src" / "parasearch" / "deploy" / "shell.py")
shell = importlib.util.module_from_spec(_spec)
sys.modules["deploy_shell"] = shell
_spec.loader.exec_module(shell)
sys.path.insert(0, str(ROOT / "scripts"))
import dump_engine_flags as D  # noqa: E402

SAMPLES = ((re.compile(r"\$\{NODE\[\d+\]\}"), "10.0.0.1"), (re.compile(r"\$\(.*\)"), "0.0.0"),
           (re.compile(r"\$\{?MODEL\}?"), "org/model"), (re.compile(r"\$\{?HOST\}?"), "10.0.0.1"),
           (re.compile(r"\$\{?NUM_PROMPTS\}?"), "100"), (re.compile(r"\$\{?DATASET\}?"), "d.jsonl"))


def concrete(arg: str) -> str:
    for rx, value in SAMPLES:
        arg = rx.sub(value, arg)
    return arg


def parsers() -> dict:
    return {("vllm", "serve"): D.vllm_serve_parser(), ("vllm", "bench", "serve"): D.vllm_bench_serve_parser(),
            ("python3", "-m", "sglang.launch_server"): D.sglang_launch_server_parser(),
            ("python3", "-m", "sglang.benchmark.serving"): D.sglang_bench_serving_parser()}


def check(folder: Path, table: dict) -> int:
    bad = 0
    for script in ("launch.sh", "bench.sh"):
        path = folder / script
        if not path.exists():
            continue
        for argv in shell.commands(path.read_text()):
            for program, parser in table.items():
                rest = shell.invocation(argv, list(program))
                if rest is None:
                    continue
                args = [concrete(a) for a in rest]
                out, errs = io.StringIO(), io.StringIO()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errs):
                        parser.parse_args(args)
                    status = "ok"
                except SystemExit:
                    status, bad = "REFUSED", bad + 1
                warn = [w for w in (errs.getvalue() + out.getvalue()).splitlines() if "deprecat" in w.lower()]
                if warn and status == "ok":
                    status, bad = "DEPRECATED", bad + 1
                detail = (errs.getvalue().strip().splitlines() or [""])[-1] if status != "ok" else ""
                print(f"{status:10} {folder.name}/{script}: {' '.join(program)} ({len(args)} args) {detail}")
    return bad


def main(folders: list[str]) -> int:
    table = parsers()
    bad = sum(check(Path(f), table) for f in folders)
    print(f"{bad} command(s) refused or deprecated" if bad else "every command parsed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
