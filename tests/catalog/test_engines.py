"""Engine profiles: every number has a provenance, GPU-dependent defaults resolve, old names still load."""

import numpy as np
import pytest

from parasearch.catalog import _yaml
from parasearch.catalog.engines import (NUMERIC_PATHS, OPTIONAL_PATHS, _from_doc, catalog_names, load_engine,
                                        resolve_name, to_yaml)
from parasearch.catalog.hardware import load_hardware
from parasearch.errors import SpecError


def test_the_shipped_profiles_and_the_engines_they_describe():
    names = set(catalog_names())
    assert {"vllm", "sglang", "trtllm", "reference"} <= names
    for n in names:
        e = load_engine(n)
        assert e.framework in ("vllm", "sglang", "trtllm", "reference") and e.version
        for path in NUMERIC_PATHS:     # the loader refuses a number without one; check the text too
            if path in OPTIONAL_PATHS and e.provenance(path) is None:
                continue               # a mechanism the engine does not have
            assert e.provenance(path), f"{n}: {path} has no provenance"
            assert "provisional" not in e.provenance(path), f"{n}: {path} is still provisional"


def test_a_number_without_provenance_is_refused():
    doc = _yaml.loads(to_yaml(load_engine("vllm")), "x.yaml")
    del doc.data["sources"]["host.step_s"]
    with pytest.raises(SpecError) as e:
        _from_doc(doc)
    assert "host.step_s: has no provenance" in e.value.one_line()


def test_round_trip_through_yaml():
    from dataclasses import replace
    for n in catalog_names():
        e = load_engine(n)
        back = _from_doc(_yaml.loads(to_yaml(e), "x.yaml"))
        assert replace(back, sources=()) == replace(e, sources=())
        assert {k: v for k, v in back.sources} == {k: v for k, v in e.sources}


def test_gpu_dependent_defaults_follow_the_engines_own_tiers():
    vllm = load_engine("vllm")
    # vllm/engine/arg_utils.py get_batch_defaults: 1024 / 8192 on an H100, 256 / 2048 on an A100,
    # 1024 / 16384 on a GPU with 160 GiB or more.
    h100, a100, b200 = (vllm.on(load_hardware(h)) for h in ("h100-sxm", "a100-sxm-80gb", "b200"))
    assert (h100.max_batch, h100.max_num_tokens) == (1024, 8192)
    assert (a100.max_batch, a100.max_num_tokens) == (256, 2048)
    assert (b200.max_batch, b200.max_num_tokens) == (1024, 16384) and b200.cuda_graph_max_batch == 1024
    sglang = load_engine("sglang")
    assert sglang.on(load_hardware("h200")).max_num_tokens == 8192
    assert sglang.on(load_hardware("mi300x")).max_num_tokens == 16384


def test_what_each_engine_does_differently():
    v, s, t = load_engine("vllm"), load_engine("sglang"), load_engine("trtllm")
    assert t.kv_reserved_output == 1.0 and v.kv_reserved_output < 1.0   # guaranteed-no-evict vs on demand
    assert v.mixed_prefill and not s.mixed_prefill                       # SGLang prefills instead of decoding
    assert v.sliding_window == "all" and s.sliding_window == "hybrid" and t.sliding_window == "none"
    assert v.pp_extra_micro_batches == 1 and t.pp_extra_micro_batches == 0


def test_fused_is_an_alias_that_says_what_replaced_it():
    assert load_engine("fused").name == "trtllm"
    name, note = resolve_name("fused")
    assert name == "trtllm" and "trtllm" in note
    assert resolve_name("vllm") == ("vllm", None)


def test_vllm_fuses_the_norms_into_the_all_reduce_only_where_flashinfer_does():
    """vLLM's default -O2 fuses residual add + RMSNorm into FlashInfer's all-reduce on Hopper and
    Blackwell: two fewer kernels a layer at TP > 1 and small payloads; none of it on an A100, at
    TP 1, or for a payload over the size limit."""
    from parasearch.catalog.models import load_model
    from parasearch.cost.layout import Layout
    from parasearch.cost.precision import Precision
    from parasearch.cost.step import decode_step
    vllm, m = load_engine("vllm"), load_model("llama-3.1-70b")
    h200, a100 = load_hardware("h200"), load_hardware("a100-sxm-80gb")
    assert vllm.on(h200).allreduce_fused_norms == 2 and vllm.on(a100).allreduce_fused_norms == 0
    assert load_engine("trtllm").allreduce_fused_norms == 0            # not claimed for other engines
    unfused = vllm.with_overrides(allreduce_fused_norms=0)
    lay, prec = Layout.of(tp=[1, 8]), Precision("fp8", "fp8")

    def saved(hw, batch):
        fused, plain = (decode_step(m, hw, e, lay, prec, batch, 4096) for e in (vllm, unfused))
        return plain.tick - fused.tick

    launch = h200.efficiency.kernel_launch_s
    assert saved(h200, 1) == pytest.approx([0.0, 2 * m.num_layers * launch])
    payload_limit = vllm.allreduce_fusion_max_bytes / (m.hidden * 2)            # tokens
    assert np.all(saved(h200, 2 * payload_limit) == 0) and np.all(saved(a100, 1) == 0)
