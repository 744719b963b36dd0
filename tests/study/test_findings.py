"""Study verdicts that can come out either way: each finding checked on synthetic sweep numbers,
and the batch cap named wherever it, not the KV cache, sets concurrency."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from parasearch.catalog.engines import load_engine  # noqa: E402
from parasearch.catalog.hardware import load_hardware  # noqa: E402
from parasearch.report import sweep_plots as sp  # noqa: E402
from parasearch.report.characterization import summary_rows  # noqa: E402
from parasearch.study import findings as F  # noqa: E402
from parasearch.study.sweep import SIZE_LABEL, WORKLOADS, SweepPoint, run_sweep  # noqa: E402

CHAT, LONG = F.CHAT, F.LONG


def _pt(model, workload, strategy, per_gpu, conc=10.0, fits=True):
    kind, tp = ("dp", 1) if strategy == "DP" else ("tp", int(strategy[2:]))
    inp, out = WORKLOADS[workload]
    return SweepPoint(model, SIZE_LABEL[model], strategy, kind, tp, 1, 1, False, 8, workload, inp, out, fits,
                      per_gpu, 0.05, conc * tp, conc, conc * tp, 0.5, 0.6, 0.1, "kv-capacity", {})


def _sweep(chat8, chat32, long_conc=((10, 14), (1, 7))):
    """Chat tok/s/GPU for DP, TP2, TP4, TP8 of an 8B and a 32B model; at 1k/32k, sequences per GPU
    for DP and TP8 of each."""
    pts = []
    for model, chat, (dp_c, tp_c) in (("llama-3.1-8b", chat8, long_conc[0]), ("qwen2.5-32b", chat32, long_conc[1])):
        for strat, v in zip(("DP", "TP2", "TP4", "TP8"), chat):
            pts.append(_pt(model, CHAT, strat, v))
        pts.append(_pt(model, LONG, "DP", 50.0, conc=dp_c))
        pts.append(_pt(model, LONG, "TP8", 60.0, conc=tp_c))
    return pts


def test_finding3_is_confirmed_when_gains_are_sublinear_and_the_crossover_is_at_32b():
    # 8B: DP best on chat. 32B: TP2 beats DP (the crossover), and each TP doubling gains less than 2x.
    f = F.finding3(_sweep((1000, 950, 850, 700), (300, 400, 380, 330)))
    assert f.verdict == "confirmed", f.evidence
    assert "sublinear" in f.evidence and "in 2 of 2 models" in f.evidence and "the crossover is at 32B" in f.evidence


def test_finding3_parts_fail_on_their_own():
    superlinear = F.finding3(_sweep((1000, 950, 850, 700), (300, 400, 420, 330)))  # 32B: TP2 -> TP4 more than 2x
    assert superlinear.verdict == "partly confirmed" and "in 1 of 2 models" in superlinear.evidence
    early = F.finding3(_sweep((1000, 1100, 850, 700), (300, 400, 380, 330)))  # 8B already crosses over
    assert early.verdict == "partly confirmed" and "the crossover is not at 32B" in early.evidence
    none = F.finding3(_sweep((1000, 1100, 1200, 1300), (300, 200, 210, 230), long_conc=((10, 5), (3, 2))))
    assert none.verdict == "contradicted"


def test_finding1_states_its_tolerance_and_applies_it():
    tol = F.DP_TOLERANCE
    pts = _sweep((1000, 950, 850, 700), (300, 400, 380, 330))
    near = [p if not (p.model == "llama-3.1-8b" and p.strategy == "TP2") else
            _pt(p.model, CHAT, "TP2", 1000 / (1 - tol / 2)) for p in pts]
    far = [p if not (p.model == "llama-3.1-8b" and p.strategy == "TP2") else
           _pt(p.model, CHAT, "TP2", 1000 / (1 - tol * 2)) for p in pts]
    assert F.finding1(near).verdict == "confirmed" and F.finding1(far).verdict == "contradicted"
    assert f"within {tol:.0%} of the best layout" in F.finding1(near).evidence


H200, VLLM = load_hardware("h200"), load_engine("vllm")


def test_the_sweep_runs_to_what_the_kv_cache_allows_and_names_a_cap_where_it_binds(monkeypatch):
    free = run_sweep(H200, VLLM, nodes=1, gpus_per_node=8, models=("llama-3.1-8b",), workloads=(CHAT, LONG))
    assert not any(p.cap_binds for p in free)
    assert all(p.concurrency_per_replica == pytest.approx(p.kv_limited_concurrency) for p in free if p.fits)
    capped = run_sweep(H200, VLLM, nodes=1, gpus_per_node=8, models=("llama-3.1-8b",), workloads=(CHAT, LONG),
                       max_batch=64)
    held = [p for p in capped if p.cap_binds]
    assert held and all(p.concurrency_per_replica == 64 < p.kv_limited_concurrency for p in held)
    rows = {(r["model"], r["workload"]): r for r in summary_rows(capped)}
    assert rows[("llama-3.1-8b", CHAT)]["binds"] == "batch cap"
    assert "cap-bound" in F.finding1(capped).evidence and "64-sequence batch cap" in F.finding2(capped).evidence
    assert sp.cap_note(free) == "" and "64-sequence batch cap" in sp.cap_note(capped)
    titles = []
    monkeypatch.setattr(plt, "close", lambda fig=None: titles.append(fig._suptitle.get_text()))
    sp.capacity_trap(capped, "/dev/null")
    assert "concurrency the KV cache allows" in titles[0] and "64-sequence batch cap binds" in titles[0]


def test_finding5_ep32_comparison_is_not_set_by_a_cap():
    """On 4 H200 nodes at 1k/32k a 2,048-sequence cap once held EP32 +attnDP down; the sweep now
    runs it to its KV cache, and a cap given by hand that binds is named in the verdict."""
    kw = dict(nodes=4, gpus_per_node=8, models=("deepseek-r1",), workloads=(LONG,))
    free = run_sweep(H200, VLLM, **kw)
    ep32 = next(p for p in free if p.strategy == "EP32 +attnDP")
    assert ep32.fits and not ep32.cap_binds and ep32.concurrency_per_replica == pytest.approx(ep32.kv_limited_concurrency)
    assert "Cap-bound" not in F.finding5(free).evidence
    cap = int(ep32.concurrency_per_replica // 2)
    capped = run_sweep(H200, VLLM, **kw, max_batch=cap)
    assert next(p for p in capped if p.strategy == "EP32 +attnDP").cap_binds
    assert f"{cap:,}-sequence batch cap" in F.finding5(capped).evidence
    assert "deepseek-r1 EP32 +attnDP on reasoning-1k/32k" in F.finding5(capped).evidence
