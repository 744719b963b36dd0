"""What a trace says about traffic: rate, burstiness, and the joint distribution of lengths."""

from __future__ import annotations

import math

import numpy as np

from .trace import Trace

PERCENTILES = (50, 90, 99)


def gamma_fit(gaps: np.ndarray) -> tuple[float, float, str]:
    """(shape, scale, method) of a Gamma distribution fitted to inter-arrival gaps. Maximum likelihood
    when every gap is positive; traces with coarse timestamps (BurstGPT's are whole seconds) have zero
    gaps, where the likelihood is degenerate, so the method of moments is used instead."""
    gaps = np.asarray(gaps, float)
    mean = float(np.mean(gaps))
    cv2 = float(np.var(gaps)) / (mean * mean) if mean > 0 else 0.0
    if np.all(gaps > 0) and gaps.size >= 10:
        from scipy.special import digamma, polygamma

        # ln k - digamma(k) = ln(mean) - mean(ln x): Minka's closed-form start, then Newton steps.
        s = math.log(mean) - float(np.mean(np.log(gaps)))
        if s > 0:
            k = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
            for _ in range(20):
                k = max(k - (math.log(k) - digamma(k) - s) / (1 / k - polygamma(1, k)), 1e-6)
            if math.isfinite(k):
                return float(k), mean / float(k), "maximum likelihood"
    if cv2 <= 0:
        return math.inf, 0.0, "moments"
    return 1.0 / cv2, mean * cv2, "moments"


def dispersion(arrival_s: np.ndarray, points: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Index of dispersion of counts, I(m) = Var(N) / E[N] over windows holding m arrivals on average,
    for m from 1 to a twentieth of the trace (so at least 20 windows). Scale-free: a trace replayed
    faster keeps it. 1 for Poisson; for a renewal process it tends to the squared CV of the gaps; slow
    swings of the rate make it grow with m."""
    t = np.asarray(arrival_s, float)
    n = t.size
    span = t[-1] - t[0]
    rate = (n - 1) / span
    ms = np.unique(np.geomspace(1.0, max(n / 20.0, 1.0), points))
    out = []
    for m in ms:
        w = m / rate
        bins = max(int(span // w), 1)
        counts = np.bincount(np.minimum(((t - t[0]) / w).astype(int), bins - 1), minlength=bins)[:bins]
        mean = counts.mean()
        out.append(counts.var() / mean if mean > 0 else 1.0)
    return ms, np.asarray(out)


def _dist(x: np.ndarray) -> dict:
    return {"mean": float(np.mean(x)), **{f"p{q}": float(np.percentile(x, q)) for q in PERCENTILES},
            "max": float(np.max(x))}


def summarize(trace: Trace) -> dict:
    gaps = np.diff(trace.arrival_s)
    mean_gap = float(np.mean(gaps))
    cv = float(np.std(gaps) / mean_gap) if mean_gap > 0 else 0.0
    shape, scale, method = gamma_fit(gaps)
    i, o = trace.input_tokens.astype(float), trace.output_tokens.astype(float)
    corr = float(np.corrcoef(i, o)[0, 1]) if np.std(i) > 0 and np.std(o) > 0 else 0.0
    return {
        "file": trace.source,
        "format": trace.format,
        "requests": len(trace),
        "dropped_failed": trace.dropped,
        "duration_s": trace.duration_s,
        "rate_rps": trace.mean_rate,
        "interarrival": {"mean_s": mean_gap, "cv": cv, "gamma_shape": shape, "gamma_scale_s": scale,
                         "gamma_fit": method},
        "dispersion": {f"{m:.4g}": float(v) for m, v in zip(*dispersion(trace.arrival_s, 8))},
        "input_tokens": _dist(i),
        "output_tokens": _dist(o),
        "input_output_correlation": corr,
    }
