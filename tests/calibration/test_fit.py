import csv

import numpy as np
import pytest

from parasearch.calibration.fit import fit_kernels
from parasearch.calibration.measurements import read_kernels
from parasearch.catalog.hardware import load_hardware
from parasearch.errors import SpecError
from tests.conftest import DATA, run_cli

FITTED = ("gemm_bw", "gemm_flops", "grouped_bw", "grouped_flops", "attn_decode_bw", "attn_cta_bytes_per_s",
          "attn_prefill_flops", "attn_prefill_ctas_half", "elementwise_bw")


@pytest.mark.parametrize("gpu", ["h100-sxm", "h200"])
def test_catalog_efficiencies_are_the_fit_of_the_shipped_kernel_data(gpu):
    hw = load_hardware(gpu)
    eff, errors = fit_kernels(hw, read_kernels(DATA / f"{gpu}.kernels.json"), "test")
    for k in FITTED:
        assert getattr(eff, k) == pytest.approx(getattr(hw.efficiency, k), rel=0.02), k
    assert all(e < 0.08 for e in errors.values())


def test_validate_meets_the_error_bounds_from_kernel_data_only():
    rc, out, _ = run_cli("validate", str(DATA / "e2e-qwen2.5-32b.csv"), "--json")
    assert rc == 0
    import json
    res = json.loads(out)
    assert res["median_abs_pct_error"] <= 10 and res["max_abs_pct_error"] <= 25
    assert len(res["rows"]) == 9


def test_whole_model_calibration_reduces_the_error(tmp_path):
    prof = tmp_path / "h200.yaml"
    rc, _, err = run_cli("calibrate", str(DATA / "e2e-qwen2.5-32b.csv"), "--hardware", "h200", "-o", str(prof))
    assert rc == 0, err
    import json
    _, before, _ = run_cli("validate", str(DATA / "e2e-qwen2.5-32b.csv"), "--json")
    _, after, _ = run_cli("validate", str(DATA / "e2e-qwen2.5-32b.csv"), "--json", "--calibration", str(prof))
    b = {r["line"]: abs(r["pct_error"]) for r in json.loads(before)["rows"] if r["hardware"] == "h200"}
    a = {r["line"]: abs(r["pct_error"]) for r in json.loads(after)["rows"] if r["hardware"] == "h200"}
    assert np.median(list(a.values())) < np.median(list(b.values()))


def test_kernel_calibration_writes_a_profile_estimate_can_use(tmp_path):
    prof = tmp_path / "p.yaml"
    rc, _, _ = run_cli("calibrate", str(DATA / "h100-sxm.kernels.json"), "--hardware", "h100-sxm", "-o", str(prof))
    assert rc == 0 and "efficiency:" in prof.read_text()
    rc, out, _ = run_cli("estimate", "-m", "llama-3.1-8b", "-H", "h100-sxm", "--phase", "decode", "--batch", "8",
                         "--context", "1024", "--calibration", str(prof), "--json")
    assert rc == 0 and '"step_time_s"' in out
    rc, _, err = run_cli("estimate", "-m", "llama-3.1-8b", "-H", "h200", "--phase", "decode", "--batch", "8",
                         "--context", "1024", "--calibration", str(prof))
    assert rc != 0 and "fitted for 'h100-sxm'" in err


def test_bad_measurement_files(tmp_path):
    bad = tmp_path / "k.json"
    bad.write_text('{"gemm": [{"M": 1, "K": 2}]}')
    with pytest.raises(SpecError) as e:
        read_kernels(bad)
    assert "gemm[0].N: must be a positive number" in e.value.one_line()
    rows = tmp_path / "m.csv"
    with rows.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["hardware", "model", "phase", "batch", "context", "step_time_s"])
        w.writerow(["h100-sxm", "llama-3.1-8b", "decode", "-3", "10", "0.01"])
    rc, _, err = run_cli("validate", str(rows))
    assert rc == 3 and f"{rows}:2: batch: must be a positive integer" in err


def test_rows_are_estimated_together_as_they_are_one_by_one():
    from parasearch.calibration.whole_model import Row, estimate_rows
    from parasearch.catalog.engines import load_engine
    from parasearch.catalog.models import load_model

    models = {m: load_model(m) for m in ("llama-3.1-8b", "qwen3-30b-a3b")}
    rows = [Row(i + 2, hw, m, phase, b, ctx, 0.01, tp, pp, ep, w)
            for i, (hw, m, phase, b, ctx, tp, pp, ep, w) in enumerate([
                ("h100-sxm", "llama-3.1-8b", "decode", 1, 100, 1, 1, 1, "bf16"),
                ("h100-sxm", "llama-3.1-8b", "decode", 64, 9000, 2, 2, 1, "bf16"),
                ("h200", "llama-3.1-8b", "prefill", 3, 2048, 8, 1, 1, "fp8"),
                ("h100-sxm", "qwen3-30b-a3b", "decode", 16, 2048, 1, 2, 4, "bf16"),
                ("h100-sxm", "qwen3-30b-a3b", "prefill", 2, 512, 2, 1, 2, "bf16"),
                ("h100-sxm", "llama-3.1-8b", "decode", 8, 1024, 4, 1, 1, "bf16")])]
    hws = {h: load_hardware(h) for h in ("h100-sxm", "h200")}
    engines = {None: load_engine("reference")}
    together = estimate_rows(rows, models, hws, engines, "m.csv")
    alone = np.array([estimate_rows([r], models, hws, engines, "m.csv")[0] for r in rows])
    assert np.array_equal(together, alone) and len(set(together.tolist())) == len(rows)


def test_a_fit_past_a_physical_bound_is_clamped_and_said(tmp_path):
    # Step times a quarter faster than the shipped ones: the launch cost the fit wants is below
    # what a kernel in a CUDA graph can cost.
    src = (DATA / "e2e-qwen2.5-32b.csv").read_text().splitlines()
    rows = [src[0]] + [",".join(r.split(",")[:5] + [f"{float(r.split(',')[5]) * 0.75:.6f}"]) for r in src[1:]]
    f = tmp_path / "fast.csv"
    f.write_text("\n".join(rows) + "\n")
    prof = tmp_path / "p.yaml"
    rc, _, err = run_cli("calibrate", str(f), "--hardware", "h200", "-o", str(prof))
    assert rc == 0 and "kernel_launch_s fitted at" in err and "clamped to 5e-07" in err
    assert "kernel_launch_s: 5.0e-07" in prof.read_text()


def test_calibrate_fits_the_pipeline_hand_off_from_rows_of_several_depths(tmp_path):
    """A published-style CSV with PP2/PP4/PP8 rows (TensorRT-LLM's RTX PRO 6000 table, data/published)
    gets the fixed and the per-stage pipeline hand-off fitted alongside the host constants."""
    import json

    from tests.conftest import ROOT
    src = ROOT / "data" / "published" / "throughput.csv"
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if r["source"].endswith("(RTX PRO 6000 PP table)")]
    path = tmp_path / "pp.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    rc, out, err = run_cli("calibrate", str(path), "--engine", "trtllm", "-o", str(tmp_path / "e.yaml"), "--json")
    assert rc == 0, err
    res = json.loads(out)
    fitted = {p["parameter"].split(":", 1)[1] for p in res["parameters"]}
    assert {"pp_sync_s", "pp_sync_per_stage_s", "host_step_s"} <= fitted
    assert res["median_error_after"] <= res["median_error_before"] and res["rows"] == 40
    assert res["max_error_after"] >= res["median_error_after"] and 0 <= res["within_25_after"] <= 1
