"""Request traces: arrival times with input and output token counts, read from the public formats.

Formats (recognised by their first line, whatever the file is called):

- Azure LLM inference traces (Azure/AzurePublicDataset, 2023 code and conversation, 2024 week-long):
  CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, timestamps as ISO dates.
- BurstGPT (HPMLL/BurstGPT): CSV `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`,
  timestamps in seconds. Rows with 0 response tokens are failed requests and are dropped (counted).
- The JSONL that `vllm bench serve --dataset-name timed_trace` replays (Mooncake's trace schema): one
  object per line with `timestamp`, `input_length`, `output_length` (`hash_ids` and anything else are
  ignored). vLLM multiplies timestamps by `--timed-trace-sec-multiplier` (default 1, seconds; Mooncake's
  traces are in milliseconds and need 0.001): `time_scale` here is that multiplier.

vLLM's `custom` dataset (`{"prompt": "..."}` lines) carries text, not token counts, so it cannot be
read without the model's tokenizer: such a file is refused with a message saying so.

Reading is bounded: regular files only, at most MAX_TRACE_BYTES and MAX_TRACE_ROWS, and every bad
row is reported as `file:line: column: what is wrong`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import SpecError

MAX_TRACE_BYTES = 512 * 1024 * 1024   # BurstGPT's largest release file is about 190 MB
MAX_TRACE_ROWS = 10_000_000
MAX_TOKENS = 10_000_000               # per request; larger counts are corrupt rows

FORMATS = ("azure", "burstgpt", "vllm-jsonl")


@dataclass(frozen=True)
class Trace:
    arrival_s: np.ndarray      # seconds since the first request, ascending
    input_tokens: np.ndarray   # prompt tokens per request (int64)
    output_tokens: np.ndarray  # generated tokens per request (int64)
    source: str = ""
    format: str = ""
    dropped: int = 0           # rows skipped as failed requests (no output)

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) else 0.0

    @property
    def mean_rate(self) -> float:
        """Requests per second: (n - 1) arrivals over the span between the first and the last."""
        return (len(self) - 1) / self.duration_s if self.duration_s > 0 else math.inf

    def at_rate(self, rate: float) -> "Trace":
        """The same requests with time compressed or stretched to a mean rate of `rate` req/s."""
        return replace(self, arrival_s=self.arrival_s * (self.mean_rate / rate))


def _open_text(path: str | Path) -> tuple[str, io.TextIOBase]:
    name = str(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise SpecError("no such file", file=name, hint="check the path") from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=name) from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError("not a regular file; a trace is a CSV or JSONL file", file=name)
    if st.st_size > MAX_TRACE_BYTES:
        raise SpecError(f"file is too large ({st.st_size:,} bytes; the limit is {MAX_TRACE_BYTES:,})", file=name,
                        hint="cut a window of the trace")
    if st.st_size == 0:
        raise SpecError("the file is empty", file=name)
    try:
        f = open(name, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=name) from None
    return name, f


def _tokens(value: str | float | int, name: str, line: int, column: str, *, allow_zero: bool) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"not a number: {str(value)[:40]!r}", file=name, line=line, field=column) from None
    if not math.isfinite(v) or v != int(v) or v < 0 or v > MAX_TOKENS:
        raise SpecError(f"must be a whole number of tokens from 0 to {MAX_TOKENS:,}, got {str(value)[:40]}",
                        file=name, line=line, field=column)
    if v == 0 and not allow_zero:
        raise SpecError("a request needs at least one prompt token", file=name, line=line, field=column)
    return int(v)


def _seconds(value, name: str, line: int, column: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"not a number of seconds: {str(value)[:40]!r}", file=name, line=line, field=column) from None
    if not math.isfinite(v):
        raise SpecError(f"must be a finite time, got {value}", file=name, line=line, field=column)
    return v


def _iso_seconds(value: str, name: str, line: int, cache: dict) -> float:
    """Seconds since the epoch of an Azure timestamp ('2023-11-16 18:15:46.6805900', optionally with an
    offset): the date part is parsed once per day, the clock part by hand (fromisoformat takes at most
    six fractional digits)."""
    text = value.strip()
    day, _, clock = text.partition(" ")
    base = cache.get(day)
    try:
        if base is None:
            base = cache[day] = datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()
        offset = 0.0
        for sign in ("+", "-"):
            if sign in clock:
                clock, _, tz = clock.partition(sign)
                hh, _, mm = tz.partition(":")
                offset = (-1 if sign == "+" else 1) * (int(hh) * 3600 + int(mm or 0) * 60)
        hh, mm, ss = clock.split(":")
        return base + int(hh) * 3600 + int(mm) * 60 + float(ss) + offset
    except (ValueError, OverflowError):
        raise SpecError(f"not a timestamp: {text[:40]!r} (expected like 2023-11-16 18:15:46.68)", file=name,
                        line=line, field="TIMESTAMP") from None


def _norm(h: str) -> str:
    return h.strip().lower().replace("_", " ")


AZURE = ("timestamp", "contexttokens", "generatedtokens")
BURSTGPT = ("timestamp", "request tokens", "response tokens")


def _read_csv(name: str, f: io.TextIOBase) -> Trace:
    reader = csv.reader(f)
    try:
        header = next(reader)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SpecError(f"not a CSV trace: {exc}", file=name, line=1) from None
    cols = {_norm(h): i for i, h in enumerate(header)}
    if all(c in cols for c in AZURE):
        fmt, (it, ii, io_) = "azure", (cols[c] for c in AZURE)
    elif all(c in cols for c in BURSTGPT):
        fmt, (it, ii, io_) = "burstgpt", (cols[c] for c in BURSTGPT)
    else:
        raise SpecError(f"unknown trace columns {', '.join(h.strip() for h in header)[:120]}", file=name, line=1,
                        hint="expected Azure (TIMESTAMP,ContextTokens,GeneratedTokens), BurstGPT (Timestamp,"
                             "Request tokens,Response tokens,...) or vLLM timed_trace JSONL")
    names = [header[it].strip(), header[ii].strip(), header[io_].strip()]
    need = max(it, ii, io_) + 1
    t, inp, out = [], [], []
    dropped = 0
    days: dict = {}
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(t) >= MAX_TRACE_ROWS:
                raise SpecError(f"more than {MAX_TRACE_ROWS:,} requests", file=name, line=line,
                                hint="cut a window of the trace")
            if len(row) < need:
                raise SpecError(f"expected {len(header)} columns, got {len(row)}", file=name, line=line)
            o = _tokens(row[io_], name, line, names[2], allow_zero=True)
            i = _tokens(row[ii], name, line, names[1], allow_zero=o == 0)
            if o == 0:   # a failed request (BurstGPT marks them with 0 response tokens)
                dropped += 1
                continue
            t.append(_iso_seconds(row[it], name, line, days) if fmt == "azure" else
                     _seconds(row[it], name, line, names[0]))
            inp.append(i)
            out.append(o)
    except csv.Error as exc:
        raise SpecError(f"not a CSV trace: {exc}", file=name, line=line) from None
    except UnicodeDecodeError:
        raise SpecError("not a text file (not UTF-8)", file=name, line=line) from None
    return _finish(name, fmt, t, inp, out, dropped)


def _read_jsonl(name: str, f: io.TextIOBase, time_scale: float) -> Trace:
    t, inp, out = [], [], []
    dropped = 0
    line = 0
    try:
        for line, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            if len(t) >= MAX_TRACE_ROWS:
                raise SpecError(f"more than {MAX_TRACE_ROWS:,} requests", file=name, line=line,
                                hint="cut a window of the trace")
            if len(text) > 1_000_000:
                raise SpecError("line too long for a trace record", file=name, line=line)
            try:
                rec = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise SpecError(f"not JSON: {str(exc)[:80]}", file=name, line=line) from None
            if not isinstance(rec, dict):
                raise SpecError("each line must be a JSON object", file=name, line=line)
            missing = [k for k in ("timestamp", "input_length", "output_length") if k not in rec]
            if missing:
                if "prompt" in rec:
                    raise SpecError("a vLLM 'custom' dataset line (prompt text) has no token counts", file=name,
                                    line=line, hint="give timestamp, input_length and output_length per line "
                                                    "(vLLM's timed_trace fields)")
                raise SpecError(f"missing {', '.join(missing)}", file=name, line=line,
                                hint="a timed_trace line has timestamp, input_length, output_length")
            o = _tokens(rec["output_length"], name, line, "output_length", allow_zero=True)
            i = _tokens(rec["input_length"], name, line, "input_length", allow_zero=o == 0)
            if o == 0:
                dropped += 1
                continue
            t.append(_seconds(rec["timestamp"], name, line, "timestamp") * time_scale)
            inp.append(i)
            out.append(o)
    except UnicodeDecodeError:
        raise SpecError("not a text file (not UTF-8)", file=name, line=line + 1) from None
    return _finish(name, "vllm-jsonl", t, inp, out, dropped)


def _finish(name: str, fmt: str, t: list, inp: list, out: list, dropped: int) -> Trace:
    if len(t) < 2:
        raise SpecError(f"a trace needs at least 2 requests with output, found {len(t)}"
                        + (f" ({dropped} failed rows dropped)" if dropped else ""), file=name)
    ta = np.asarray(t, dtype=float)
    order = np.argsort(ta, kind="stable")   # BurstGPT and merged logs are not always in order
    ta = ta[order]
    if ta[-1] - ta[0] <= 0:
        raise SpecError("all requests arrive at the same instant; a trace needs a time span", file=name)
    return Trace(ta - ta[0], np.asarray(inp, dtype=np.int64)[order], np.asarray(out, dtype=np.int64)[order],
                 source=name, format=fmt, dropped=dropped)


def read_trace(path: str | Path, time_scale: float = 1.0) -> Trace:
    """Read a trace file; `time_scale` converts JSONL timestamps to seconds (CSV formats have fixed units)."""
    name, f = _open_text(path)
    with f:
        try:
            first = f.read(1)
            while first and first in " \t\r\n":
                first = f.read(1)
        except UnicodeDecodeError:
            raise SpecError("not a text file (not UTF-8)", file=name) from None
        f.seek(0)
        if first == "\x00":
            raise SpecError("not a text file (contains NUL bytes)", file=name)
        if first == "{":
            return _read_jsonl(name, f, time_scale)
        if time_scale != 1.0:
            raise SpecError("time_scale applies to JSONL traces; CSV traces have fixed time units", file=name)
        return _read_csv(name, f)
