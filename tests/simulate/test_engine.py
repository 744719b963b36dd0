import numpy as np
import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.cost.steptable import StepTable
from parasearch.simulate.engine import Cycle, run_replica
from parasearch.simulate.run import replica, simulate, simulate_disaggregated
from parasearch.traffic.model import Traffic

ENGINE = load_engine("reference")
MODEL = load_model("llama-3.1-8b")
HW = load_hardware("h100-sxm")
PREC = Precision("bf16", "bf16")


def linear_cycle(a=0.01, per_seq=1e-4, per_token=2e-5) -> Cycle:
    """A made-up step table whose cycles are a + per_seq x b + per_token x p, exact under interpolation."""
    b, c, p, l = np.array([0.0, 4096]), np.array([1.0, 1e6]), np.array([0.0, 1e5]), np.array([1.0, 1e6])
    t = a + per_seq * b[:, None, None, None] + per_token * p[None, None, :, None] + 0 * c[None, :, None, None] \
        + 0 * l[None, None, None, :]
    return Cycle(StepTable(b, c, p, t[None], l))


def test_a_lone_request_takes_its_prompt_cycle_then_one_cycle_per_token():
    cyc = linear_cycle()
    f, last, st = run_replica([1.0], [1000], [11], cyc, max_seqs=8, budget=8192, kv_tokens=1e6)
    assert f[0] == pytest.approx(1.0 + 0.01 + 2e-5 * 1000)          # the prompt's cycle, no decode batch
    assert last[0] - f[0] == pytest.approx(10 * (0.01 + 1e-4))       # ten cycles of one sequence
    assert st["dropped"] == 0 and st["preemptions"] == 0


def test_chunked_prefill_splits_a_long_prompt_over_the_budget():
    cyc = linear_cycle()
    f, _, _ = run_replica([0.0], [5000], [2], cyc, max_seqs=8, budget=2048, kv_tokens=1e6)
    # 2048 + 2048 + 904 tokens: three cycles.
    assert f[0] == pytest.approx(3 * 0.01 + 2e-5 * 5000)


def test_the_batch_cap_is_never_exceeded_and_every_request_finishes():
    rng = np.random.default_rng(0)
    n = 400
    arr = np.sort(rng.uniform(0, 2, n))
    inp, out = rng.integers(10, 500, n), rng.integers(1, 300, n)
    f, last, _ = run_replica(arr, inp, out, linear_cycle(), max_seqs=16, budget=4096, kv_tokens=1e7)
    assert not np.isnan(last).any() and np.all(f >= arr) and np.all(last >= f)
    # At any instant at most 16 requests are between their admission and their last token: admission
    # precedes the first token, so count [first token, last token] intervals.
    events = np.concatenate([np.stack([f, np.ones(n)], 1), np.stack([last, -np.ones(n)], 1)])
    events = events[np.lexsort((events[:, 1], events[:, 0]))]
    assert np.max(np.cumsum(events[:, 1])) <= 16


def test_kv_reservation_and_preemption():
    cyc = linear_cycle()
    arr, inp, out = np.zeros(6), np.full(6, 100), np.full(6, 400)
    # Reserving prompt + output (500 tokens) at admission: 1,000 tokens hold two requests at a time.
    _, last_max, st = run_replica(arr, inp, out, cyc, max_seqs=8, budget=4096, kv_tokens=1000, policy="max")
    assert st["preemptions"] == 0 and not np.isnan(last_max).any()
    assert len(np.unique(np.round(last_max, 6))) == 3                   # three waves of two
    # Pages taken as tokens are computed: all six start, the cache runs out, the latest are preempted
    # and recomputed, and everyone still finishes.
    _, last_mean, st = run_replica(arr, inp, out, cyc, max_seqs=8, budget=4096, kv_tokens=1000, policy="mean")
    assert st["preemptions"] > 0 and not np.isnan(last_mean).any()
    # A request larger than the whole cache is dropped, not waited for forever.
    _, last, st = run_replica([0.0, 0.1], [100, 5000], [10, 10], cyc, max_seqs=8, budget=8192, kv_tokens=1000)
    assert st["dropped"] == 1 and not np.isnan(last[0]) and np.isnan(last[1])


def test_simulating_a_placement_against_the_oracle():
    tf = Traffic(np.full(64, 1024), np.full(64, 128), 1.0, "poisson")
    lay = Layout.of(tp=1, dp=2)
    rep = replica(MODEL, HW, ENGINE, PREC, lay, 64, tf)
    slow = simulate(MODEL, HW, ENGINE, PREC, lay, 64, tf, rate=0.05, requests=500, rep=rep)
    fast = simulate(MODEL, HW, ENGINE, PREC, lay, 64, tf, rate=60.0, requests=2000, rep=rep)
    lone = rep.table.t[0, 0, 0, :, -1]         # a prompt alone (no decode batch), shortest context
    assert slow.percentile("ttft", 0.5) == pytest.approx(np.interp(1024, rep.table.p, lone), rel=0.1)
    for m in ("ttft", "tpot", "e2e"):
        assert fast.percentile(m, 0.9) > slow.percentile(m, 0.9)
    s = fast.summary()
    assert s["unserved"] == 0 and s["ttft"]["p50"] <= s["ttft"]["p90"] <= s["ttft"]["p99"]


def test_disaggregated_prefill_and_decode_with_kv_transfer():
    tf = Traffic(np.full(64, 2048), np.full(64, 64), 1.0, "poisson")
    pre, dec = (HW, Layout.of(tp=1, dp=2), 8), (HW, Layout.of(tp=1, dp=2), 64)
    fast = simulate_disaggregated(MODEL, ENGINE, PREC, pre, dec, tf, rate=4.0, link_bytes_per_s=50e9,
                                  requests=1500)
    slow = simulate_disaggregated(MODEL, ENGINE, PREC, pre, dec, tf, rate=4.0, link_bytes_per_s=2e9,
                                  requests=1500)
    # The first token comes from the prefill replica: the link does not touch TTFT, it delays the rest.
    assert fast.percentile("ttft", 0.5) == pytest.approx(slow.percentile("ttft", 0.5), rel=1e-9)
    kv = 2048 * 131072                                # Llama-3.1-8B bf16: 128 KiB of KV per token
    transfer = kv / 2e9                               # 0.13 s per request, one at a time per replica
    assert 0.9 * transfer / 63 < slow.mean("tpot") - fast.mean("tpot") < 2 * transfer / 63
    assert np.isnan(fast.e2e).sum() == 0
