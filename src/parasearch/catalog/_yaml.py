"""YAML loading with YAML 1.2 numbers and a line number for every key.

PyYAML follows YAML 1.1, where `3.35e12` (no dot, no sign in the exponent) is a string;
catalog files are written by people who expect a number, so the resolver is widened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError

MAX_YAML_BYTES = 1_000_000

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    pass


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


def _construct(loader: _Loader, node: yaml.Node, path: tuple, lines: dict, file: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain names", file=file,
                                line=key_node.start_mark.line + 1)
            if key in out:
                raise SpecError(f"duplicate key '{key}'", file=file, line=key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(loader, value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def loads(text: str, file: str = "<string>") -> Located:
    """Parse YAML text; any syntax error becomes a SpecError with its line."""
    if len(text.encode("utf-8", "replace")) > MAX_YAML_BYTES:
        raise SpecError(f"file is too large (over {MAX_YAML_BYTES:,} bytes); a problem file is a few dozen lines",
                        file=file)
    if "\x00" in text:
        raise SpecError("not a text file (contains NUL bytes)", file=file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {}, file)
        lines: dict[tuple, int] = {}
        data = _construct(loader, node, (), lines, file)
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
        loader.dispose()
    return Located(data, lines, file)


def load(path: str | Path) -> Located:
    """Read and parse a YAML file, turning I/O and decoding problems into SpecErrors."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise SpecError("no such file", file=name, hint="check the path")
    if p.is_dir():
        raise SpecError("is a directory, expected a YAML file", file=name)
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SpecError(f"file is too large ({size:,} bytes; the limit is {MAX_YAML_BYTES:,})", file=name)
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a text file (not UTF-8)", file=name) from None
    return loads(text, name)
