"""Search engines behind one interface: `run_search(problem, method)`.

- `exhaustive`: every placement of the space, evaluated at once (the reference).
- `optuna`: multi-objective black-box search (NSGA-II or TPE), resumable and distributable.
- `ilp`: exact cluster planning over GPU pools with PuLP (problems with pools or a target rate).
- `auto`: ilp for problems with pools or a target arrival rate (under traffic too: the ILP rates
  replicas at their goodput, `ilp/traffic.py`), else exhaustive when the space is small enough,
  else optuna.
"""

from __future__ import annotations

from ..errors import ParasearchError
from ..space.enumerate import enumerate_space
from ..spec.problem import Problem
from .evaluate import Evaluation, evaluate
from .exhaustive import exhaustive
from .result import SearchResult, front_of

METHODS = ("auto", "exhaustive", "optuna", "ilp")
EXHAUSTIVE_LIMIT = 400_000  # placements: about 2 s of oracle time on two cores


def choose_method(problem: Problem, method: str, space_size: int | None = None) -> str:
    """`auto`: the ILP for problems with pools or an arrival rate; otherwise exhaustive unless the
    space (once enumerated, `space_size`) is too large, then optuna. Without a size, `auto` stays."""
    if method != "auto":
        return method
    pools = problem.declared_pools or len(problem.pools) > 1 or problem.limits.disaggregation
    # Under traffic the ILP sizes replicas at their goodput (ilp/traffic.py); without a target rate a
    # single pool stays with the engines that report each placement's goodput.
    if pools or problem.workload.arrival_rate:
        return "ilp"
    if space_size is None:
        return "auto"
    return "exhaustive" if space_size <= EXHAUSTIVE_LIMIT else "optuna"


def run_search(problem: Problem, method: str = "auto", *, progress: bool = True) -> SearchResult:
    """Search `problem`'s placement space with `method` (`auto`, `exhaustive`, `optuna` or `ilp`).

    Exhaustive and Optuna return a `SearchResult`: `evaluation` (every placement evaluated) and
    `front` (indices of its Pareto-optimal feasible placements, highest throughput first). The ILP
    returns a `PlanResult` whose `plan` is the cluster plan as a dict (replicas per pool and role,
    rates, the disaggregation decision and its reason). `progress` shows Optuna's progress bar on stderr.
    Raises `InfeasibleError` when nothing fits and `ParasearchError` for an unknown method."""
    if method not in METHODS:
        raise ParasearchError(f"unknown method {method!r}", hint="allowed: " + ", ".join(METHODS))
    method = choose_method(problem, method)
    if method == "ilp":
        from .ilp import ilp_search

        return ilp_search(problem)
    if len(problem.pools) > 1:
        raise ParasearchError(f"method {method} searches one GPU pool; this problem has {len(problem.pools)}",
                              hint="use --method ilp (or auto)")
    space = enumerate_space(problem)
    if len(space) == 0:
        raise ParasearchError("no placement of the model fits the search limits and the cluster",
                              hint="widen search.tp/pp/ep or add GPUs")
    method = choose_method(problem, method, len(space))
    if method == "optuna":
        from ._optuna import optuna_search

        return optuna_search(problem, space, progress=progress)
    return exhaustive(problem, space)


__all__ = ["METHODS", "Evaluation", "SearchResult", "evaluate", "front_of", "run_search", "choose_method"]
