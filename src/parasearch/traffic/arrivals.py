"""Arrival processes: Poisson, and Gamma renewal processes for bursty traffic.

A Gamma renewal process with coefficient of variation `cv` of its inter-arrival times has shape
1/cv^2 and scale cv^2/rate; cv = 1 is Poisson, cv > 1 is burstier (clusters of arrivals separated by
gaps), cv < 1 more regular. It is the burstiness model of `vllm bench serve --burstiness` (which
takes the shape, 1/cv^2) and the one BurstGPT fits to its traces (Wang et al., arXiv 2401.17644).
"""

from __future__ import annotations

import numpy as np


def unit_gaps(n: int, cv: float, rng: np.random.Generator) -> np.ndarray:
    """`n` inter-arrival times with mean 1 and coefficient of variation `cv`."""
    if abs(cv - 1.0) < 1e-12:
        return rng.exponential(1.0, n)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, 1.0 / shape, n)


def arrival_times(n: int, rate: float, cv: float, seed: int = 0) -> np.ndarray:
    """Arrival instants (s) of `n` requests of a renewal process with mean rate `rate`, starting at 0."""
    gaps = unit_gaps(n, cv, np.random.default_rng(seed)) / rate
    gaps[0] = 0.0
    return np.cumsum(gaps)


def round_robin_cv(cv: float, replicas) -> np.ndarray:
    """Coefficient of variation of the arrivals one of `replicas` replicas sees behind a round-robin
    balancer: every k-th arrival of a renewal process, a sum of k gaps, so cv^2 / k."""
    return cv / np.sqrt(np.asarray(replicas, float))
