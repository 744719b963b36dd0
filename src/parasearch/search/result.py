"""What every search engine returns, and the Pareto front of an evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spec.problem import Problem
from .evaluate import Evaluation
from .pareto import pareto_mask


@dataclass
class SearchResult:
    method: str
    evaluation: Evaluation
    front: np.ndarray            # indices into `evaluation`, highest throughput first (see `front_of`)
    evaluated: int               # placements the oracle evaluated
    seconds: float
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def pruned(self) -> dict[str, int]:
        return self.evaluation.pruned_counts()


def front_of(problem: Problem, ev: Evaluation) -> np.ndarray:
    """Pareto-optimal feasible placements, highest throughput first: the whole cluster's on a fixed
    cluster, per GPU when the fleet size is being chosen (`Problem.fixed_fleet`). Among placements
    with identical objective values the one using more GPUs (more replicas: more total throughput)
    wins, then the smaller replica."""
    idx = np.flatnonzero(ev.feasible)
    if idx.size == 0:
        return idx
    lay = ev.space.layout
    pref = np.lexsort((lay.pp[idx], lay.replica_gpus[idx], -lay.gpus[idx]))
    idx = idx[pref]
    obj = ev.objective_matrix(problem.objectives)[idx]
    obj = np.where(np.isnan(obj), -np.inf, obj)  # an undefined objective never wins
    _, first = np.unique(obj, axis=0, return_index=True)
    first = np.sort(first)
    idx = idx[first]
    keep = pareto_mask(obj[first])
    front = idx[keep]
    return front[np.argsort(-ev.metric("fleet_per_gpu")[front], kind="stable")]
