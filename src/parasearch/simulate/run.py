"""Run the scheduler simulation for a placement: requests from a trace or an arrival process, split
round-robin over the replicas, replayed against the oracle's step times; percentiles and goodput."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..cost.layout import Layout
from ..cost.load import Target, kv_slots
from ..cost.memory import kv_bytes_per_sequence
from ..cost.steptable import StepTable, b_grid, l_grid, p_grid, step_table
from ..traffic.model import Traffic
from .engine import Cycle, run_replica

WARMUP = 0.1          # share of the first requests left out of the statistics (the cache starts empty)
PERCENTILES = (50, 90, 99)


@dataclass
class SimResult:
    arrival: np.ndarray
    ttft: np.ndarray          # NaN: never served
    tpot: np.ndarray          # NaN for single-token outputs
    e2e: np.ndarray
    output: np.ndarray
    rate: float
    seconds: float            # wall time of the simulation
    stats: dict = field(default_factory=dict)

    @property
    def measured(self) -> np.ndarray:
        """Requests counted in the statistics: all but the first WARMUP share."""
        m = np.ones(self.arrival.size, bool)
        m[: int(self.arrival.size * WARMUP)] = False
        return m

    def values(self, metric: str) -> np.ndarray:
        v = getattr(self, metric)[self.measured]
        if metric == "tpot":
            v = v[self.output[self.measured] >= 2]
        return np.where(np.isnan(v), np.inf, v)     # an unserved request misses every SLO

    def percentile(self, metric: str, q: float) -> float:
        v = self.values(metric)
        return float(np.quantile(v, q, method="higher")) if v.size else float("nan")

    def mean(self, metric: str) -> float:
        return float(np.mean(self.values(metric)))

    def summary(self) -> dict:
        out = {"rate_rps": self.rate, "requests": int(self.arrival.size),
               "measured": int(self.measured.sum()), "unserved": int(np.isnan(self.e2e).sum())}
        for m in ("ttft", "tpot", "e2e"):
            out[m] = {"mean": self.mean(m), **{f"p{q}": self.percentile(m, q / 100) for q in PERCENTILES}}
        out["throughput_rps"] = float(np.sum(~np.isnan(self.e2e)) / max(np.nanmax(self.arrival + self.e2e), 1e-9))
        out["sim_seconds"] = self.seconds
        out.update(self.stats)
        return out

    def meets(self, targets: list[Target]) -> bool:
        for t in targets:
            got = self.mean(t.metric) if t.quantile is None else self.percentile(t.metric, t.quantile)
            if not got <= t.limit:
                return False
        return True


@dataclass(frozen=True)
class Replica:
    """What the simulator needs about one replica of a placement."""

    cycle: Cycle
    max_seqs: int
    kv_tokens: float
    kv_group_tokens: float
    table: StepTable


def replica(model, hw, engine, prec, layout: Layout, max_batch: int, traffic: Traffic) -> Replica:
    """Tabulate a placement's cycle times over the decode batches, contexts and prompt tokens it will see."""
    lay = layout.take([0])
    inp, out = traffic.input_tokens.astype(float), traffic.output_tokens.astype(float)
    tokens, _, _ = kv_slots(model, hw, engine, lay, prec, inp, out)
    groups = float(lay.attn_groups[0])
    ctx_hi = float(np.max(inp + out))
    c = np.unique(np.geomspace(max(float(np.min(inp)), 16.0), max(ctx_hi, 32.0), 6).round())
    span = 2.0 * float(np.max(inp))             # a later chunk of the longest prompt spans up to about this
    table = step_table(model, hw, engine, lay, prec, b_grid(max_batch), c, p_grid(engine.max_num_tokens),
                       l_grid(span))
    return Replica(Cycle(table), int(max_batch), float(tokens[0]), float(tokens[0]) / groups, table)


def simulate(model, hw, engine, prec, layout: Layout, max_batch: int, traffic: Traffic, rate: float,
             requests: int = 20_000, seed: int = 0, rep: Replica | None = None) -> SimResult:
    """Aggregated serving: `dp` replicas, requests assigned round-robin, `rate` req/s over the group."""
    rep = rep or replica(model, hw, engine, prec, layout, max_batch, traffic)
    t0 = time.perf_counter()
    arr, inp, out = traffic.requests(requests, rate, seed)
    dp = int(layout.dp[0])
    first = np.full(requests, np.nan)
    last = np.full(requests, np.nan)
    stats: dict = {"events": 0, "preemptions": 0, "dropped": 0}
    for r in range(dp):
        idx = np.arange(r, requests, dp)
        f, l, st = run_replica(arr[idx], inp[idx], out[idx], rep.cycle, max_seqs=rep.max_seqs,
                               budget=engine.max_num_tokens, kv_tokens=rep.kv_tokens,
                               kv_group_tokens=rep.kv_group_tokens, policy=engine.kv_reservation,
                               block=engine.kv_block_tokens)
        first[idx], last[idx] = f, l
        for k in stats:
            stats[k] += st[k]
    return _result(arr, first, last, out, rate, time.perf_counter() - t0, stats)


def _result(arr, first, last, out, rate, seconds, stats) -> SimResult:
    ttft = first - arr
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out >= 2, (last - first) / np.maximum(out - 1, 1), np.nan)
    return SimResult(arr, ttft, tpot, last - arr, out.astype(float), rate, seconds, stats)


def simulate_disaggregated(model, engine, prec, prefill: tuple, decode: tuple, traffic: Traffic, rate: float,
                           link_bytes_per_s: float, link_latency_s: float = 0.0, requests: int = 20_000,
                           seed: int = 0) -> SimResult:
    """Disaggregated serving: prefill replicas compute prompts (a request's first token leaves there),
    ship the prompt's KV cache over their link (one transfer at a time per replica), and decode
    replicas generate the rest. `prefill` and `decode` are (hardware, layout, max_batch) of each role;
    each layout's dp is that role's replica count."""
    (hw_p, lay_p, mb_p), (hw_d, lay_d, mb_d) = prefill, decode
    rp = replica(model, hw_p, engine, prec, lay_p, mb_p, traffic)
    rd = replica(model, hw_d, engine, prec, lay_d, mb_d, traffic)
    t0 = time.perf_counter()
    arr, inp, out = traffic.requests(requests, rate, seed)
    first = np.full(requests, np.nan)
    ready = np.full(requests, np.nan)
    stats: dict = {"events": 0, "preemptions": 0, "dropped": 0}
    whole = Layout.of()
    for r in range(int(lay_p.dp[0])):
        idx = np.arange(r, requests, int(lay_p.dp[0]))
        f, _, st = run_replica(arr[idx], inp[idx], out[idx], rp.cycle, max_seqs=rp.max_seqs,
                               budget=engine.max_num_tokens, kv_tokens=rp.kv_tokens,
                               kv_group_tokens=rp.kv_group_tokens, policy=engine.kv_reservation,
                               block=engine.kv_block_tokens, mode="prefill")
        first[idx] = f
        for k in stats:
            stats[k] += st[k]
        # The replica's link sends one request's KV at a time, in the order prompts finish.
        size = kv_bytes_per_sequence(model, whole.take(np.zeros(idx.size, int)), prec.kv_cache, inp[idx])
        free = 0.0
        for j in np.argsort(f, kind="stable"):
            if np.isnan(f[j]):
                continue
            start = max(f[j], free)
            free = start + size[j] / link_bytes_per_s
            ready[idx[j]] = free + link_latency_s
    last = np.full(requests, np.nan)
    ok = ~np.isnan(ready)
    order = np.flatnonzero(ok)[np.argsort(ready[ok], kind="stable")]
    dd = int(lay_d.dp[0])
    for r in range(dd):
        idx = order[r::dd]
        _, l, st = run_replica(ready[idx], inp[idx], out[idx], rd.cycle, max_seqs=rd.max_seqs,
                               budget=engine.max_num_tokens, kv_tokens=rd.kv_tokens,
                               kv_group_tokens=rd.kv_group_tokens, policy=engine.kv_reservation,
                               block=engine.kv_block_tokens, mode="decode")
        last[idx] = np.where(out[idx] >= 2, l, first[idx])
        for k in stats:
            stats[k] += st[k]
    return _result(arr, first, last, out, rate, time.perf_counter() - t0, stats)


def goodput(run, targets: list[Target], hi: float, steps: int = 10, lo: float | None = None) -> float:
    """The highest rate at which `run(rate)` (a SimResult) meets every target, by bisection between
    `lo` and `hi` (req/s). Every run replays the same requests (common random numbers), so results
    move smoothly with the rate. 0 when even `lo` fails."""
    lo = lo if lo is not None else hi / 64
    if not run(lo).meets(targets):
        return 0.0
    while run(hi).meets(targets):
        lo, hi = hi, hi * 2
    for _ in range(steps):
        mid = (lo * hi) ** 0.5
        if run(mid).meets(targets):
            lo = mid
        else:
            hi = mid
    return (lo * hi) ** 0.5
