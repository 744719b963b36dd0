"""Latency percentiles and goodput of continuous batching under real traffic: an analytic model.

One replica of a placement serves a stream of requests at rate `lam` whose inter-arrival times have
squared coefficient of variation `ca2`, with lengths (I_k, O_k) from an empirical joint sample. The
engine iterates: every cycle advances each running sequence by one token and carries the chunks of
waiting prompts within a token budget (chunked prefill); sequences are admitted while the batch cap
and the KV cache allow. Cycle times come from the oracle through a step table (`steptable.py`).

The model, all in closed form and vectorized over placements (docs/traffic.md derives each step):

1. Decode batch b and mean cycle D: a prompt of I tokens adds Delta(I) = T(b, I) - T(b, 0) to the
   cycle that carries it (less than its standalone prefill time while decode is memory-bound). Time
   balance: D = T(b, 0) / (1 - lam E[Delta]); Little's law: b = lam E[O - 1] D; solved as a fixed point.
2. Chunked-prefill interference: the prompts that arrive during one cycle ride in the next, so cycle
   lengths follow D' = T(b, 0) + sum of their Delta; mean D, variance
   lam D (Var Delta + ca2 E[Delta]^2) / (1 - rho^2), rho = lam E[Delta].
3. TTFT of a prompt = the rest of the cycle in progress (uniform over a length-biased cycle) + the
   Delta of the prompts it rides with + its own chunks' cycles + waiting for a batch slot or KV
   space (GI/G/c with c = the slots, holding time = the sequence's life: Erlang C / Halfin-Whitt with
   Allen-Cunneen's correction) + waiting for the token budget when prompts overflow it (Kingman).
4. TPOT of a request with O tokens = the mean cycle D, spread by the prefills that land during its
   life (a sum over lam x life arrivals, variance shrinking as 1/(O - 1)) and by the slow drift of the
   decode batch (peakedness of a GI/G/inf queue, averaged over the life).
5. Percentiles from the mixture over the length sample of shifted lognormals (plus the exponential
   tail of slot waiting); goodput (DistServe's definition) = the highest rate at which every stated
   percentile holds, by bisection on the rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import Layout
from .memory import kv_bytes_per_sequence, page_round, plan_memory
from .queueing import gi_sigma, lognormal, renewal_excess, renewal_tables, lognormal_cdf, lognormal_nodes, slot_wait, window_average_factor
from .steptable import along, b_grid, bracket, p_grid, step_table

METRICS = ("ttft", "tpot", "e2e")
STATS = ("mean", "p50", "p90", "p95", "p99")
NODES = 8            # quadrature points for the slot-waiting convolution
POPULATION_STRATA = 256
BISECTION_STEPS = 18      # over five decades of rate: to 0.005%


@dataclass(frozen=True)
class Target:
    """One SLO: metric ttft/tpot/e2e, statistic mean or pNN, limit in seconds."""

    metric: str
    stat: str
    limit: float

    @property
    def quantile(self) -> float | None:
        return None if self.stat == "mean" else float(self.stat[1:]) / 100.0

    @property
    def name(self) -> str:
        return f"{self.stat}-{self.metric}"


@dataclass
class LoadModel:
    """What a replica's latency under load depends on, apart from the load itself (arrays over placements)."""

    b: np.ndarray            # decode-batch grid (nb,)
    d0: np.ndarray           # (n, nb) cycle time with no prompt
    slope: np.ndarray        # (n, nb) d cycle / d b
    first: np.ndarray        # (n, nb, K) cycles that carry request k's prompt, until its first token
    alone: np.ndarray        # (n, nb, 3) E[x], E[x^2], E[x^3] of the time a prompt adds to a cycle it has alone
    rider: np.ndarray        # (n, nb, 3) the same for a prompt riding in a cycle that already carries one
    chunk_cap: np.ndarray    # (nb,) prompt tokens a cycle can carry at decode batch b
    slots: np.ndarray        # (n,) sequences a replica holds at once (batch cap, KV cache)
    servable: np.ndarray     # (n, K) request k fits one attention group's KV cache at all
    inp: np.ndarray          # (K,)
    out: np.ndarray          # (K,)
    weights: np.ndarray      # (K,) share of requests each sample point stands for
    metric_weights: dict     # the weights each metric's percentiles use (see Traffic.pairs)
    replicas: np.ndarray     # (n,)
    mean_in: float
    cv_in2: float            # squared coefficient of variation of prompt lengths
    mean_dec: float          # E[O - 1]
    peakedness: float        # E[min(n1, n2)] / E[n] of decode lives, for the batch-size variance
    dispersion: tuple | None = None   # (m, I(m)): index of dispersion of the arrivals' counts (a trace)

    def __len__(self) -> int:
        return self.d0.shape[0]

    @property
    def dec(self) -> np.ndarray:
        return np.maximum(self.out - 1.0, 0.0)

    def rider_stats(self, b) -> np.ndarray:
        return along(self.rider, self.b, b)


def kv_slots(model, hw, engine, layout: Layout, prec, inp, out, weights=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(KV tokens per replica, sequences the KV cache holds on average, (n, K) whether request k fits a
    group). Admission reserves prompt + output under the engine's `max` policy (no eviction) and the
    pages a sequence holds on average over its life (prompt + half its output) under `mean`."""
    w = np.full(inp.size, 1.0 / inp.size) if weights is None else np.asarray(weights, float)
    plan = plan_memory(model, hw, engine, layout, prec.weights)
    block = engine.kv_block_tokens
    ref = float(page_round(np.sum(w * (inp + out)), block))
    per_token = kv_bytes_per_sequence(model, layout, prec.kv_cache, ref) / ref
    groups = layout.attn_groups.astype(float)
    per_group = np.floor(np.maximum(plan.kv_budget, 0.0) / per_token)
    tokens = per_group * groups
    reserve = page_round(inp + out, block)
    servable = reserve[None, :] <= per_group[:, None]
    if engine.kv_reservation == "max":
        held = float(np.sum(w * reserve))
    else:
        dec = np.maximum(out - 1.0, 0.0)
        held = float(np.sum(w * dec * (inp + dec / 2.0)) / max(np.sum(w * dec), 1e-9))
    return tokens, tokens / max(held, 1.0), servable


def build(model, hw, engine, layout: Layout, prec, max_batch, inp, out, weights=None,
          population: tuple[np.ndarray, np.ndarray] | None = None, by=None, dispersion=None) -> LoadModel:
    """Tabulate what the load model needs for every placement: one oracle call over the distinct
    replica shapes (dp and the batch cap do not change a cycle's time).

    (inp, out, weights, by) is the sample whose mixture gives percentiles (Traffic.pairs); `population`
    (all requests, or a large random subset) gives the means and moments, exactly."""
    n = len(layout)
    inp, out = np.asarray(inp, float), np.asarray(out, float)
    w = np.full(inp.size, 1.0 / inp.size) if weights is None else np.asarray(weights, float) / np.sum(weights)
    pin, pout = (inp, out) if population is None else (np.asarray(population[0], float),
                                                         np.asarray(population[1], float))
    pw = w if population is None else np.full(pin.size, 1.0 / pin.size)
    max_batch = np.broadcast_to(np.asarray(max_batch, float), (n,))
    _, slots_kv, _ = kv_slots(model, hw, engine, layout, prec, pin, pout, pw)
    servable = kv_slots(model, hw, engine, layout, prec, inp, out, w)[2]
    slots = np.maximum(np.floor(np.minimum(max_batch, slots_kv)), 1.0)
    pdec = np.maximum(pout - 1.0, 0.0)
    ctx = float(np.sum(pw * pdec * (pin + (pdec + 1.0) / 2.0)) / np.sum(pw * pdec)) if np.any(pdec > 0) \
        else float(np.sum(pw * pin))
    budget = float(engine.max_num_tokens)
    shape = np.stack([layout.tp, layout.pp, layout.ep, layout.attn_dp.astype(np.int64)], axis=1)
    uniq, inverse = np.unique(shape, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    ulay = Layout(uniq[:, 0], uniq[:, 1], uniq[:, 2], np.ones(len(uniq), np.int64), uniq[:, 3].astype(bool))
    bg = b_grid(float(np.max(slots)))
    pg = p_grid(budget)
    mean_in = float(np.sum(pw * pin))
    # Two spans: prompts of the mean length (a cycle carrying several prompts) and one prompt (span >= p).
    both = step_table(model, hw, engine, ulay, prec, bg, [ctx], pg, [mean_in, 1e12]).t[:, :, 0]
    tab, ride = both[..., 1], both[..., 0]                                   # (shapes, nb, np)
    d0 = tab[:, :, 0]
    cap = np.maximum(budget - bg, 1.0)                                        # (nb,)
    rows = np.arange(bg.size)[:, None]

    def read(table, tokens):                                                  # table at (b, tokens[b, k])
        j, wp = bracket(pg, tokens)
        return table[:, rows, j] * (1 - wp) + table[:, rows, np.minimum(j + 1, pg.size - 1)] * wp

    def prompt_times(x):
        """(first-token cycles, time added alone, time added riding) of prompts of x tokens, (shapes, nb, len(x))."""
        nch = np.maximum(np.ceil(x[None, :] / cap[:, None]), 1.0)
        t_chunk = read(tab, x[None, :] / nch)
        base = np.minimum(mean_in, cap)[:, None] + np.zeros_like(nch)
        top = np.minimum(base + x[None, :], np.maximum(cap[:, None], base + 1.0))
        rider = np.maximum(read(ride, top) - read(ride, base), 0.0) * np.maximum(
            x[None, :] / np.maximum(top - base, 1.0), 1.0)[None]
        return nch[None] * t_chunk, nch[None] * np.maximum(t_chunk - d0[:, :, None], 0.0), rider

    def moments(x):
        return np.stack([x @ strata_w, (x ** 2) @ strata_w, (x ** 3) @ strata_w], axis=-1)

    first = prompt_times(inp)[0]
    # What a prompt adds to cycles depends on its length alone: moments over POPULATION_STRATA quantile
    # strata of the prompt lengths (each at its mean) are exact to second order within a stratum.
    order = np.argsort(pin, kind="stable")
    cuts = np.unique(np.linspace(0, pin.size, min(POPULATION_STRATA, pin.size) + 1).round().astype(int))
    strata_w = np.add.reduceat(pw[order], cuts[:-1])
    strata_in = np.add.reduceat((pw * pin)[order], cuts[:-1]) / strata_w
    _, alone, rider = prompt_times(strata_in)
    mean_dec = float(np.sum(pw * pdec))
    order = np.argsort(pdec)
    srt, ws = pdec[order], pw[order]
    above = np.cumsum(ws[::-1])[::-1] - ws              # weight of the longer lives
    # E[min(n1, n2)] for two independent draws, over the sorted population.
    peak = float(np.sum(srt * ws * (ws + 2.0 * above)) / mean_dec) if mean_dec > 0 else 1.0
    slope = np.gradient(d0, bg, axis=1) if bg.size > 1 else np.zeros_like(d0)
    return LoadModel(b=bg, d0=d0[inverse], slope=slope[inverse], first=first[inverse],
                     alone=moments(alone)[inverse], rider=moments(rider)[inverse],
                     chunk_cap=cap, slots=slots, servable=servable, inp=inp, out=out, weights=w,
                     metric_weights=_metric_weights(w, by),
                     replicas=layout.dp.astype(float), mean_in=mean_in,
                     cv_in2=float(np.sum(pw * (pin - mean_in) ** 2)) / max(mean_in, 1e-9) ** 2,
                     mean_dec=mean_dec, peakedness=peak, dispersion=dispersion)


def _metric_weights(w: np.ndarray, by) -> dict:
    by = np.full(w.size, -1) if by is None else np.asarray(by)
    out = {"e2e": w}
    for metric, half in (("ttft", 0), ("tpot", 1)):
        m = w * (by != 1 - half)
        out[metric] = m / m.sum() if m.sum() > 0 else w
    return out


@dataclass
class State:
    """The replica at one rate (arrays over placements, (n, K) for per-request terms)."""

    stable: np.ndarray
    batch: np.ndarray          # decode sequences in flight, time average
    cycle: np.ndarray          # mean cycle a decoding sequence sees = mean TPOT
    first: np.ndarray          # (n, K) the prompt's own cycles, until its first token
    busy: np.ndarray           # chance an arrival finds the replica running
    y_mu: np.ndarray           # lognormal of the wait before its own cycles when busy
    y_sigma: np.ndarray
    y_mean: np.ndarray
    y_var: np.ndarray
    p_wait: np.ndarray         # chance of waiting for a slot
    wait_rate: np.ndarray      # exponential rate of that wait
    tpot_var: np.ndarray       # (n, K)
    tpot_mean: np.ndarray      # (n, K) the mean cycle plus what the request's own prefill leaves behind
    weights: dict              # metric -> (K,) weights of the requests; unservable ones miss every SLO
    servable: np.ndarray       # (n, K)
    dec: np.ndarray            # (K,)
    extra: dict = field(default_factory=dict)


def _zero_prob(mean, peak) -> np.ndarray:
    """P(N = 0) of a count with this mean and variance/mean ratio `peak` (negative binomial; Poisson at 1)."""
    z = np.maximum(peak, 1.0 + 1e-9)
    with np.errstate(over="ignore", invalid="ignore"):
        nb = np.exp(-mean * np.log(z) / (z - 1.0))
    return np.where(peak <= 1.0 + 1e-6, np.exp(-mean), nb)


def _batch(lm: LoadModel, lam, peak, ca2, ren: dict) -> np.ndarray:
    """The decode batch b solving b = lam E[O - 1] D(b), D = T(b + z) / (1 - rho(b)), exactly for the
    piecewise-linear interpolation of the table: evaluate the map at every grid node, then take the
    first crossing (the stable solution); b = the slots when the map stays above them."""
    top = lm.slots[:, None]
    nodes = np.minimum(lm.b[None, :], top)                               # (n, nb)
    seen = np.minimum(nodes + peak[:, None], top)
    arrive = np.clip(nodes + peak[:, None] - 1.0, 0.0, top)
    d_seen = along(lm.d0, lm.b, seen)
    t0 = along(lm.d0, lm.b, np.maximum(arrive, 1.0))
    alone = along(lm.alone[..., 0], lm.b, arrive)
    rider = along(lm.rider[..., 0], lm.b, arrive)
    lam2 = lam[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # The share of prompts riding depends on the cycle: solved as a fixed point.
        cyc = loaded_cycle(lam2, ca2[:, None], t0, alone, rider, ren)
        rho = np.where(np.isfinite(cyc), 1.0 - t0 / cyc, np.inf)
        shared = np.where(top > 1, rho, 0.0)
        g = np.where(rho < 1, lam2 * lm.mean_dec * d_seen / (1 - shared), np.inf)
        h = np.minimum(g, top) - nodes                                   # >= 0 at b = 0
        down = (h[:, :-1] >= 0) & (h[:, 1:] < 0)
        j = np.where(down.any(axis=1), np.argmax(down, axis=1), nodes.shape[1] - 1)
        rows = np.arange(nodes.shape[0])
        h0, h1 = h[rows, j], h[rows, np.minimum(j + 1, nodes.shape[1] - 1)]
        b0, b1 = nodes[rows, j], nodes[rows, np.minimum(j + 1, nodes.shape[1] - 1)]
        frac = np.where(h0 - h1 > 0, h0 / (h0 - h1), 0.0)
        b = np.where(down.any(axis=1), b0 + frac * (b1 - b0), lm.slots)
    return b


def counts_dispersion(lm: LoadModel, ca2, m) -> np.ndarray:
    """Index of dispersion of one replica's arrival counts over windows of m expected arrivals. Round-
    robin hands a replica every dp-th arrival: its counts are the stream's over dp m arrivals, divided
    by dp. Without a trace, a renewal process: squared CV, 1 at a point."""
    m = np.maximum(np.asarray(m, float), 1e-9)
    if lm.dispersion is None:
        return ca2 + (1.0 - ca2) * -np.expm1(-m) / m
    grid, idc = lm.dispersion
    whole = np.interp(np.log(m * lm.replicas), np.log(grid), idc, left=idc[0], right=idc[-1])
    return np.maximum(whole / lm.replicas, ca2 * 0 + 1e-3)


def state(lm: LoadModel, lam, ca2, renewal: dict | None = None) -> State:
    """Solve the replica at per-replica rate `lam` (req/s) with arrival squared CV `ca2` (`renewal`:
    renewal_tables of the ca2 values, to reuse across calls)."""
    n = len(lm)
    lam = np.broadcast_to(np.asarray(lam, float), (n,))
    ca2 = np.broadcast_to(np.asarray(ca2, float), (n,))
    ren = renewal if renewal is not None else renewal_tables(ca2)
    # A decoding sequence sees itself plus the others: for a GI/G/inf population with peakedness z
    # (variance / mean), the others number b + z - 1 on average (b with Poisson arrivals). Over a
    # life, arrivals vary as their counts do over lam x life (slow swings of a trace's rate included).
    life = lm.mean_dec * along(lm.d0, lm.b, np.minimum(np.maximum(lam * lm.mean_dec * along(lm.d0, lm.b, np.ones(n)),
                                                                  1.0), lm.slots))
    disp = np.maximum(counts_dispersion(lm, ca2, lam * life), 1e-3)
    peak = np.maximum(1.0 + (disp - 1.0) * lm.peakedness, 1e-3)
    top = lm.slots
    b = _batch(lm, lam, peak, ca2, ren)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        seen = np.minimum(b + peak, top)
        arrive = np.clip(b + peak - 1.0, 0.0, top)
        t0 = along(lm.d0, lm.b, np.maximum(arrive, 1.0))
        cyc = loaded_cycle(lam, ca2, t0, along(lm.alone[..., 0], lm.b, arrive),
                           along(lm.rider[..., 0], lm.b, arrive), ren)
        m = _prompt_cost(lm, arrive, _per_cycle(lam, ca2, cyc, ren))
        rho_p = np.where(np.isfinite(cyc), lam * m[:, 0], np.inf)
        # With one slot no other prompt runs while a sequence decodes: no interference.
        shared = np.where(top > 1, rho_p, 0.0)
        dbar = np.where(rho_p < 1, along(lm.d0, lm.b, seen) / (1 - shared), np.inf)
        first = along(lm.first, lm.b, arrive)                            # (n, K)
        # Busy cycles: D' = T(b, 0) + the prompts that arrived during the previous cycle. Cumulants of
        # the stationary cycle from its generating function K(s) = s T0 + K(lam (M(s) - 1)), counts
        # over-dispersed by ca2 (a renewal process counts with variance ca2 x mean).
        m1, m2, m3 = m[:, 0], m[:, 1], m[:, 2]
        burst = (m2 - m1 * m1) + ca2 * m1 * m1
        k1 = np.where(rho_p < 1, t0 / (1 - rho_p), np.inf)
        k2 = lam * k1 * burst / np.maximum(1 - rho_p ** 2, 1e-12)
        k3 = (lam * k1 * m3 + 3 * rho_p * lam * burst * k2) / np.maximum(1 - rho_p ** 3, 1e-12)
        e2, e3 = k2 + k1 * k1, k3 + 3 * k2 * k1 + k1 ** 3
        # The cycle an arrival lands in is length-biased: D*, with E[D*] = E[D^2]/E[D], E[D*^2] = E[D^3]/E[D].
        ds1, ds2 = e2 / k1, e3 / k1
        var_ds = np.maximum(ds2 - ds1 * ds1, 0.0)
        r = lm.rider_stats(arrive)                                       # riders: prompts sharing our cycle
        # Arrivals cluster (bursty) or spread out (regular): within the cycle around an arrival there are
        # M(t) - lam t more companions than the rate says, before it and after it (renewal function).
        riders = np.maximum(lam * ds1 + 2 * renewal_excess(lam, ca2, ds1 / 2, ren), 0.0)
        ride_var = riders * ((r[:, 1] - r[:, 0] ** 2) + ca2 * r[:, 0] ** 2) + (lam * r[:, 0]) ** 2 * var_ds
        # Prompt tokens overflowing the budget wait for later cycles: a G/G/1 on tokens (Kingman).
        cap = np.interp(arrive, lm.b, lm.chunk_cap)
        rho_b = lam * lm.mean_in * k1 / cap
        wb = np.where(rho_b < 1, rho_b / (1 - rho_b) * (ca2 + lm.cv_in2) / 2 * k1 * lm.mean_in / cap, np.inf)
        # Busy on arrival: the rest of the cycle in progress (uniform share of D*), the riders, overflow.
        y_mean = ds1 / 2 + riders * r[:, 0] + wb
        y_var = ds2 / 3 - ds1 * ds1 / 4 + ride_var + lam * r[:, 0] * var_ds + wb * wb
        dec = lm.dec
        w = lm.weights
        in_system = lam * (first @ w + lm.mean_dec * dbar)
        busy = 1.0 - _zero_prob(in_system, peak)
        # Slots: a sequence holds one from admission to its last token, h = prefill + n cycles, and
        # cycles lengthen as the batch grows: D(N) linear between the mean batch and the full slots.
        hold_k = first + dec[None, :] * dbar[:, None]
        hold_mean = hold_k @ w
        hold = hold_mean + busy * y_mean
        cs2 = ((hold_k - hold_mean[:, None]) ** 2 @ w) / np.maximum(hold * hold, 1e-30)
        d_top = np.where(rho_p < 1, along(lm.d0, lm.b, top) / (1 - rho_p), np.inf)
        s_d = np.where(top > b + 1, (d_top - dbar) / np.maximum(top - b, 1.0), 0.0)
        alpha = lam * (hold - lm.mean_dec * s_d * b)
        beta = lam * lm.mean_dec * s_d
        pw, rho_s = slot_wait(top, alpha, beta, peak)
        # Regular arrivals (round-robin over replicas) find the slots full less often than the time
        # average: GI/M/c's sigma (for Gamma gaps) scales the chance and sets the conditional wait,
        # Exp(c mu (1 - sigma)), lengthened by the hold-time variability as in Allen-Cunneen.
        sigma = gi_sigma(rho_s, ca2)
        pw = np.where(ca2 < 1, pw * sigma / np.maximum(rho_s, 1e-12), pw)
        mu_c = top / (hold + lm.mean_dec * (d_top - dbar))
        spread = np.where(ca2 < 1, (1 + cs2) / 2, (ca2 + cs2) / 2)
        rate = np.where(rho_s < 1, mu_c * (1 - np.where(ca2 < 1, sigma, rho_s)) / np.maximum(spread, 1e-9), 0.0)
        # TPOT: prefills landing during a life of n cycles (a prefill lengthens the life, so more land:
        # amplified by 1 / (1 - rho)^2), and the drift of the decode batch averaged over the life.
        nk = np.maximum(dec, 1.0)[None, :]
        amp = 1.0 / np.maximum(1 - shared, 1e-6) ** 2
        disp_life = counts_dispersion(lm, ca2, lam * lm.mean_dec * dbar)
        burst_life = (m2 - m1 * m1) + disp_life * m1 * m1
        var_pf = (np.where(top > 1, lam, 0.0) * dbar * burst_life * amp)[:, None] / nk
        # The others a sequence sees number at most slots - 1: their variance vanishes at both ends.
        var_n = np.maximum(b * peak * (1 - b / top) * (top - 1) / top, 0.0)
        slope = along(lm.slope, lm.b, seen)
        avg = window_average_factor(nk / max(lm.mean_dec, 1e-9))
        tpot_var = var_pf + (slope * slope * var_n * amp)[:, None] * avg
        # The cycle after a request's own prefill carries the prompts that arrived during it (more than
        # an average cycle does), and the excess fades by rho per cycle: its life is longer by
        # (lam (own cycle - mean cycle) + companions) E[prompt cost] / (1 - rho).
        own = first + (riders * r[:, 0])[:, None]
        after = (lam[:, None] * (own - k1[:, None]) + renewal_excess(lam, ca2, np.inf, ren)[:, None]) * m1[:, None]
        excess = np.where(top > 1, 1.0, 0.0)[:, None] * np.maximum(after, 0.0) / np.maximum(1 - shared, 1e-6)[:, None]
        tpot_mean = dbar[:, None] + excess / nk
    stable = (rho_p < 1) & (rho_s < 1) & (rho_b < 1) & np.isfinite(dbar) & np.isfinite(y_mean)
    y_mu, y_sigma = lognormal(y_mean, y_var)
    return State(stable, b, dbar, first, busy, y_mu, y_sigma, y_mean, y_var, pw, rate, tpot_var, tpot_mean,
                 lm.metric_weights, lm.servable, dec,
                 {"rho_prefill": rho_p, "rho_slots": rho_s, "rho_budget": rho_b, "cycle": k1,
                  "d_star": ds1, "d_star2": ds2})


def _per_cycle(lam, ca2, cyc, ren) -> np.ndarray:
    """Arrivals a prompt finds in its cycle, itself included: the rate's share of the cycle plus the
    renewal excess before and after it (clustered arrivals bring companions, regular ones fewer)."""
    return lam * cyc + 2 * renewal_excess(lam, ca2, cyc / 2, ren)


def loaded_cycle(lam, ca2, t0, alone, rider, ren, steps: int = 8) -> np.ndarray:
    """The mean cycle D under prompt load: D = T0 + D rho(D), rho(D) = lam (f alone + (1 - f) rider),
    where f = (1 - e^-a) / a is the share of prompts that are the first in their cycle (a = arrivals
    per cycle, `_per_cycle`): a longer cycle gathers more prompts, which share its one fixed cost
    (`alone`, e.g. an eager step's kernel launches) and add only their riding cost. Time balance:
    over a cycle the replica decodes for T0 and computes what the prompts that arrived add.

    The right side grows with D, but more slowly once prompts share cycles (concave when a prompt alone
    costs more than one riding), so the smallest root is the only one. It is bracketed and found by
    false position (Illinois), not by iterating D = T0 / (1 - rho(D)), which overshoots when one
    prompt alone costs more than a decode cycle (rho > 1 at T0) and oscillates between that and the
    riders' load. inf where no root exists (riding prompts alone saturate the replica)."""
    lam, ca2, t0, alone, rider = np.broadcast_arrays(*(np.asarray(v, float) for v in (lam, ca2, t0, alone, rider)))
    t0 = np.maximum(t0, 1e-12)

    def gap(c):                              # T0 + c rho(c) - c: > 0 below the root, < 0 above
        a = np.maximum(_per_cycle(lam, ca2, c, ren), 1e-12)
        f = np.where(a < 1e-6, 1.0, -np.expm1(-a) / a)
        return t0 + c * lam * (f * alone + (1 - f) * rider) - c

    # c rho(c) <= 1.3 alone + lam c rider: lam c f = (lam c / a)(1 - e^-a) <= 1 when a >= lam c
    # (ca2 >= 1), <= 1.3 when regular arrivals make a as low as lam c - 1.
    ride = lam * rider
    saturated = ride >= 1
    lo, hi = t0.copy(), np.where(saturated, 2 * t0, (t0 + 1.3 * alone) / np.maximum(1 - ride, 1e-12) * 1.01 + 1e-12)
    g_lo, g_hi = gap(lo), gap(hi)
    for _ in range(8):                       # the bound is loose by the tables' interpolation at most
        short = (g_hi >= 0) & ~saturated
        if not np.any(short):
            break
        hi = np.where(short, hi * 2, hi)
        g_hi = np.where(short, gap(hi), g_hi)
    bad = saturated | (g_hi >= 0)
    done = g_lo <= 0                         # no load: D = T0
    side = np.zeros(lo.shape, int)
    for _ in range(steps):
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(g_lo - g_hi > 0, hi + g_hi * (hi - lo) / (g_lo - g_hi), 0.5 * (lo + hi))
        x = np.clip(np.nan_to_num(x, nan=0.0), lo, hi)
        g = gap(x)
        right = g < 0
        # Illinois: when the same end moves twice, halve the other end's value.
        g_lo = np.where(right & (side == 1), g_lo / 2, g_lo)
        g_hi = np.where(~right & (side == -1), g_hi / 2, g_hi)
        hi, g_hi = np.where(right, x, hi), np.where(right, g, g_hi)
        lo, g_lo = np.where(right, lo, x), np.where(right, g_lo, g)
        side = np.where(right, 1, -1)
    out = np.where(np.abs(g_lo) < np.abs(g_hi), lo, hi)
    return np.where(done, t0, np.where(bad, np.inf, out))


def _prompt_cost(lm: LoadModel, arrive, per_cycle) -> np.ndarray:
    """(n, 3) moments of the time a prompt adds to the replica: alone in its cycle with the chance a
    cycle's first prompt is (1 - e^-a) / a for a = arrivals per cycle (Poisson; clustered arrivals
    count their companions), riding otherwise."""
    a = np.maximum(np.asarray(per_cycle, float), 1e-12)
    f = np.where(a < 1e-6, 1.0, -np.expm1(-a) / a)[:, None]
    alone = along(lm.alone, lm.b, arrive)
    rider = along(lm.rider, lm.b, arrive)
    return f * alone + (1 - f) * rider


def _mix(per_request: np.ndarray, st: State, metric: str, mask=None) -> np.ndarray:
    """Average over the length sample (last axis) with the metric's weights; 0 where unstable."""
    wm = st.weights[metric]
    w = wm[None, :] * st.servable
    total = 1.0
    if mask is not None:
        w = w * mask[None, :]
        total = max(float(np.sum(wm * mask)), 1e-30)
    if per_request.ndim == 3:
        w = w[:, None, :]
    mixed = np.sum(w * per_request, axis=-1) / total
    stable = st.stable if mixed.ndim == 1 else st.stable[:, None]
    return np.where(stable, mixed, 0.0)


def _slot_tail(gap, rate) -> np.ndarray:
    """P(W <= gap) for an exponential W of this rate."""
    return np.where(gap > 0, -np.expm1(-rate * np.maximum(gap, 0.0)), 0.0)


def _shape(lm: LoadModel, st: State, metric: str):
    """(shift, mu, sigma, idle share) of the per-request latency: shift + lognormal, with the prompt
    starting at once (no lognormal part) on an idle replica. Cached on the state."""
    key = "shape_" + metric
    if key not in st.extra:
        u = st.busy[:, None]
        if metric == "ttft":
            st.extra[key] = (st.first, st.y_mu[:, None], st.y_sigma[:, None], 1 - u)
        else:
            mean_k = u * st.y_mean[:, None] + st.dec[None, :] * st.tpot_mean
            var_k = u * (st.y_var[:, None] + st.y_mean[:, None] ** 2) - (u * st.y_mean[:, None]) ** 2 \
                + st.dec[None, :] ** 2 * st.tpot_var
            mu, sigma = lognormal(mean_k, var_k)
            st.extra[key] = (st.first, mu, sigma, np.zeros_like(u))
    return st.extra[key]


def cdf(lm: LoadModel, st: State, metric: str, x) -> np.ndarray:
    """P(metric <= x) over requests per placement; x is a scalar, one value per placement (n,), or
    several per placement (n, Q), and the result has x's shape (at least (n,))."""
    x = np.asarray(x, float)
    several = x.ndim == 2
    x = x if several else np.broadcast_to(x, st.batch.shape)[:, None]       # (n, Q)
    xs = x[:, :, None]                                                     # (n, Q, 1) against K requests
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if metric == "tpot":
            if "shape_tpot" not in st.extra:
                st.extra["shape_tpot"] = lognormal(st.tpot_mean, st.tpot_var)
            mu, sigma = st.extra["shape_tpot"]
            out = _mix(lognormal_cdf(xs, mu[:, None], sigma[:, None]), st, metric, mask=(st.dec >= 1))
            return out if several else out[:, 0]
        shift, mu, sigma, idle = _shape(lm, st, metric)
        gap = xs - shift[:, None, :]                                       # (n, Q, K)
        per = idle[:, None] * (gap >= 0) + (1 - idle[:, None]) * lognormal_cdf(gap, mu[:, None], sigma[:, None])
        # Waiting for a slot: only where it is likely enough to matter (K x NODES per placement).
        rows = np.flatnonzero(st.p_wait > 1e-9)
        if rows.size:
            key = "nodes_" + metric
            if key not in st.extra:
                m, sg = np.broadcast_arrays(mu, sigma)
                st.extra[key] = lognormal_nodes(m, sg, NODES)              # (n, 1 or K, NODES)
            nodes = st.extra[key][rows][:, None]                           # (r, 1, 1|K, NODES)
            rate = st.wait_rate[rows, None, None]
            g = gap[rows]
            busy_wait = np.mean(_slot_tail(g[..., None] - nodes, rate[..., None]), axis=-1)
            ir = idle[rows][:, None]
            pw = st.p_wait[rows, None, None]
            per[rows] = (1 - pw) * per[rows] + pw * (ir * _slot_tail(g, rate) + (1 - ir) * busy_wait)
        out = _mix(per, st, metric)
        return out if several else out[:, 0]


def mean(lm: LoadModel, st: State, metric: str) -> np.ndarray:
    wait = np.where(st.wait_rate > 0, st.p_wait / np.maximum(st.wait_rate, 1e-30), np.inf)
    ttft = st.first @ st.weights["ttft"] + st.busy * st.y_mean + wait
    if metric == "ttft":
        out = ttft
    elif metric == "tpot":
        valid = (st.dec >= 1) * st.weights["tpot"]
        out = st.tpot_mean @ valid / max(float(valid.sum()), 1e-30)
    else:
        out = ttft + (st.dec[None, :] * st.tpot_mean) @ st.weights["e2e"]
    unservable = ~np.all(st.servable, axis=1)
    return np.where(st.stable & ~unservable, out, np.inf)


def meets(lm: LoadModel, st: State, targets: list[Target]) -> np.ndarray:
    return failing(lm, st, targets) == ""


def failing(lm: LoadModel, st: State, targets: list[Target]) -> np.ndarray:
    """Per placement, the first target missed ("capacity" when the replica is unstable), "" if none."""
    out = np.where(st.stable, "", "capacity").astype(object)
    for t in targets:
        ok = mean(lm, st, t.metric) <= t.limit if t.quantile is None else \
            cdf(lm, st, t.metric, t.limit) >= t.quantile - 1e-9
        out = np.where((out == "") & ~ok, t.name, out)
    return out


def percentile(lm: LoadModel, st: State, metric: str, q) -> np.ndarray:
    """Quantiles q (0..1, a scalar or a sequence) of a metric per placement, by bisection on the CDF
    in log space: shape (n,) or (n, len(q)); inf when unstable or when more than 1 - q of the
    requests can never be served."""
    qs = np.atleast_1d(np.asarray(q, float))[None, :]
    n = st.batch.size
    hi = np.maximum(mean(lm, st, metric), 1e-6)[:, None] * 4 + 1.0
    hi = np.broadcast_to(np.where(np.isfinite(hi), hi, 1.0), (n, qs.size)).copy()
    for _ in range(40):                      # grow the bracket until it holds the quantile
        short = (cdf(lm, st, metric, hi) < qs) & st.stable[:, None]
        if not np.any(short):
            break
        hi = np.where(short, hi * 8, hi)
    lo = hi * 1e-7
    for _ in range(24):
        mid = np.sqrt(lo * hi)
        below = cdf(lm, st, metric, mid) < qs
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    reach = cdf(lm, st, metric, hi) >= qs - 1e-6
    out = np.where(st.stable[:, None] & reach, hi, np.inf)
    return out if np.ndim(q) else out[:, 0]


def capacity(lm: LoadModel) -> np.ndarray:
    """An upper bound on the stable per-replica rate: decode alone at the full slots, or prefill alone."""
    d_full = along(lm.d0, lm.b, lm.slots)
    decode = lm.slots / max(lm.mean_dec, 1e-9) / np.maximum(d_full, 1e-12)
    prefill = 1.0 / np.maximum(np.min(np.minimum(lm.alone[..., 0], lm.rider[..., 0]), axis=1), 1e-12)
    return np.minimum(decode, prefill)


def goodput(lm: LoadModel, targets: list[Target], cv: float) -> tuple[np.ndarray, np.ndarray]:
    """(per-replica goodput in req/s, the target that binds): the highest rate at which every target
    holds, 0 when none does, and the first target missed just past it ("capacity" when the replica
    saturates first). Arrivals reach each of the dp replicas round-robin: squared CV cv^2 / dp."""
    ca2 = cv * cv / lm.replicas
    ren = renewal_tables(ca2)

    def at(rate):
        return failing(lm, state(lm, rate, ca2, ren), targets)

    hi = capacity(lm) * 2.0
    miss = at(hi)
    for _ in range(20):                      # make sure `hi` fails
        if np.all(miss != ""):
            break
        hi = np.where(miss == "", hi * 2, hi)
        miss = at(hi)
    lo = hi * 1e-5
    low = at(lo)
    for _ in range(BISECTION_STEPS):
        mid = np.sqrt(lo * hi)
        m = at(mid)
        ok = m == ""
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
        miss = np.where(ok, miss, m)
    ok = low == ""
    return np.where(ok, lo, 0.0), np.where(ok, miss, low).astype(str)
