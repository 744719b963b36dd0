"""Commands as data, written as bash: one flag per line, values quoted for the shell.

A value that holds a shell expansion we write ourselves (`$MODEL`, `${NODE[1]}`) is put in
double quotes so the shell expands it; anything else is quoted literally. `commands()` reads the
commands back out of a script (tests and scripts/check_deploy_flags.py feed them to parsers).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

Value = str | list[str] | None


@dataclass
class Command:
    program: list[str]                                      # e.g. ["vllm", "serve", "$MODEL"]
    args: list[tuple[str, Value]] = field(default_factory=list)  # (flag, value); None: a switch
    env: dict[str, str] = field(default_factory=dict)
    log: str | None = None                                  # run in the background, output to logs/<log>

    def add(self, flag: str, value=None) -> "Command":
        if isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif value is not None and not isinstance(value, str):
            value = f"{value:g}" if isinstance(value, float) else str(value)
        self.args.append((flag, value))
        return self

    def flags(self) -> dict[str, Value]:
        return dict(self.args)

    def render(self, indent: str = "") -> str:
        head = [*(f"{k}={word(v)}" for k, v in self.env.items()), *map(word, self.program)]
        if self.log:
            head = ["run", self.log, *(["env"] if self.env else []), *head]
        lines = [indent + " ".join(head)]
        for flag, value in self.args:
            vals = [] if value is None else value if isinstance(value, list) else [value]
            lines.append(indent + "    " + " ".join([flag, *map(word, vals)]))
        return " \\\n".join(lines)


def word(text: str) -> str:
    text = str(text)
    if "$" in text:
        return '"' + text.replace('"', '\\"') + '"'
    return shlex.quote(text)


def commands(script: str) -> list[list[str]]:
    """Every command line of a script, continuation lines joined, split as the shell would
    (expansions left as written); comments and blank lines dropped."""
    out, buf = [], ""
    for line in script.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        try:
            out.append(shlex.split(buf))
        except ValueError:
            out.append(buf.split())
        buf = ""
    return out


def invocation(argv: list[str], program: list[str]) -> list[str] | None:
    """The arguments after `program` in a command line (through `run LOG env K=V ...` wrappers),
    or None when the line does not run it."""
    n = len(program)
    for i in range(len(argv) - n + 1):
        if argv[i:i + n] == program:
            return argv[i + n:]
    return None
