"""The analytic load model against the scheduler simulator, on a small grid of placements and loads.
benchmarks/traffic_accuracy.py runs the large grid and prints the error distribution."""

import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost import load as L
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.simulate.run import goodput, replica, simulate
from parasearch.traffic.model import Traffic
from parasearch.traffic.stats import dispersion
from parasearch.traffic.trace import read_trace
from tests.conftest import ROOT

ENGINE = load_engine("vllm")  # the default engine: graphs for every step, host work overlapped
TRACE = read_trace(ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv")
REPLAY = Traffic(TRACE.input_tokens, TRACE.output_tokens, 1.0935, "trace", trace=TRACE,
                 dispersion=dispersion(TRACE.arrival_s))
POISSON = Traffic(TRACE.input_tokens, TRACE.output_tokens, 1.0, "poisson")
CASES = [  # model, hardware, precision, (tp, dp), batch cap, traffic, TPOT P90 limit
    ("llama-3.1-8b", "h100-sxm", ("bf16", "bf16"), (1, 1), 128, REPLAY, 0.03),
    ("llama-3.1-8b", "h100-sxm", ("bf16", "bf16"), (2, 2), 64, POISSON, 0.02),
    ("llama-3.1-70b", "h200", ("fp8", "fp8"), (2, 1), 256, REPLAY, 0.08),
]


def build(name, hw, prec, lay, mb, tf, tpot, engine):
    """(load model, a simulation at a rate, the SLO targets) of one placement."""
    model, hw, prec = load_model(name), load_hardware(hw), Precision(*prec)
    i, o, w, by = tf.pairs()
    lm = L.build(model, hw, engine, lay, prec, [mb], i, o, w, tf.population(), by, tf.dispersion)
    rep = replica(model, hw, engine, prec, lay, mb, tf)
    targets = [L.Target("ttft", "p99", 2.0), L.Target("tpot", "p90", tpot)]
    return lm, lambda rate, n=3000: simulate(model, hw, engine, prec, lay, mb, tf, rate, requests=n, rep=rep), \
        targets


def setup(case):
    name, hw, prec, (tp, dp), mb, tf, tpot = case
    return (*build(name, hw, prec, Layout.of(tp=tp, dp=dp), mb, tf, tpot, ENGINE), tf.cv)


@pytest.mark.parametrize("case", CASES, ids=["8b-tp1-trace", "8b-tp2x2-poisson", "70b-h200-tp2-trace"])
def test_goodput_and_percentiles_agree_with_the_simulator(case):
    lm, run, targets, cv = setup(case)
    model_g = float(L.goodput(lm, targets, cv)[0][0]) * float(lm.replicas[0])
    sim_g = goodput(run, targets, hi=model_g * 1.25, lo=model_g * 0.5, steps=6)
    assert model_g == pytest.approx(sim_g, rel=0.15)
    rate = 0.6 * sim_g
    sim = run(rate, 6000)
    st = L.state(lm, rate / lm.replicas, cv ** 2 / lm.replicas)
    for metric, q, tol in (("ttft", 0.5, 0.2), ("ttft", 0.9, 0.25), ("ttft", 0.99, 0.35),
                           ("tpot", 0.5, 0.1), ("tpot", 0.9, 0.15), ("tpot", 0.99, 0.25)):
        assert L.percentile(lm, st, metric, q)[0] == pytest.approx(sim.percentile(metric, q), rel=tol), (metric, q)



# Pipeline placements under the `reference` engine: its mixed steps run eagerly, so a cycle that carries
# a prompt costs several decode cycles, and at the rates these placements reach most cycles carry one.
# (Solving the loaded cycle by a few naive iterations once gave them 1.8-2.4x the simulator's goodput.)
REFERENCE = load_engine("reference")
PP_CASES = [  # model, hardware, precision, (tp, pp), batch cap, traffic, TPOT P90 limit
    ("llama-3.1-8b", "h100-sxm", ("bf16", "bf16"), (2, 4), 2048, REPLAY, 0.05),
    ("llama-3.1-8b", "h100-sxm", ("bf16", "bf16"), (2, 3), 512, REPLAY, 0.05),
    ("llama-3.1-8b", "h100-sxm", ("bf16", "bf16"), (4, 2), 256, POISSON, 0.05),
    ("llama-3.1-70b", "h200", ("fp8", "fp8"), (2, 4), 512, REPLAY, 0.2),
]


@pytest.mark.parametrize("case", PP_CASES, ids=["8b-tp2pp4-trace", "8b-tp2pp3-trace", "8b-tp4pp2-poisson",
                                                "70b-h200-tp2pp4-trace"])
def test_pipeline_goodput_agrees_with_the_simulator(case):
    """Model and simulator goodput within 15% (the benchmark's pipeline pairs: within 20%)."""
    name, hw, prec, (tp, pp), mb, tf, tpot = case
    lm, run, targets = build(name, hw, prec, Layout.of(tp=tp, pp=pp), mb, tf, tpot, REFERENCE)
    model_g = float(L.goodput(lm, targets, tf.cv)[0][0])
    sim_g = goodput(run, targets, hi=model_g * 1.25, lo=model_g * 0.5, steps=6)
    assert model_g == pytest.approx(sim_g, rel=0.15)
    # Most cycles carry a prompt at half the goodput: the model's mean cycle is the loaded one, well
    # above the decode step alone (the mis-solved cycle sat within a few percent of it).
    st = L.state(lm, 0.5 * sim_g, tf.cv ** 2)
    decode = float(L.along(lm.d0, lm.b, st.batch)[0])
    assert st.cycle[0] > 1.5 * decode
