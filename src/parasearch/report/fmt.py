"""Compact number formats for tables that fit an 80-column terminal (`3.31k`, `52ms`, `1.2s`).

Three significant figures at most: the oracle's error is a few percent, so more digits would only
take room. Exact values are in `--json` and `--csv`.
"""

from __future__ import annotations

import math

_SUFFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def _sig3(v: float) -> str:
    """`v` (|v| < 1000 once rounded) with three significant figures and no exponent."""
    a = abs(v)
    if a >= 99.95:
        return f"{v:.0f}"
    if a >= 9.995:
        return f"{v:.1f}"
    if a >= 0.9995:
        return f"{v:.2f}"
    return f"{v:.3g}"


def compact(x: float | None) -> str:
    """3,308 -> `3.31k`; 25,734 -> `25.7k`; 19.27 -> `19.3`; None or NaN -> `-`."""
    if x is None or not math.isfinite(x):
        return "-"
    for div, suffix in _SUFFIXES:
        if abs(x) >= div * 0.9995 or div == 1.0:
            v = x / div
            if abs(v) >= 999.5 and suffix != "G":  # rounds up into the next unit
                continue
            return _sig3(v) + suffix
    return _sig3(x)


def duration(s: float | None) -> str:
    """Seconds as `0.45ms`, `7.5ms`, `52ms`, `1.2s`, `31s` or `12m`; None or NaN -> `-`."""
    if s is None or not math.isfinite(s):
        return "-"
    ms = s * 1e3
    if ms < 0.9995:
        return f"{ms:.2f}ms"
    if ms < 9.95:
        return f"{ms:.1f}ms"
    if ms < 999.5:
        return f"{ms:.0f}ms"
    if s < 9.95:
        return f"{s:.1f}s"
    if s < 599.5:
        return f"{s:.0f}s"
    return f"{s / 60:.0f}m"


def percent(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.0%}"


def money(x: float | None) -> str:
    """Dollars with two decimals under $10, then three significant figures (`0.62`, `155`, `1.2k`)."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.2f}" if abs(x) < 9.995 else compact(x)
