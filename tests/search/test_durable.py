"""Cooperative Optuna search that survives its workers: no stale journal lock, no crash when two
workers share SQLite, no placement started twice, distinct seeds per worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import optuna
import pytest

from parasearch.search import _optuna
from parasearch.search.storage import open_storage
from parasearch.space.enumerate import enumerate_space
from parasearch.spec import load_problem, problem_from_text
from tests.conftest import ROOT

SMALL = ("model: llama-3.2-1b\ncluster: {hardware: h100-sxm, nodes: 1, gpus_per_node: 8}\n"
         "workload: {input_tokens: 512, output_tokens: 128}\nmethod: optuna\n")
PROBLEM = str(ROOT / "problems" / "deepseek-r1-reasoning-16xh200.yaml")


def _study(storage):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(storage=storage, study_name="s", directions=["maximize", "maximize"],
                               load_if_exists=True)


def test_a_killed_lock_holder_leaves_no_stale_lock(tmp_path):
    journal = str(tmp_path / "study.log")
    open_storage(journal)  # creates the journal
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys
sys.path.insert(0, {str(ROOT / 'src')!r})
from parasearch.search.storage import _flock_lock_class
lock = _flock_lock_class()({journal!r})
lock.acquire()
print("held", flush=True)
import time; time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    os.symlink(journal, journal + ".lock")  # and a stale lock of Optuna's own kind, as an old run leaves
    t0 = time.perf_counter()
    study = _study(open_storage(journal))
    study.enqueue_trial({"x": 1})
    assert time.perf_counter() - t0 < 5  # Optuna's symlink lock would wait out its 30 s grace period


def test_abandoned_trials_are_failed_and_free_their_placement(tmp_path):
    storage = open_storage(str(tmp_path / "study.log"))
    study = _study(storage)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t = study.ask()
    t.set_user_attr("placement", [1, 1, 1, 8, False, 64])
    t.set_user_attr("worker", f"{socket.gethostname()}:{dead.pid}")  # claimed by a process now dead
    assert _optuna.abandoned(study.get_trials()[0])
    assert _optuna._fail_abandoned(study) == 1
    assert study.get_trials()[0].state == optuna.trial.TrialState.FAIL


def test_a_placement_running_elsewhere_is_not_started_again(tmp_path):
    p = problem_from_text(SMALL)
    space = enumerate_space(p)
    storage = open_storage(str(tmp_path / "study.log"))
    study = _study(storage)
    a, b = _optuna._Objective(p, space, shared=True), _optuna._Objective(p, space, shared=True)
    key = next(iter(sorted(a.valid)))
    t1, t2 = study.ask(), study.ask()
    assert not a._taken(t1, key)          # first to check: claims it
    assert b._taken(t2, key)              # the other worker sees the claim
    # Both registered before either checked: the lower trial number wins, the other yields.
    t3, t4 = study.ask(), study.ask()
    other = sorted(a.valid)[1]
    t4.set_user_attr("placement", list(other))
    assert not a._taken(t3, other) and b._taken(t4, other)


def test_workers_on_shared_storage_draw_their_own_seeds(tmp_path):
    p = load_problem(PROBLEM)
    space = enumerate_space(p)
    seeds = []
    for _ in range(2):
        q = replace(p, optuna=replace(p.optuna, trials=3, storage=str(tmp_path / "s.log"), study="s"))
        seeds.append(_optuna.optuna_search(q, space, progress=False).info["seed"])
    assert seeds[0] != seeds[1]
    q = replace(p, optuna=replace(p.optuna, trials=3))
    assert _optuna.optuna_search(q, space, progress=False).info["seed"] == 0  # in memory: reproducible


def test_two_workers_on_one_sqlite_study_never_crash(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"

    def worker(seed):
        return subprocess.Popen([sys.executable, "-m", "parasearch", "search", PROBLEM, "--method", "optuna",
                                 "--storage", url, "--study", "pair", "--trials", "20", "--json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    procs = [worker(1), worker(2)]  # both start on a database that does not exist yet
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert not any(e.strip() for e in errs), errs  # not even a warning
    done = optuna.load_study(study_name="pair", storage=open_storage(url)).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    placements = [tuple(t.user_attrs["placement"]) for t in done]
    assert len(done) >= 20 and len(set(placements)) == len(placements)


def test_postgresql_urls_use_the_installed_driver(monkeypatch):
    import importlib.util

    from parasearch.errors import ParasearchError
    from parasearch.search import storage

    installed = {"psycopg2"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert storage._postgres_driver("postgresql://u:pw@h/db") == "postgresql+psycopg2://u:pw@h/db"
    assert storage._postgres_driver("postgres://h/db") == "postgresql+psycopg2://h/db"
    with pytest.raises(ParasearchError) as e:
        storage._postgres_driver("postgresql+psycopg://u:pw@h/db")
    assert "postgresql+psycopg2://" in e.value.one_line() and "pw" not in e.value.one_line()
    installed = {"psycopg", "psycopg2"}
    assert storage._postgres_driver("postgresql://h/db") == "postgresql+psycopg://h/db"
