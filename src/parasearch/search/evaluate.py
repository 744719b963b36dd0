"""Evaluating placements for a problem: serving metrics, SLO checks, pruning reasons, objectives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..cost.serving import Serving, serve
from ..space.enumerate import Space
from ..spec.problem import Problem

if TYPE_CHECKING:
    from .goodput import LoadEval

# Objective name -> (metric, sense): +1 maximize, -1 minimize. Throughput per GPU counts every GPU
# of a fixed cluster (`Evaluation.fleet_gpus`), so on a fleet that is already paid for it ranks
# layouts by the cluster's total throughput and a layout that leaves GPUs idle pays for them.
OBJECTIVES = {
    "throughput_per_gpu": ("fleet_per_gpu", +1),
    "tokens_per_user": ("per_user", +1),
    "ttft": ("ttft_s", -1),
    "cost": ("usd_per_mtok", -1),
    "goodput_per_gpu": ("goodput_per_gpu", +1),
}
REASONS = ("weights-memory", "kv-capacity", "ttft-slo", "tpot-slo", "e2e-slo", "arrival-rate")


@dataclass
class Evaluation:
    space: Space
    serving: Serving
    feasible: np.ndarray
    reason: np.ndarray          # first rule broken, "" when feasible
    usd_per_mtok: np.ndarray
    headroom: np.ndarray        # share of each GPU's memory not taken by weights, workspace, runtime and KV pages
    fleet_gpus: int | None = None  # GPUs of a fixed cluster; None when the fleet size is being chosen
    load: "LoadEval | None" = None  # under traffic: goodput and latencies at the operating rate

    def __len__(self) -> int:
        return len(self.space)

    def metric(self, name: str) -> np.ndarray:
        if name == "usd_per_mtok":
            return self.usd_per_mtok
        if self.load is not None:
            # Under traffic every latency and rate is the one at the operating rate.
            gpus = self.space.layout.gpus
            if name == "goodput_per_gpu":
                return self.load.goodput / gpus
            if name == "per_user":
                return np.where(np.isfinite(self.load.tpot_mean), 1.0 / self.load.tpot_mean, 0.0)
            if name == "ttft_s":
                return self.load.ttft_mean
            if name == "per_gpu":
                return self.load.rate * self.load.mean_output / gpus
        if name == "goodput_per_gpu":
            raise ValueError("goodput needs traffic: give a trace, an arrival process or percentile SLOs")
        if name == "fleet_per_gpu":
            s = self.serving
            return s.output_tokens_per_s / self.fleet_gpus if self.fleet_gpus else s.per_gpu
        return getattr(self.serving, name)

    def objective_matrix(self, objectives: tuple[str, ...]) -> np.ndarray:
        """Columns oriented so that larger is better."""
        cols = [OBJECTIVES[o][1] * self.metric(OBJECTIVES[o][0]) for o in objectives]
        return np.stack(cols, axis=1) if cols else np.zeros((len(self), 0))

    def pruned_counts(self) -> dict[str, int]:
        names = list(REASONS) + sorted(set(self.reason.tolist()) - set(REASONS) - {""})
        return {r: int(np.sum(self.reason == r)) for r in names if np.any(self.reason == r)}


def evaluate(problem: Problem, space: Space) -> Evaluation:
    pool = space.pool
    s = serve(problem.model, pool.hardware, problem.engine, space.layout, problem.precision, problem.workload,
              space.max_batch)
    reason = np.full(len(space), "", dtype=object)

    def flag(mask, name):
        sel = (reason == "") & mask
        reason[sel] = name[sel] if isinstance(name, np.ndarray) else name

    flag(~s.memory.fits, "weights-memory")
    flag(~s.fits, "kv-capacity")
    slo = problem.slo
    load = None
    if problem.under_load:
        from .goodput import evaluate_load

        load = evaluate_load(problem, space, s.fits)
        # Short of the target rate (or of any rate): name the SLO that binds, or the rate itself when
        # the replica saturates before any SLO fails.
        short = load.goodput < load.target_rate if load.target_rate else load.goodput <= 0
        names = np.where(load.binding == "capacity", "arrival-rate", np.char.add(load.binding, "-slo"))
        flag(short, names)
    else:
        if slo.ttft_s:
            flag(s.ttft_s > slo.ttft_s, "ttft-slo")
        if slo.tpot_s:
            flag(s.tpot_s > slo.tpot_s, "tpot-slo")
        if slo.e2e_s:
            flag(s.e2e_s > slo.e2e_s, "e2e-slo")
        if problem.workload.arrival_rate:
            flag(s.utilization >= 1.0, "arrival-rate")
    price = pool.price_per_gpu_hour or problem.price_per_gpu_hour
    with np.errstate(divide="ignore", invalid="ignore"):
        usd = np.where(s.output_tokens_per_s > 0,
                       (price or 0.0) * space.layout.gpus / 3600.0 / s.output_tokens_per_s * 1e6, np.inf)
    if not price:
        usd = np.full(len(space), np.nan)
    hw = pool.hardware
    used = s.memory.weights + s.memory.activations + s.memory.reserve + s.kv_reserved
    headroom = 1.0 - used / hw.hbm_bytes
    if load is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            tokens = load.rate * load.mean_output
            usd = np.where(tokens > 0, (price or 0.0) * space.layout.gpus / 3600.0 / tokens * 1e6, np.inf) \
                if price else np.full(len(space), np.nan)
    return Evaluation(space, s, reason == "", reason.astype(str), usd, headroom,
                      pool.gpus if problem.fixed_fleet else None, load)
