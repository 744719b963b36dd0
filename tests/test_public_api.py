"""The small public API works end to end, from an installed package."""

import parasearch as ps


def test_public_api_estimates_and_searches():
    m, hw, e = ps.load_model("llama-3.1-8b"), ps.load_hardware("h100-sxm"), ps.load_engine("reference")
    s = ps.serve(m, hw, e, ps.Layout.of(tp=[1, 2]), ps.Precision(), ps.Workload(1024, 1024), 256)
    assert s.output_tokens_per_s.shape == (2,) and (s.output_tokens_per_s > 0).all()
    assert ps.decode_step(m, hw, e, ps.Layout.of(), ps.Precision(), 8, 1024).tick[0] > 0
    from tests.conftest import ROOT
    res = ps.run_search(ps.load_problem(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml"))
    assert res.method == "exhaustive" and len(res.front) > 0
    assert set(ps.__all__) <= set(dir(ps))
