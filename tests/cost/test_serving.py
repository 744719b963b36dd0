"""Serving estimates against published TensorRT-LLM throughput (llm-analysis-style tolerances)."""

import json

import numpy as np
import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.precision import Precision
from parasearch.cost.serving import Workload, serve
from tests.conftest import ROOT, run_cli

# TensorRT-LLM published throughput (output tokens/s for the whole TP group), Llama-3.1-70B FP8
# weights and KV cache, 128 input / 2048 output tokens (from the issue that specifies this test).
PUBLISHED = {("h100-sxm", 1): 911.6, ("h100-sxm", 2): 6169.6, ("h100-sxm", 8): 2133 * 8,
             ("h200", 1): 4165.7, ("h200", 2): 8290.4, ("h200", 8): 2649 * 8}
FP8 = Precision("fp8", "fp8")
WL = Workload(128, 2048)


def _serve(hw_name, tps, engine="reference", max_batch=2048):
    return serve(load_model("llama-3.1-70b"), load_hardware(hw_name), load_engine(engine), Layout.of(tp=tps), FP8,
                 WL, max_batch)


@pytest.mark.parametrize("engine", ["trtllm", "trtllm-trt", "reference"])
def test_capacity_trap_shape_from_first_principles(engine):
    h100 = _serve("h100-sxm", [1, 2], engine).output_tokens_per_s
    h200 = _serve("h200", [1, 2], engine).output_tokens_per_s
    assert h100[1] / h100[0] >= 3.0         # published: 6.8x
    assert 1.2 <= h200[1] / h200[0] <= 3.0   # published: about 2x
    s = _serve("h100-sxm", [1], engine)
    assert s.bottleneck[0] == "kv-capacity" and s.batch[0] < 40


@pytest.mark.parametrize("engine", ["trtllm-trt", "trtllm"])
def test_every_published_point_within_tolerance(engine):
    """The TensorRT-LLM v0.17 table's points (its rows are in the fit half of data/published)."""
    errs = []
    for (hw, tp), pub in PUBLISHED.items():
        est = _serve(hw, [tp], engine).output_tokens_per_s[0]
        errs.append(est / pub - 1)
    errs = np.abs(errs)
    assert errs.max() < 0.5
    assert np.median(errs) < 0.15


@pytest.mark.parametrize("engine", ["trtllm", "trtllm-trt"])
def test_best_per_gpu_tp_matches_the_measured_pick(engine):
    """Among the TP degrees the table measured (1, 2, 8; it has no TP4 row), the estimate's best
    per-GPU throughput is the measured best on each GPU, or one the table puts within 1% of it (on
    H200, TP1 and TP2 measure 4,166 and 4,145 tok/s per GPU: a tie)."""
    for hw in ("h100-sxm", "h200"):
        tps = sorted(tp for h, tp in PUBLISHED if h == hw)
        measured = [PUBLISHED[hw, tp] / tp for tp in tps]
        estimated = _serve(hw, tps, engine).per_gpu
        pick = int(np.argmax(estimated))
        assert measured[pick] >= 0.99 * max(measured), (hw, tps, estimated, measured)


def test_arrival_rate_limits_batch_and_latency_improves():
    m, hw, e = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), load_engine("reference")
    sat = serve(m, hw, e, Layout.of(), Precision(), Workload(1024, 1024), 256)
    light = serve(m, hw, e, Layout.of(), Precision(), Workload(1024, 1024, arrival_rate=1.0), 256)
    assert light.batch[0] < sat.batch[0]
    assert light.tpot_s[0] < sat.tpot_s[0]
    # Little's law: throughput equals the offered load when the system keeps up.
    assert light.output_tokens_per_s[0] == pytest.approx(1.0 * 1024, rel=0.25)


def test_long_reasoning_outputs_throttle_the_batch():
    m, hw, e = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), load_engine("reference")
    outs = [1024, 8192, 32768]
    batches = [serve(m, hw, e, Layout.of(), Precision(), Workload(1024, o), 4096).batch[0] for o in outs]
    assert batches[0] > batches[1] > batches[2]


def test_model_that_does_not_fit_serves_nothing():
    s = serve(load_model("llama-3.1-405b"), load_hardware("h100-sxm"), load_engine("reference"), Layout.of(tp=8),
              Precision(), WL, 256)
    assert not s.fits[0] and s.output_tokens_per_s[0] == 0 and s.bottleneck[0] == "weights-memory"


def test_rate_path_gives_each_row_what_it_gets_alone():
    """The rate path evaluates each distinct replica once; every row must still get exactly what
    it gets when evaluated on its own."""
    m, hw, e = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), load_engine("vllm")
    layout = Layout.of(tp=[1, 1, 2, 2, 1, 4], dp=[1, 4, 2, 1, 8, 2])
    caps = np.array([64, 64, 256, 32, 64, 128.0])
    wl = Workload(1024, 512, arrival_rate=6.0)
    together = serve(m, hw, e, layout, Precision(), wl, caps)
    for i in range(len(layout)):
        alone = serve(m, hw, e, layout.take([i]), Precision(), wl, caps[i:i + 1])
        assert together.batch[i] == alone.batch[0] and together.ttft_s[i] == pytest.approx(alone.ttft_s[0])
        assert together.output_tokens_per_s[i] == pytest.approx(alone.output_tokens_per_s[0])


def test_one_long_prompt_composes_from_its_steps():
    """One 120k-token request, Llama-3.1-70B FP8 on 8xH200 at TP8, batch 1, default engine: its
    TTFT holds a whole prefill of the prompt, its TPOT is a decode step at that context, and that
    step stays within a small multiple of streaming the weight shard and the KV once."""
    args = ("-m", "llama-3.1-70b", "-H", "h200", "--tp", "8", "--weights", "fp8", "--kv-cache", "fp8", "--json")
    step = {ph: json.loads(run_cli("estimate", *args, "--phase", ph, "--batch", "1", "--context", "120000")[1])
            for ph in ("prefill", "decode")}
    rc, out, _ = run_cli("estimate", *args, "--input-tokens", "120000", "--output-tokens", "1000", "--max-batch", "1")
    s = json.loads(out)
    assert rc == 0 and s["engine"] == "vllm"
    assert s["ttft_s"] >= step["prefill"]["step_time_s"]
    assert s["tpot_s"] <= 1.3 * step["decode"]["step_time_s"]
    mem = step["decode"]["memory"]
    floor = (mem["weights_bytes_per_gpu"] + mem["kv_bytes_needed_per_gpu"]) / load_hardware("h200").hbm_bytes_per_s
    assert 2.3e-3 < floor < 2.5e-3  # reading the 9.1 GB weight shard and 2.5 GB of KV once
    assert step["decode"]["step_time_s"] <= 2.5 * floor
    rc, _, err = run_cli("search", str(ROOT / "problems" / "llama-3.1-70b-rag-120k-h200.yaml"), "--json")
    assert rc == 0, err
