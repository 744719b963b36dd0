"""What the cost model and the simulator need to know about traffic, with no I/O.

`Traffic` holds the empirical joint distribution of input and output lengths (the pairs of a trace,
or a quantile sample of a length distribution), the burstiness of arrivals (the coefficient of
variation of inter-arrival times) and, optionally, a target mean rate. A trace is kept for replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrivals import arrival_times
from .trace import Trace

ARRIVALS = ("poisson", "gamma", "trace")


@dataclass(frozen=True)
class Traffic:
    input_tokens: np.ndarray   # one entry per request of the sample (joint with output_tokens)
    output_tokens: np.ndarray
    cv: float                  # coefficient of variation of inter-arrival times
    arrival: str               # "poisson", "gamma" or "trace"
    rate: float | None = None  # target mean rate (req/s, whole group); None: report goodput only
    trace: Trace | None = None # replayed by the simulator when arrival == "trace"
    description: str = ""
    declared: bool = True      # the problem gave a trace or an arrival process (not just mean lengths)
    dispersion: tuple[np.ndarray, np.ndarray] | None = None   # (m, I(m)) of a replayed trace's counts

    @property
    def mean_input(self) -> float:
        return float(np.mean(self.input_tokens))

    @property
    def mean_output(self) -> float:
        return float(np.mean(self.output_tokens))

    def pairs(self, k: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, outputs, weights, stratified-by) of at most k requests whose mixture stands for the
        joint distribution in percentile computations. Half are stratified by input length (by = 0),
        half by output length (by = 1), each stratum represented by its middle request and weighted by
        its share; strata are finer in the tails, where percentile SLOs live. TTFT percentiles read the
        input half (its prompts follow the input distribution exactly), TPOT the output half, E2E both.
        All requests (by = -1) when there are at most k. Means come from `population`, not from these."""
        n = self.input_tokens.size
        i, o = self.input_tokens.astype(float), self.output_tokens.astype(float)
        if n <= k:
            return i, o, np.full(n, 1.0 / n), np.full(n, -1)
        half = k // 2
        picks, weights, by = [], [], []
        for b, (key, edges) in enumerate(((i, _strata(half, lower_tail=False)), (o, _strata(half, lower_tail=True)))):
            order = np.argsort(key, kind="stable")
            cuts = np.unique(np.clip(np.round(edges * n).astype(int), 0, n))
            picks.append(order[(cuts[:-1] + cuts[1:] - 1) // 2])
            weights.append(0.5 * np.diff(cuts) / n)
            by.append(np.full(cuts.size - 1, b))
        idx = np.concatenate(picks)
        return i[idx], o[idx], np.concatenate(weights), np.concatenate(by)

    def population(self, limit: int = 100_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """All requests, or `limit` of them drawn at random (fixed seed): what means and moments use."""
        n = self.input_tokens.size
        if n <= limit:
            return self.input_tokens.astype(float), self.output_tokens.astype(float)
        idx = np.random.default_rng(seed).choice(n, limit, replace=False)
        return self.input_tokens[idx].astype(float), self.output_tokens[idx].astype(float)

    def requests(self, n: int, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(arrival instants, input tokens, output tokens) of `n` requests at mean rate `rate` (req/s).
        A trace is replayed in order, time-scaled to the rate and repeated back to back when `n` exceeds
        it; otherwise arrivals follow the renewal process and lengths are drawn from the sample."""
        if self.arrival == "trace" and self.trace is not None:
            tr = self.trace.at_rate(rate)
            reps = -(-n // len(tr))
            span = tr.duration_s + 1.0 / rate
            t = (tr.arrival_s[None, :] + span * np.arange(reps)[:, None]).ravel()[:n]
            return t, np.tile(tr.input_tokens, reps)[:n], np.tile(tr.output_tokens, reps)[:n]
        t = arrival_times(n, rate, self.cv, seed)
        idx = np.random.default_rng(seed + 1).integers(0, self.input_tokens.size, n)
        return t, self.input_tokens[idx], self.output_tokens[idx]


def _strata(k: int, lower_tail: bool) -> np.ndarray:
    """k + 1 quantile edges from 0 to 1: an eighth of the strata in the top 10% and another eighth in the
    top 1% (and, with `lower_tail`, the same at the bottom), the rest evenly over the body."""
    tail = max(k // 8, 1)
    top = [np.linspace(0.9, 0.99, tail + 1)[1:], np.linspace(0.99, 1.0, tail + 1)[1:]]
    low = [np.linspace(0.0, 0.01, tail + 1)[:-1], np.linspace(0.01, 0.1, tail + 1)[:-1]] if lower_tail \
        else [np.array([0.0])]
    start = 0.1 if lower_tail else 0.0
    body = np.linspace(start, 0.9, k - (4 if lower_tail else 2) * tail + 1)
    return np.unique(np.concatenate(low + [body] + top))
