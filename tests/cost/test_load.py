import math

import numpy as np
import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost import load as L
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.cost.queueing import gi_sigma, lognormal, slot_wait, window_average_factor
from parasearch.cost.steptable import step_table
from parasearch.traffic.model import Traffic
from parasearch.traffic.trace import read_trace
from tests.conftest import ROOT

ENGINE = load_engine("reference")
MODEL = load_model("llama-3.1-8b")
HW = load_hardware("h100-sxm")
PREC = Precision("bf16", "bf16")
TRACE = read_trace(ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv")
SLO = [L.Target("ttft", "p99", 2.0), L.Target("tpot", "p90", 0.03)]


def erlang_c(c: int, a: float) -> float:
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


def test_slot_waiting_is_erlang_c_when_cycles_do_not_slow_with_the_batch():
    for c, a in ((1, 0.5), (4, 2.0), (16, 12.0), (40, 36.0)):
        p, rho = slot_wait(np.array([c]), np.array([a]), np.array([0.0]), np.array([1.0]))
        assert rho[0] == pytest.approx(a / c) and p[0] == pytest.approx(erlang_c(c, a), rel=1e-4)
    # A batch that slows its cycles as it grows waits more at the same offered load.
    slow, _ = slot_wait(np.array([16]), np.array([8.0]), np.array([0.2]), np.array([1.0]))
    assert slow[0] > erlang_c(16, 8.0)


def test_queueing_helpers():
    assert gi_sigma(np.array([0.3, 0.8]), 1.0) == pytest.approx([0.3, 0.8])     # Poisson: PASTA
    regular = gi_sigma(np.array([0.3, 0.8]), 0.25)
    assert np.all(regular < [0.3, 0.8]) and np.all(regular > 0)
    mu, s = lognormal(np.array([2.0]), np.array([1.0]))
    assert math.exp(mu[0] + s[0] ** 2 / 2) == pytest.approx(2.0) and (math.exp(s[0] ** 2) - 1) * 4 == pytest.approx(1)
    assert window_average_factor(np.array([1e-6]))[0] == pytest.approx(1.0)
    assert window_average_factor(np.array([1e4]))[0] == pytest.approx(2e-4, rel=1e-3)


def model_for(max_batch=128, tp=1, traffic=None):
    tf = traffic or Traffic(TRACE.input_tokens, TRACE.output_tokens, 1.09, "trace", trace=TRACE)
    i, o, w, by = tf.pairs()
    return L.build(MODEL, HW, ENGINE, Layout.of(tp=tp), PREC, [max_batch], i, o, w, tf.population(), by)


def test_at_light_load_latencies_are_those_of_a_lone_request():
    lm = model_for()
    st = L.state(lm, 1e-4, 1.0)
    median_prompt = float(np.median(TRACE.input_tokens))
    ctx = float(np.median(TRACE.input_tokens + TRACE.output_tokens / 2))
    t = step_table(MODEL, HW, ENGINE, Layout.of(), PREC, [0, 1], [ctx], [0, median_prompt]).t[0, :, 0, :]
    assert L.percentile(lm, st, "ttft", 0.5)[0] == pytest.approx(t[0, 1], rel=0.05)   # the prompt alone
    assert L.mean(lm, st, "tpot")[0] == pytest.approx(t[1, 0], rel=0.05)             # one sequence decoding


def test_latencies_grow_with_the_rate_and_the_goodput_is_where_an_slo_breaks():
    lm = model_for()
    p99 = [L.percentile(lm, L.state(lm, r, 1.2), "ttft", 0.99)[0] for r in (2, 6, 10)]
    p90 = [L.percentile(lm, L.state(lm, r, 1.2), "tpot", 0.9)[0] for r in (2, 6, 10)]
    assert p99 == sorted(p99) and p90 == sorted(p90) and p90[0] < p90[-1]
    g, binds = L.goodput(lm, SLO, 1.09)
    assert g[0] > 0 and binds[0] in ("p99-ttft", "p90-tpot")
    assert L.meets(lm, L.state(lm, g * 0.99, 1.09 ** 2), SLO)[0]
    assert not L.meets(lm, L.state(lm, g * 1.05, 1.09 ** 2), SLO)[0]
    # A tighter TPOT limit lowers the goodput; more room in the batch raises the capacity.
    tighter, _ = L.goodput(lm, [L.Target("tpot", "p90", 0.02)], 1.09)
    assert tighter[0] < g[0]
    assert L.capacity(model_for(max_batch=256))[0] > L.capacity(lm)[0]


def test_bursty_arrivals_give_less_goodput_than_poisson_at_the_same_lengths():
    lm = model_for()
    poisson, _ = L.goodput(lm, SLO, 1.0)
    bursty, _ = L.goodput(lm, SLO, 2.0)
    assert bursty[0] < 0.95 * poisson[0]


def test_requests_that_can_never_fit_count_against_the_percentiles():
    huge = Traffic(np.array([500] * 95 + [2_000_000] * 5), np.array([100] * 100), 1.0, "poisson")
    lm = model_for(traffic=huge)
    st = L.state(lm, 0.1, 1.0)
    assert not lm.servable[0].all()
    assert np.isinf(L.percentile(lm, st, "ttft", 0.99)[0]) and np.isfinite(L.percentile(lm, st, "ttft", 0.9)[0])


def test_loaded_cycle_is_the_root_of_the_time_balance_even_when_a_prompt_costs_several_cycles():
    """D = T0 + D rho(D): checked against the smallest root on a dense grid, for prompts that cost up to
    ten decode cycles alone (eager mixed steps) and little riding, at rates from idle to saturated."""
    from parasearch.cost.queueing import renewal_tables

    rng = np.random.default_rng(7)
    n = 400
    lam = rng.uniform(0.1, 400.0, n)
    ca2 = rng.choice([0.25, 1.0, 4.0], n)
    t0 = rng.uniform(0.003, 0.05, n)
    alone = t0 * rng.uniform(0.0, 10.0, n)
    rider = alone * rng.uniform(0.0, 0.3, n) * rng.uniform(0.0, 1.0, n) ** 4
    ren = renewal_tables(np.unique(ca2))
    got = L.loaded_cycle(lam, ca2, t0, alone, rider, ren)
    grid = np.geomspace(1e-3, 1e3, 40001)
    for k in range(n):
        a = np.maximum(L._per_cycle(lam[k], ca2[k], grid, ren), 1e-12)
        f = -np.expm1(-a) / a
        gap = t0[k] + grid * lam[k] * (f * alone[k] + (1 - f) * rider[k]) - grid
        past = np.flatnonzero((grid >= t0[k]) & (gap < 0))
        want = grid[past[0]] if past.size and lam[k] * rider[k] < 1 else math.inf
        assert got[k] == pytest.approx(want, rel=1e-3), k
    # The cycle lengthens with the rate (the naive iteration fell back towards T0 at high rates).
    rates = np.linspace(1.0, 200.0, 60)
    cyc = L.loaded_cycle(rates, 1.0, 0.008, 0.03, 1e-4, renewal_tables([1.0]))
    assert np.all(np.diff(cyc) > 0) and cyc[-1] > 3.5 * 0.008
