"""Queueing formulas used by the load model (pure numpy, vectorized over placements).

- Slot waiting: the chance an arrival finds every batch slot taken, for a birth-death population
  whose service slows as it grows (Erlang C's M/M/c is the case of constant service), and
  Allen-Cunneen's GI/G/c correction: waits scale with (ca^2 + cs^2) / 2 (Allen, "Probability,
  Statistics and Queueing Theory", 1978), with an exponential tail given that one waits.
- Moment-matched lognormal distributions for positive, right-skewed latencies.
- The variance of a window average of a stationary process with exponential autocorrelation
  (an Ornstein-Uhlenbeck process): how much of the slow fluctuation of the batch size a request's
  lifetime averages away.
"""

from __future__ import annotations

import numpy as np

# scipy.special is imported where used: it costs a noticeable share of start-up, and only problems
# under traffic need it.

def slot_wait(slots, alpha, beta, peak) -> tuple[np.ndarray, np.ndarray]:
    """(P(an arrival finds every slot taken), utilization at full occupancy) for a birth-death
    population of sequences whose per-sequence completion slows as it grows.

    With N sequences in flight each holds its slot for h(N) = (alpha + beta N) / lam (the cycle time
    grows linearly with the batch), so the birth-death ratios are lam / mu(N) = (alpha + beta N) / N and
    the occupancy below the `slots` c follows a negative binomial (r = alpha/beta + 1, p = beta);
    beta -> 0 is Erlang's M/M/inf Poisson. Above c arrivals queue and leave at mu(c): the chance of
    waiting is pi(c) / (1 - rho_c) over the whole mass, as in Erlang C. Bursty arrivals (peakedness
    `peak` > 1) widen the occupancy: the negative binomial is matched to the same mean and `peak`
    times the variance."""
    from scipy.special import betainc, gammaln

    c = np.maximum(np.floor(np.asarray(slots, float)), 1.0)
    alpha = np.maximum(np.asarray(alpha, float), 1e-12)
    beta = np.clip(np.asarray(beta, float), 0.0, None)
    rho_c = (alpha + beta * c) / c
    stable = (rho_c < 1) & (beta < 1)
    b = np.where(stable, beta, 0.5)
    r = alpha / np.maximum(b, 1e-12) + 1.0
    mean = np.where(b > 1e-9, r * b / (1 - b), alpha)
    var = np.where(b > 1e-9, r * b / (1 - b) ** 2, alpha) * np.maximum(peak, 1.0)
    # Negative binomial with this mean and variance (r successes, success probability q).
    q = np.clip(mean / np.maximum(var, mean * (1 + 1e-9)), 1e-12, 1 - 1e-12)
    rr = mean * q / (1 - q)
    below = betainc(rr, c, q)                                        # P(N <= c - 1)
    log_at = gammaln(c + rr) - gammaln(rr) - gammaln(c + 1) + rr * np.log(q) + c * np.log1p(-q)
    queue = np.exp(log_at) / np.maximum(1 - rho_c, 1e-12)
    p_wait = np.where(stable, queue / np.maximum(below + queue, 1e-300), 1.0)
    return np.clip(p_wait, 0.0, 1.0), rho_c


def gi_sigma(rho, ca2) -> np.ndarray:
    """GI/M/c's sigma for Gamma inter-arrival times of squared CV ca2 (shape k = 1 / ca2): the root in
    (0, 1) of sigma = A*(c mu (1 - sigma)) = (1 + (1 - sigma) / (k rho))^-k, the chance an arrival finds
    the servers full when they are (rho for Poisson arrivals; less for regular ones). Fixed-point
    iteration from rho converges to it (Kleinrock, Queueing Systems I, 1975, section 6.4)."""
    rho = np.clip(np.asarray(rho, float), 1e-12, 1 - 1e-9)
    k = 1.0 / np.maximum(np.asarray(ca2, float), 1e-6)
    sigma = rho.copy()
    for _ in range(60):
        sigma = (1.0 + (1.0 - sigma) / (k * rho)) ** (-k)
    return sigma


RENEWAL_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 8.0, 63)])   # x = rate t, in mean gaps


def renewal_tables(ca2_values, terms: int = 40) -> dict:
    """M(x) - x over RENEWAL_GRID (x = rate t) for each squared CV: what renewal_excess interpolates.
    M = sum over n of P(n gaps <= t), each gap sum a Gamma(n k) with k = 1 / ca2."""
    from scipy.special import gammainc

    n = np.arange(1, terms + 1)[:, None]
    out = {}
    for c in np.unique(np.asarray(ca2_values, float)):
        k = 1.0 / max(float(c), 1e-6)
        out[float(c)] = np.sum(gammainc(n * k, k * RENEWAL_GRID[None, :]), axis=0) - RENEWAL_GRID
    return out


def renewal_excess(rate, ca2, t, tables: dict | None = None) -> np.ndarray:
    """M(t) - rate t for a Gamma renewal process of squared CV ca2 (shape k = 1 / ca2): how many more
    arrivals than the rate says come within t after an arrival. 0 for Poisson, (ca2 - 1) / 2 for long t
    (the renewal function's asymptote), negative for regular arrivals. Interpolated in tables from
    renewal_tables (computed here when not given); past 8 mean gaps the asymptote is used (a Gamma
    process has settled by then unless ca2 is extreme, and the sum would need more terms)."""
    rate, ca2, t = np.broadcast_arrays(*(np.asarray(v, float) for v in (rate, ca2, t)))
    x = rate * np.where(np.isfinite(t), np.maximum(t, 0.0), np.inf)
    out = np.where(x >= 8, (ca2 - 1) / 2, 0.0)
    todo = (x < 8) & (np.abs(ca2 - 1) > 1e-9)
    if not np.any(todo):
        return out
    tables = tables if tables is not None else renewal_tables(ca2[todo])
    for c in np.unique(ca2[todo]):
        table = tables.get(float(c))
        if table is None:
            table = renewal_tables([c])[float(c)]
        sel = todo & (ca2 == c)
        out[sel] = np.interp(x[sel], RENEWAL_GRID, table)
    return out


def lognormal(mean, var) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the lognormal with this mean and variance (sigma 0 for a point mass)."""
    mean = np.maximum(np.asarray(mean, float), 1e-30)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s2 = np.nan_to_num(np.log1p(np.maximum(np.asarray(var, float), 0.0) / (mean * mean)), nan=0.0)
        return np.log(mean) - 0.5 * s2, np.sqrt(s2)


def lognormal_cdf(x, mu, sigma) -> np.ndarray:
    from scipy.special import ndtr

    x = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.maximum(x, 1e-300)) - mu) / np.maximum(sigma, 1e-12)
    return np.where(x > 0, ndtr(z), 0.0)


def lognormal_nodes(mu, sigma, nodes: int) -> np.ndarray:
    """`nodes` equally likely points of the lognormal (its quantiles at the midpoints), last axis."""
    from scipy.special import ndtri

    u = (np.arange(nodes) + 0.5) / nodes
    return np.exp(np.asarray(mu)[..., None] + np.asarray(sigma)[..., None] * ndtri(u))


def window_average_factor(ratio) -> np.ndarray:
    """Var(average over a window of length L) / Var(process) for exponential autocorrelation with time
    constant theta, as a function of ratio = L / theta: 2 (r - 1 + e^-r) / r^2 (1 at r -> 0)."""
    r = np.maximum(np.asarray(ratio, float), 1e-9)
    return np.where(r < 1e-4, 1.0 - r / 3.0, 2.0 * (r - 1.0 + np.exp(-r)) / (r * r))
