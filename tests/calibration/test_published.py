"""Serving throughput against published measurements (data/published), llm-analysis style: each
category of the check half (rows no constant was fitted on) must stay where validation put it."""

import csv

import numpy as np
import pytest

from parasearch.calibration import bands as B
from parasearch.calibration.published import (estimate_published, load_inputs, profile_for, read_published,
                                              split_of)
from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from tests.conftest import ROOT, run_cli

FILES = [ROOT / "data" / "published" / "throughput.csv", ROOT / "data" / "published" / "extra.csv"]


@pytest.fixture(scope="module")
def validated():
    out = []
    for f in FILES:
        rows = read_published(f)
        models, hws, engines = load_inputs(rows, str(f), load_model, load_hardware, load_engine)
        est = estimate_published(rows, models, hws, engines, str(f))
        for r, e in zip(rows, est):
            if np.isfinite(e):
                key = (profile_for(r), hws[r.hardware].family, "MoE" if models[r.model].is_moe else "dense",
                       r.layout_kind)
                out.append((r, key, e / r.measured))
    return out


def test_the_halves_are_the_documented_ones(validated):
    shared = read_published(FILES[0])
    halves = {h: sum(split_of(r) == h for r in shared) for h in ("fit", "check")}
    assert halves["fit"] + halves["check"] == 467 and halves["check"] > 150
    assert all(split_of(r) == "check" for r in shared if r.model in ("llama-3.1-8b", "mistral-7b", "qwen3-30b-a3b"))
    extra = list(csv.DictReader(open(FILES[1])))
    assert all(r["split"] in ("fit", "check", "skip") for r in extra)


def test_engine_generations_get_their_own_profile():
    rows = {(r.engine, r.engine_version): profile_for(r) for f in FILES for r in read_published(f)}
    assert rows[("trtllm", "0.17")] == "trtllm-trt" and rows[("trtllm", "1.2")] == "trtllm"
    assert rows[("vllm", "0.6.0")] == "vllm-v0" and rows[("vllm", "0.11.0")] == "vllm"


def test_the_shipped_error_bands_are_current(tmp_path):
    out = tmp_path / "bands.csv"
    rc, _, err = run_cli("validate", *map(str, FILES), "--summary", "--bands", str(out))
    assert rc == 0, err
    shipped = (ROOT / "src" / "parasearch" / "engine_catalog" / B.BANDS_FILE).read_text()
    assert out.read_text() == shipped, "regenerate with the command in docs/validation.md"


def test_a_band_names_its_category_or_says_there_is_no_data():
    b = B.band("trtllm", "hopper", False, "TP/DP")
    assert b.error is not None and "published TensorRT-LLM" in b.text and b.rows >= B.MIN_ROWS
    none = B.band("sglang", "cdna3", True, "PP")
    assert none.error is None and none.text == "no published data for AMD CDNA3 + SGLang" \
        or none.rows >= B.MIN_ROWS
    assert B.band("reference", "hopper", False, "TP/DP").error is None


def _check(validated):
    return [(r, key, ratio) for r, key, ratio in validated if split_of(r) == "check"]


def test_the_check_half_stays_where_validation_put_it(validated):
    """Rows no constant was fitted on (docs/validation.md): the whole half, and every category
    (engine profile, GPU family, dense/MoE, layout kind) with at least ten rows."""
    check = _check(validated)
    ratios = np.array([ratio for _, _, ratio in check])
    assert len(check) >= 250
    assert np.median(np.abs(ratios - 1)) <= 0.10 and np.mean(np.abs(ratios - 1) <= 0.25) >= 0.75
    for i, kind in enumerate(("engine", "family", "moe", "layout")):
        for value in {key[i] for _, key, _ in check}:
            r = np.array([ratio for _, key, ratio in check if key[i] == value])
            if len(r) >= 10:
                assert 0.8 <= np.median(r) <= 1.25, (kind, value, len(r), np.median(r))


def test_pipeline_depth_costs_what_the_rtx_pro_6000_table_measured(validated):
    """TensorRT-LLM's RTX PRO 6000 table: Llama-3.3-70B FP4 at PP1/2/4/8 over ten input/output
    mixes. Per-GPU throughput relative to PP1 falls with depth (measured medians 1.04, 0.91,
    0.66), and the estimate follows within 10% (issue 8)."""
    by_mix: dict = {}
    for r, _, ratio in validated:
        if r.source.endswith("(RTX PRO 6000 PP table)"):
            by_mix.setdefault((r.input_tokens, r.output_tokens), {})[r.pp] = (r.measured / r.gpus,
                                                                              ratio * r.measured / r.gpus)
    rel = {pp: [] for pp in (2, 4, 8)}
    for v in by_mix.values():
        for pp in rel:
            rel[pp].append((v[pp][0] / v[1][0], v[pp][1] / v[1][1]))
    medians = {pp: np.median(np.array(x), axis=0) for pp, x in rel.items()}
    assert len(by_mix) == 10
    for pp, (measured, estimated) in medians.items():
        assert abs(estimated / measured - 1) <= 0.10, (pp, measured, estimated)
    assert medians[2][1] > medians[4][1] > medians[8][1]
