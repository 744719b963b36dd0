"""The reference engine: evaluate every placement of the space at once."""

from __future__ import annotations

import time

from ..space.enumerate import Space
from ..spec.problem import Problem
from .evaluate import evaluate
from .result import SearchResult, front_of


def exhaustive(problem: Problem, space: Space) -> SearchResult:
    t0 = time.perf_counter()
    ev = evaluate(problem, space)
    front = front_of(problem, ev)
    return SearchResult("exhaustive", ev, front, len(space), time.perf_counter() - t0)
