"""Reading the user's files within bounds: regular files only, size checked before reading.

A FIFO blocks `open()` forever, `/dev/zero` and `/dev/urandom` never end, a directory or an
over-long name raises where a caller expected "no such file". Every reader of user input goes
through `read_text`, which opens without blocking, checks what it opened (`fstat`, so the file
cannot be swapped between the check and the read) and reads at most the limit.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import SpecError

MAX_NAME_CHARS = 4096  # PATH_MAX on Linux: a longer string cannot name a file


def short(name: str) -> str:
    """A file name fit for a one-line message."""
    return name if len(name) <= 160 else f"{name[:100]}...{name[-40:]}"


def probe(path: str | Path) -> str:
    """What `path` is without following it into a read: "file", "dir", "other" (FIFO, device,
    socket), "missing", or "bad" (a name the OS cannot take: NUL byte, too long)."""
    text = str(path)
    if "\x00" in text or len(text) > MAX_NAME_CHARS:
        return "bad"
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return "missing" if exc.errno == errno.ENOTDIR else "bad"
    except ValueError:
        return "bad"
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def exists(path: str | Path) -> bool:
    return probe(path) in ("file", "dir", "other")


def _refusal(kind: str, what: str) -> str:
    return {"missing": "no such file", "dir": f"is a directory, expected {what}",
            "other": f"not a regular file (a pipe or device?), expected {what}",
            "bad": "not a usable file name (too long, or holds a NUL byte)"}[kind]


def read_bytes(path: str | Path, *, limit: int, what: str = "a file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a SpecError."""
    name = str(path)
    kind = probe(name)
    name = short(name)
    if kind != "file":
        raise SpecError(_refusal(kind, what), file=name, hint="check the path" if kind == "missing" else None)
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the check and the open
            raise SpecError(_refusal("other", what), file=name)
        if st.st_size > limit:
            raise SpecError(f"file is too large ({st.st_size:,} bytes; the limit for {what} is {limit:,})", file=name)
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=name) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while we read it
        raise SpecError(f"file is too large (over {limit:,} bytes, the limit for {what})", file=name)
    return data


def read_text(path: str | Path, *, limit: int, what: str = "a text file") -> str:
    """UTF-8 text (a byte-order mark is dropped) of a regular file of at most `limit` bytes."""
    raw = read_bytes(path, limit=limit, what=what)
    if b"\x00" in raw:
        raise SpecError("not a text file (contains NUL bytes)", file=short(str(path)))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("not a text file (not UTF-8)", file=short(str(path))) from None


MAX_JSON_DIGITS = 40  # no count or measurement needs more digits; Python refuses over 4,300 anyway


def parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError(f"an integer of {len(text):,} digits")
    return int(text)


def parse_json(text: str, file: str, what: str = "JSON") -> Any:
    """JSON with every failure as a SpecError: syntax (with its line), nesting, absurd integers."""
    try:
        return json.loads(text, parse_int=parse_int)
    except json.JSONDecodeError as exc:
        raise SpecError(f"malformed {what}: {exc.msg}", file=file, line=exc.lineno) from None
    except RecursionError:
        raise SpecError(f"malformed {what}: nested too deeply", file=file) from None
    except ValueError as exc:
        raise SpecError(f"malformed {what}: {exc}", file=file) from None
