import numpy as np
import pytest

from parasearch.traffic.arrivals import arrival_times, round_robin_cv
from parasearch.traffic.model import Traffic
from parasearch.traffic.trace import read_trace
from tests.conftest import ROOT

AZURE = ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv"


@pytest.mark.parametrize("cv", [1.0, 2.0, 0.5])
def test_renewal_arrivals_have_the_rate_and_burstiness_asked_for(cv):
    t = arrival_times(40_000, rate=8.0, cv=cv, seed=3)
    gaps = np.diff(t)
    assert t[0] == 0 and (len(t) - 1) / t[-1] == pytest.approx(8.0, rel=0.03)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(cv, rel=0.05)


def test_round_robin_makes_each_replica_see_more_regular_arrivals():
    # Every 4th arrival of a Poisson stream: Erlang-4 gaps, CV 1/2.
    t = arrival_times(80_000, rate=1.0, cv=1.0, seed=1)[::4]
    g = np.diff(t)
    assert np.std(g) / np.mean(g) == pytest.approx(float(round_robin_cv(1.0, 4)), rel=0.05)


def test_the_length_sample_keeps_means_tails_and_weights():
    tr = read_trace(AZURE)
    tf = Traffic(tr.input_tokens, tr.output_tokens, 1.09, "trace", trace=tr)
    i, o, w, by = tf.pairs(96)
    assert i.size == o.size == w.size <= 96 and w.sum() == pytest.approx(1.0) and set(by) == {0, 1}
    # Every point is a real request of the trace, and the tails are there.
    pairs = set(zip(tr.input_tokens.tolist(), tr.output_tokens.tolist()))
    assert all((int(a), int(b)) in pairs for a, b in zip(i, o))
    assert i.max() >= np.percentile(tr.input_tokens, 99.5) and o.min() <= np.percentile(tr.output_tokens, 0.5)
    # Each half follows its own length's distribution closely (TTFT reads one, TPOT the other): the
    # largest gap between its weighted distribution function and the trace's is under 5 points.
    for x, full, half in ((i, tr.input_tokens, 0), (o, tr.output_tokens, 1)):
        sel = by == half
        grid = np.unique(full)
        mine = np.array([w[sel][x[sel] <= g].sum() for g in grid]) / w[sel].sum()
        theirs = np.searchsorted(np.sort(full), grid, side="right") / full.size
        assert np.max(np.abs(mine - theirs)) < 0.05


def test_requests_replay_the_trace_in_order_at_the_asked_rate_and_repeat_it():
    tr = read_trace(AZURE)
    tf = Traffic(tr.input_tokens, tr.output_tokens, 1.09, "trace", trace=tr)
    t, i, o = tf.requests(5000, rate=20.0)
    assert list(i[:3002]) == list(tr.input_tokens) and list(i[3002:3010]) == list(tr.input_tokens[:8])
    assert np.all(np.diff(t) >= 0) and 3001 / t[3001] == pytest.approx(20.0, rel=0.01)
    # Synthetic traffic: lengths drawn from the sample, arrivals from the process.
    syn = Traffic(np.array([100, 200]), np.array([10, 20]), 2.0, "gamma")
    t, i, o = syn.requests(20_000, rate=5.0, seed=2)
    assert set(np.unique(i)) == {100, 200} and np.std(np.diff(t)) / np.mean(np.diff(t)) == pytest.approx(2, rel=0.1)
