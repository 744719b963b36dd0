"""Optuna's distributed pattern for real: worker processes sharing one study through PostgreSQL,
and a worker killed mid-search whose finished trials survive and whose study resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from tests.conftest import ROOT
from tests.search._postgres import PostgresServer, find_bin

PROBLEM = str(ROOT / "problems" / "deepseek-r1-reasoning-16xh200.yaml")
REQUIRE = os.environ.get("PARASEARCH_REQUIRE_POSTGRES") == "1"


def _worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "parasearch", "search", PROBLEM, "--method", "optuna", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def postgres_url():
    if not (find_bin("initdb") and find_bin("pg_ctl")):
        if REQUIRE:
            pytest.fail("PostgreSQL server binaries are required (install Debian's postgresql package)")
        pytest.skip("PostgreSQL server binaries not installed")
    server = PostgresServer()
    try:
        # The README's form: parasearch maps it to the installed driver (psycopg2 from the extra).
        yield server.start().replace("postgresql+psycopg2://", "postgresql://")
    finally:
        server.stop()


def _complete(storage, study: str):
    from parasearch.search.storage import open_storage

    s = optuna.load_study(study_name=study, storage=open_storage(storage))
    return s.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def test_two_workers_cooperate_on_one_postgres_study(postgres_url):
    common = ["--storage", postgres_url, "--study", "shared", "--json"]
    # Create the study first so both workers load it rather than racing to create it.
    first = _worker(*common, "--trials", "1", "--seed", "0")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    a = _worker(*common, "--trials", "120", "--seed", "1")
    b = _worker(*common, "--trials", "120", "--seed", "2")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    trials = _complete(postgres_url, "shared")
    assert len(trials) >= 120
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 3  # the creator and both workers each finished trials
    placements = [tuple(t.user_attrs["placement"]) for t in trials]
    assert len(placements) == len(set(placements))  # no placement evaluated twice, even across workers
    for out, _ in outs:
        res = json.loads(out)
        assert res["method"] == "optuna" and res["pareto"] and res["info"]["trials"] >= 120


def test_killed_worker_loses_no_finished_trial_and_resume_continues(tmp_path):
    journal = str(tmp_path / "study.log")
    args = ["--storage", journal, "--study", "resume", "--seed", "3"]
    p = _worker(*args, "--trials", "3000")
    deadline = time.time() + 120
    before = []
    while time.time() < deadline:
        time.sleep(0.5)
        if os.path.exists(journal):
            try:
                before = _complete(journal, "resume")
            except Exception:
                continue
            if len(before) >= 40:
                break
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    before = _complete(journal, "resume")
    assert len(before) >= 40
    snapshot = {t.number: (tuple(t.values), tuple(t.user_attrs["placement"])) for t in before}
    target = len(before) + 60
    q = _worker(*args, "--trials", str(target), "--json")
    out, err = q.communicate(timeout=300)
    assert q.returncode == 0, err
    after = _complete(journal, "resume")
    kept = {t.number: (tuple(t.values), tuple(t.user_attrs["placement"])) for t in after if t.number in snapshot}
    assert kept == snapshot  # every trial finished before the kill is intact
    assert len(after) >= target
    assert json.loads(out)["info"]["resumed_from"] == len(before)
