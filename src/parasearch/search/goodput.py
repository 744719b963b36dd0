"""Placements under traffic: goodput, the SLO that binds, and latency percentiles at the operating rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cost import load as L
from ..space.enumerate import Space
from ..spec.problem import Problem

PERCENTILES = (50, 90, 99)
SAMPLE = 96        # requests standing for the length distribution in percentile mixtures


@dataclass
class LoadEval:
    """Per placement: goodput (req/s over the dp replicas), the operating rate the table reports
    (the target rate, else the goodput), and what binds. Percentiles are computed on demand."""

    model: L.LoadModel
    targets: list[L.Target]
    cv: float
    evaluated: np.ndarray       # placements the load model ran for (they fit in memory)
    goodput: np.ndarray
    rate: np.ndarray
    target_rate: float | None
    binding: np.ndarray         # the SLO that fails first past the goodput ("p99-ttft", "capacity", ...)
    tpot_mean: np.ndarray       # at the operating rate
    ttft_mean: np.ndarray
    mean_output: float          # output tokens per request

    def _state(self, idx, rate) -> tuple[L.LoadModel, L.State]:
        lm = _take(self.model, idx)
        return lm, L.state(lm, np.asarray(rate, float) / lm.replicas, self.cv ** 2 / lm.replicas)

    def percentiles(self, idx, rate=None) -> list[dict]:
        """Mean and P50/P90/P99 of TTFT, TPOT and E2E (s) for placements `idx` at `rate` (default: the
        operating rate of each)."""
        idx = np.atleast_1d(np.asarray(idx, int))
        pos = np.searchsorted(self.evaluated, idx)
        rate = self.rate[idx] if rate is None else np.broadcast_to(np.asarray(rate, float), idx.shape)
        out = [dict() for _ in idx]
        ok = (pos < self.evaluated.size) & (self.evaluated[np.minimum(pos, self.evaluated.size - 1)] == idx) & (rate > 0)
        if not np.any(ok):
            return out
        lm, st = self._state(pos[ok], rate[ok])
        table = {}
        for m in L.METRICS:
            table[f"{m}_mean_s"] = L.mean(lm, st, m)
            values = L.percentile(lm, st, m, [q / 100 for q in PERCENTILES])
            for j, q in enumerate(PERCENTILES):
                table[f"{m}_p{q}_s"] = values[:, j]
        table["batch"] = st.batch
        for j, k in enumerate(np.flatnonzero(ok)):
            out[k] = {key: float(v[j]) for key, v in table.items()}
        return out

    def capacity(self, idx) -> np.ndarray:
        """The highest stable rate (req/s over the replicas) of placements `idx`, whatever the SLOs."""
        pos = np.searchsorted(self.evaluated, np.atleast_1d(np.asarray(idx, int)))
        lm = _take(self.model, pos)
        return L.goodput(lm, [], self.cv)[0] * lm.replicas

    def curve(self, i: int, rates) -> dict:
        """Percentiles of one placement against arrival rates (req/s over the group), for plots."""
        rates = np.asarray(rates, float)
        rows = self.percentiles(np.full(rates.size, i), rates)
        keys = rows[0].keys() if rows and rows[0] else []
        return {"rate": rates, **{k: np.array([r.get(k, np.inf) for r in rows]) for k in keys}}


def _take(lm: L.LoadModel, idx) -> L.LoadModel:
    from dataclasses import fields, replace

    per = {f.name: getattr(lm, f.name)[idx] for f in fields(lm)
           if isinstance(getattr(lm, f.name), np.ndarray) and f.name in ("d0", "slope", "first", "alone", "rider",
                                                                            "slots", "servable", "replicas")}
    return replace(lm, **per)


def load_model(problem: Problem, pool, layout, max_batch) -> L.LoadModel:
    """The load model of placements `layout` with batch caps `max_batch` on `pool`, under the
    problem's traffic (its length distribution sampled by SAMPLE requests)."""
    traffic = problem.traffic_or_default()
    inp, out, w, by = traffic.pairs(SAMPLE)
    return L.build(problem.model, pool.hardware, problem.engine, layout, problem.precision, max_batch, inp, out, w,
                   traffic.population(), by, traffic.dispersion)


def evaluate_load(problem: Problem, space: Space, fits: np.ndarray) -> LoadEval:
    traffic = problem.traffic_or_default()
    n = len(space)
    idx = np.flatnonzero(fits)
    targets = problem.slo.targets
    sub = space.take(idx)
    lm = load_model(problem, space.pool, sub.layout, sub.max_batch)
    cv = traffic.cv
    good = np.zeros(n)
    binding = np.full(n, "", dtype=object)
    rate = np.zeros(n)
    tpot = np.full(n, np.inf)
    ttft = np.full(n, np.inf)
    if idx.size:
        g, binding[idx] = L.goodput(lm, targets, cv)   # per replica
        good[idx] = g * lm.replicas
        op = np.full(idx.size, traffic.rate) if traffic.rate else good[idx]
        rate[idx] = op
        st = L.state(lm, np.maximum(op, 1e-9) / lm.replicas, cv ** 2 / lm.replicas)
        tpot[idx] = np.where(op > 0, L.mean(lm, st, "tpot"), np.inf)
        ttft[idx] = np.where(op > 0, L.mean(lm, st, "ttft"), np.inf)
    return LoadEval(lm, targets, cv, idx, good, rate, traffic.rate, binding.astype(str), tpot, ttft,
                    float(np.mean(traffic.population()[1])))
