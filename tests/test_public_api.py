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


def test_layout_takes_plain_ints_and_broadcasts():
    import numpy as np

    one = ps.Layout(tp=2, pp=2)
    assert len(one) == 1 and one.replica_gpus.tolist() == [4] and one.tp.dtype == np.int64
    assert one.attn_dp.dtype == bool and not one.attn_dp[0]
    many = ps.Layout(tp=[1, 2, 4], dp=2)
    assert many.gpus.tolist() == [2, 4, 8]
    # the result is the same placement Layout.of builds, so the oracle gives the same numbers
    m, hw, e = ps.load_model("llama-3.1-8b"), ps.load_hardware("h100-sxm"), ps.load_engine("reference")
    a = ps.serve(m, hw, e, ps.Layout(tp=2), ps.Precision(), ps.Workload(1024, 1024), 64)
    b = ps.serve(m, hw, e, ps.Layout.of(tp=[2]), ps.Precision(), ps.Workload(1024, 1024), 64)
    assert a.output_tokens_per_s.tolist() == b.output_tokens_per_s.tolist()
    arrays = ps.Layout(np.array([2]), np.array([1]), np.array([1]), np.array([1]), np.array([False]))
    assert arrays.tp.tolist() == [2]
    import pytest
    with pytest.raises(ValueError, match="whole numbers"):
        ps.Layout(tp=1.5)


def test_load_problem_takes_a_dict_like_a_file(tmp_path):
    import pytest
    import yaml

    doc = {"model": "llama-3.1-8b", "cluster": {"hardware": "h100-sxm", "nodes": 1, "gpus_per_node": 4},
           "workload": {"input_tokens": 2048, "output_tokens": 256}, "search": {"tp": (1, 2)}}
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({**doc, "search": {"tp": [1, 2]}}))
    a, b = ps.load_problem(doc), ps.load_problem(f)
    assert a.total_gpus == b.total_gpus == 4 and a.workload == b.workload and a.limits.tp == b.limits.tp == (1, 2)
    with pytest.raises(ps.SpecError) as bad:
        ps.load_problem({**doc, "workload": {"input_tokens": -5, "output_tokens": 256}})
    assert "input_tokens" in f"{bad.value.field} {bad.value}"
    with pytest.raises(ps.SpecError, match="not a problem value"):
        ps.load_problem({**doc, "name": object()})


def test_public_names_have_their_own_docstrings():
    import inspect

    for name in ps.__all__:
        obj = getattr(ps, name)
        doc = inspect.getdoc(obj) or ""
        # a dataclass without one gets its signature as __doc__: that is not documentation
        assert len(doc) > 40 and not doc.startswith(f"{name}("), name


def test_readme_python_example_runs(capsys):
    import re

    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python.*?```python\n(.*?)```", text, re.S)
    assert block, "README has no Python example"
    code = block.group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 5
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"TP2: [\d,]+ tok/s/GPU, binds \w", printed), printed
