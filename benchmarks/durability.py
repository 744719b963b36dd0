"""Durability of cooperative Optuna search: workers killed with SIGKILL, and two workers on one study.

For each storage (journal file, SQLite, PostgreSQL) this prints:
  - crashed: worker processes (of two running at once on a fresh study) that exited non-zero;
  - dup/100: placements evaluated more than once, per 100 COMPLETE trials of that shared study;
  - lost/kill: trials a killed worker had started and never finished (the worst kill);
  - intact: whether every trial COMPLETE before each kill is unchanged afterwards;
  - resume s: wall time of a worker started after the kill until it has added one trial and exited
    (the worst), Python start-up included.

PostgreSQL needs the server binaries (Debian's postgresql package: initdb, pg_ctl); without them it
is skipped with a note. Run: python benchmarks/durability.py [--trials 150] [--kills 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROBLEM = str(ROOT / "problems" / "deepseek-r1-reasoning-16xh200.yaml")


def _worker(storage: str, study: str, trials: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "parasearch", "search", PROBLEM, "--method", "optuna",
                             "--storage", storage, "--study", study, "--trials", str(trials), "--json", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _trials(storage: str, study: str):
    import optuna

    from parasearch.search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def _complete(trials):
    import optuna

    return [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]


def two_workers(storage: str, trials: int) -> tuple[int, int, float, str]:
    """(crashed workers, COMPLETE trials, duplicates per 100, first error line)."""
    study = f"pair-{time.time_ns()}"
    procs = [_worker(storage, study, trials), _worker(storage, study, trials)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    crashed = sum(p.returncode != 0 for p in procs)
    done = _complete(_trials(storage, study))
    placements = [tuple(t.user_attrs["placement"]) for t in done if "placement" in t.user_attrs]
    dups = len(placements) - len(set(placements))
    first = next((e.strip().splitlines()[-1] for e, p in zip(errs, procs) if p.returncode != 0 and e.strip()), "")
    return crashed, len(done), 100.0 * dups / max(len(done), 1), first


def kills(storage: str, rounds: int) -> tuple[int, bool, float, int]:
    """(worst trials lost per kill, finished trials intact, worst resume seconds, resume failures)."""
    import optuna

    study = f"kill-{time.time_ns()}"
    worst_lost, intact, worst_resume, failures = 0, True, 0.0, 0
    for _ in range(rounds):
        trials = _trials(storage, study)
        before = len(_complete(trials))
        running_before = {t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING}
        p = _worker(storage, study, before + 100_000)
        deadline = time.time() + 120
        while time.time() < deadline and len(_complete(_trials(storage, study))) < before + 25:
            time.sleep(0.2)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        snapshot = {t.number: (tuple(t.values), tuple(t.user_attrs.get("placement", ())))
                    for t in _complete(_trials(storage, study))}
        # The killed worker was the only one running: every trial it left RUNNING is one it lost.
        lost = sum(t.state == optuna.trial.TrialState.RUNNING and t.number not in running_before
                   for t in _trials(storage, study))
        worst_lost = max(worst_lost, lost)
        t0 = time.perf_counter()
        q = _worker(storage, study, len(snapshot) + 1)
        _, err = q.communicate(timeout=300)
        worst_resume = max(worst_resume, time.perf_counter() - t0)
        failures += q.returncode != 0
        after = {t.number: (tuple(t.values), tuple(t.user_attrs.get("placement", ())))
                 for t in _complete(_trials(storage, study))}
        intact = intact and all(after.get(k) == v for k, v in snapshot.items())
    return worst_lost, intact, worst_resume, failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=150, help="COMPLETE trials the two-worker study should hold")
    ap.add_argument("--kills", type=int, default=5, help="kill -9 rounds per storage")
    ap.add_argument("--storages", default="journal,sqlite,postgresql")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="parasearch-durability-"))
    storages: dict[str, str] = {}
    server = None
    for kind in args.storages.split(","):
        if kind == "journal":
            storages[kind] = str(tmp / "study.log")
        elif kind == "sqlite":
            storages[kind] = f"sqlite:///{tmp / 'study.db'}"
        elif kind == "postgresql":
            from tests.search._postgres import PostgresServer, find_bin

            if not (find_bin("initdb") and find_bin("pg_ctl")):
                print("note: PostgreSQL skipped: server binaries (initdb, pg_ctl) not installed")
                continue
            server = PostgresServer()
            storages[kind] = server.start().replace("postgresql+psycopg2://", "postgresql://")
    try:
        print(f"{'storage':10s} {'crashed':>7s} {'trials':>6s} {'dup/100':>7s} {'kills':>5s} {'lost/kill':>9s} "
              f"{'intact':>6s} {'resume s':>8s}")
        for kind, url in storages.items():
            crashed, n, dup, first = two_workers(url, args.trials)
            lost, intact, resume, failures = kills(url, args.kills)
            print(f"{kind:10s} {crashed:7d} {n:6d} {dup:7.1f} {args.kills:5d} {lost:9d} {str(intact):>6s} "
                  f"{resume:8.2f}" + (f"   ({failures} resumes failed)" if failures else ""))
            if first:
                print(f"           first worker error: {first}")
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
