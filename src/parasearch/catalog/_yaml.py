"""YAML loading with YAML 1.2 numbers and a line number for every key.

PyYAML follows YAML 1.1, where `3.35e12` (no dot, no sign in the exponent) is a string;
catalog files are written by people who expect a number, so the resolver is widened.

Input is bounded: PyYAML expands aliases without limit (ten nested aliases of ten items each are
ten billion values), so the tree is built here with a cap on the values it may hold after
expansion and on its depth; keys must be plain scalars; control characters are refused in values
(they would reach the terminal in messages and tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import files
from ..errors import SpecError

MAX_YAML_BYTES = 1_000_000
MAX_VALUES = 5_000  # composed or after alias expansion; the largest catalog file holds about a hundred
MAX_DEPTH = 32
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """Counts the nodes it composes (aliases included) and stops past the cap, so a file of a
    million tiny values fails in milliseconds instead of parsing for a minute."""

    composed = 0

    def compose_node(self, parent, index):
        self.composed += 1
        if self.composed > MAX_VALUES:
            mark = self.peek_event().start_mark
            raise SpecError(f"more than {MAX_VALUES:,} values (a problem or catalog file holds a few dozen)",
                            line=mark.line + 1)
        return super().compose_node(parent, index)


# Replace the YAML 1.1 float resolver with one that also reads 1e9 and 3.35e12.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


@dataclass
class Located:
    """A parsed document plus the line (1-based) of every mapping key and sequence item."""

    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    file: str = "<string>"

    def line_of(self, path: tuple) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


class _Budget:
    def __init__(self) -> None:
        self.values = 0


def _construct(loader: _Loader, node: yaml.Node, path: tuple, lines: dict, file: str, budget: _Budget) -> Any:
    budget.values += 1
    line = node.start_mark.line + 1
    if budget.values > MAX_VALUES:
        raise SpecError(f"more than {MAX_VALUES:,} values once aliases are expanded (an alias bomb?)",
                        file=file, line=line)
    if len(path) > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file, line=line)
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain names", file=file, line=key_line)
            key = _scalar(loader, key_node, file)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain names", file=file, line=key_line)
            if key in out:
                raise SpecError(f"duplicate key '{key}'", file=file, line=key_line)
            lines[path + (key,)] = key_line
            out[key] = _construct(loader, value_node, path + (key,), lines, file, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), lines, file, budget) for i, item in enumerate(node.value)]
    return _scalar(loader, node, file)


def _scalar(loader: _Loader, node: yaml.Node, file: str) -> Any:
    line = node.start_mark.line + 1
    try:
        value = loader.construct_object(node, deep=True)
    except ValueError:  # int() of thousands of digits, a date out of range
        raise SpecError(f"the value {str(node.value)[:24]}... cannot be read (a number that long is a typo)",
                        file=file, line=line) from None
    if isinstance(value, str) and _CONTROL.search(value):
        ch = _CONTROL.search(value).group()
        raise SpecError(f"control character U+{ord(ch):04X} in a value", file=file, line=line)
    return value


_QUOTED_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\n]|\'\')*\'|(?:^|(?<=\s))#[^\n]*', re.M)


def _flow_depth_check(text: str, file: str) -> None:
    """PyYAML's scanner is quadratic in the nesting of [ and {: a file of brackets takes seconds
    before it fails. Count them first (outside quotes and comments)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for m in re.finditer(r"[\[\]{}]", _QUOTED_OR_COMMENT.sub(lambda q: " " * len(q.group()), text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file,
                            line=text.count("\n", 0, m.start()) + 1)


def loads(text: str, file: str = "<string>") -> Located:
    """Parse YAML text; any syntax error becomes a SpecError with its line."""
    if len(text.encode("utf-8", "replace")) > MAX_YAML_BYTES:
        raise SpecError(f"file is too large (over {MAX_YAML_BYTES:,} bytes); a problem file is a few dozen lines",
                        file=file)
    if "\x00" in text:
        raise SpecError("not a text file (contains NUL bytes)", file=file)
    _flow_depth_check(text, file)
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses non-printable characters here already
        node = loader.get_single_node()
        if node is None:
            return Located(None, {}, file)
        lines: dict[tuple, int] = {}
        data = _construct(loader, node, (), lines, file, _Budget())
    except SpecError as exc:
        if exc.file is None:
            exc.file = file
        raise
    except yaml.reader.ReaderError as exc:
        line = text[:max(exc.position, 0)].count("\n") + 1
        ch = exc.character
        code = ord(ch) if isinstance(ch, str) and len(ch) == 1 else ch
        raise SpecError(f"not valid YAML: control or non-printable character U+{code:04X}", file=file,
                        line=line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "stream end" in str(exc.problem):
            mark = exc.context_mark  # an unclosed bracket: point at where it opened
        line = mark.line + 1 if mark else None
        raise SpecError(f"not valid YAML: {exc.problem or exc}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=file) from None
    except RecursionError:
        raise SpecError("not valid YAML: nesting too deep", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(data, lines, file)


def load(path: str | Path) -> Located:
    """Read and parse a YAML file, turning I/O and decoding problems into SpecErrors."""
    text = files.read_text(path, limit=MAX_YAML_BYTES, what="a YAML file")
    return loads(text, files.short(str(path)))
