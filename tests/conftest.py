from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "calibration"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process, returning (exit code, stdout, stderr)."""
    import contextlib
    import io

    from parasearch.cli.main import main

    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        rc = main(list(args))
    return rc, o.getvalue(), e.getvalue()
