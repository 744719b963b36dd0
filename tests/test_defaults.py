"""One default batch cap and one default KV-cache format, whichever command asks (the sweep: no cap)."""

import inspect

from parasearch.cli.estimate import estimate
from parasearch.cli.search import search
from parasearch.cli.sweep import sweep
from parasearch.defaults import KV_CACHE, MAX_BATCH, MAX_BATCH_GRID
from parasearch.spec import _schema
from parasearch.study.sweep import run_sweep
from tests.conftest import ROOT


def _default(fn, name):
    d = inspect.signature(fn).parameters[name].default
    return getattr(d, "default", d)  # typer's OptionInfo holds the value


def test_commands_share_the_defaults():
    assert MAX_BATCH == max(MAX_BATCH_GRID)
    # the sweep runs each replica to what its KV cache holds unless a cap is given (issue 11)
    assert _default(sweep, "max_batch") is None and _default(run_sweep, "max_batch") is None
    # estimate of one placement runs the engine's own cap (what it does without the flag)
    assert _default(estimate, "max_batch") is None
    assert _default(estimate, "kv_cache") == _default(sweep, "kv_cache") == _default(run_sweep, "kv_cache") \
        == _schema.PrecisionIn().kv_cache == KV_CACHE
    assert _default(search, "kv_cache") is None  # from flags: the problem file's default applies


def test_a_problem_without_limits_tries_caps_up_to_the_default():
    from parasearch.space.enumerate import enumerate_space
    from parasearch.spec import load_problem

    space = enumerate_space(load_problem(ROOT / "problems" / "llama-3.1-8b-chat-h100.yaml"))
    assert set(space.max_batch.astype(int)) == set(MAX_BATCH_GRID)
