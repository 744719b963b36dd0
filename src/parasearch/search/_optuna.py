"""Black-box multi-objective search with Optuna (NSGA-II by default, TPE as an option).

Trials sample the parallel degrees and the batch cap as categorical parameters; a combination the
space does not contain is infeasible by constraint. Feasibility (memory, SLOs, arrival rate) is
reported through `trial.set_constraint`, so the sampler ranks near-misses above far misses. A
placement already evaluated (by this process, an earlier run, or another worker on the same
storage), or being evaluated by another worker right now, is pruned instead of evaluated again.
Several processes given the same `--storage` and `--study` cooperate on one study, Optuna's
documented distributed pattern; each stops once the study holds the requested number of COMPLETE
trials. Workers run their own ask/tell loop rather than `study.optimize`, so that a trial another
worker finished first, or a busy database, never ends a worker.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import time
import warnings
from datetime import datetime
from typing import Any

import numpy as np

from ..cost.layout import Layout
from ..errors import ParasearchError
from ..space.enumerate import Space
from ..spec.problem import Problem
from .evaluate import OBJECTIVES, evaluate
from .result import SearchResult, front_of
from .storage import mask_url, open_storage

# An evaluation takes milliseconds: a trial RUNNING for this long lost its worker (killed, or its
# machine gone) and no longer holds its placement.
ABANDONED_AFTER_S = 60.0
STORAGE_RETRIES = 8
LOOKUP_LIMIT = 200_000  # spaces up to this many placements are priced in one oracle call


def _sampler(problem: Problem, seed: int):
    import optuna

    o = problem.optuna
    if o.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=o.population)


def default_study_name(problem: Problem) -> str:
    return "parasearch-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", problem.name).strip("-.")[:100] or "study")


def _shape_name(tp: int, pp: int, ep: int, adp: bool) -> str:
    return f"tp{tp}-pp{pp}-ep{ep}" + ("-adp" if adp else "")


class _Objective:
    """Samples a replica shape (a valid (tp, pp, ep, attn_dp)), a batch cap and, with an arrival
    rate, a replica count: every sample is a placement of the space, none is wasted on an invalid
    combination. A placement complete in the study, or claimed by a live trial of another worker,
    is pruned instead of evaluated again, so COMPLETE trials are distinct placements."""

    def __init__(self, problem: Problem, space: Space, shared: bool = False) -> None:
        self.problem = problem
        self.space = space
        lay = space.layout
        # Each row's placement (tp, pp, ep, dp, attn_dp, max_batch), and the row of each placement.
        self.row_of = {k: i for i, k in enumerate(zip(lay.tp.tolist(), lay.pp.tolist(), lay.ep.tolist(),
                                                      lay.dp.tolist(), lay.attn_dp.tolist(),
                                                      space.max_batch.astype(int).tolist()))}
        self.valid = set(self.row_of)
        self.shapes: dict[str, tuple[int, int, int, bool]] = {}
        self.dps: dict[str, list[int]] = {}
        self.batches: dict[str, list[int]] = {}
        for tp, pp, ep, dp, adp, mb in sorted(self.valid):
            name = _shape_name(tp, pp, ep, adp)
            self.shapes[name] = (tp, pp, ep, adp)
            self.dps.setdefault(name, [])
            if dp not in self.dps[name]:
                self.dps[name].append(dp)
            self.batches.setdefault(name, [])
            if mb not in self.batches[name]:
                self.batches[name].append(mb)
        self.choices = {"shape": sorted(self.shapes, key=lambda n: self.shapes[n]),
                        "max_batch": sorted({k[5] for k in self.valid}),
                        "dp": sorted({k[3] for k in self.valid})}
        self.sample_dp = any(len(v) > 1 for v in self.dps.values())
        self.cache: dict[tuple, tuple[list[float], dict[str, float]]] = {}
        self.priced: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        self.seen: set[tuple] = set()
        self.evaluations = 0
        self.duplicates_in_a_row = 0
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.shared = shared  # other processes may add trials
        self.exhausted = False
        self.complete_in_study: int | None = None  # as of the last check against the study

    def params(self, trial) -> tuple:
        shape = trial.suggest_categorical("shape", self.choices["shape"]) if len(self.choices["shape"]) > 1 \
            else self.choices["shape"][0]
        mb = trial.suggest_categorical("max_batch", self.choices["max_batch"]) \
            if len(self.choices["max_batch"]) > 1 else self.choices["max_batch"][0]
        dps = self.dps[shape]
        if self.sample_dp:
            want = trial.suggest_categorical("dp", self.choices["dp"])
            dp = min(dps, key=lambda d: (abs(d - want), d))  # nearest replica count this shape allows
        else:
            dp = dps[0]
        tp, pp, ep, adp = self.shapes[shape]
        return (tp, pp, ep, dp, adp, int(mb))

    def _taken(self, trial, key: tuple) -> bool:
        """Whether another trial holds `key`: COMPLETE, or RUNNING and claimed (past this check),
        or RUNNING unclaimed with a lower number (two workers that drew one placement at the same
        moment: the earlier trial wins). This trial registers its placement first, so of two
        workers checking at once at least one sees the other; it claims the placement by writing
        its worker (one journal write or commit fewer per trial than a separate flag)."""
        import optuna

        if key in self.seen:
            return True
        if not self.shared:
            return False  # an in-memory study has no other writer: `seen` is complete
        trial.set_user_attr("placement", list(key))
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
        taken = False
        current = trial.study.get_trials(deepcopy=False, states=states)
        self.complete_in_study = sum(t.state == optuna.trial.TrialState.COMPLETE for t in current)
        for t in current:
            placement = t.user_attrs.get("placement")
            if placement is None or t.number == trial.number:
                continue
            p = tuple(placement)
            if t.state == optuna.trial.TrialState.COMPLETE:
                self.seen.add(p)
                taken = taken or p == key
            elif p == key and not abandoned(t) and ("worker" in t.user_attrs or t.number < trial.number):
                taken = True
        if not taken:
            trial.set_user_attr("worker", self.worker)  # the claim
        return taken

    def evaluate(self, key: tuple) -> tuple[list[float], dict[str, float]]:
        """Objective values and constraint violations of one placement. The oracle is vectorized:
        on spaces up to LOOKUP_LIMIT placements one call prices the whole space the first time
        and trials read their row, so a trial costs the sampler's time, not the oracle's."""
        self.evaluations += 1
        if len(self.space) <= LOOKUP_LIMIT:
            if self.priced is None:
                self.priced = self.price(evaluate(self.problem, self.space))  # rows as in `row_of`
            i = self.row_of[key]
            values, cons = self.priced
            return [float(v) for v in values[i]], {n: float(c[i]) for n, c in cons.items()}
        tp, pp, ep, dp, adp, mb = key
        sp = Space(Layout.of(tp, pp, ep, dp, adp), np.array([float(mb)]), self.space.pool)
        values, cons = self.price(evaluate(self.problem, sp))
        return [float(v) for v in values[0]], {n: float(c[0]) for n, c in cons.items()}

    def price(self, ev) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(objective values, one column per objective; constraint violations by name, <= 0 met)."""
        cols = []
        for o in self.problem.objectives:
            metric, sense = OBJECTIVES[o]
            v = np.asarray(ev.metric(metric), float)
            cols.append(np.where(np.isfinite(v), v, 0.0 if sense > 0 else 1e12))
        values = np.stack(cols, axis=1)
        s = ev.serving
        slo = self.problem.slo
        cons = {"memory": np.where(s.fits, 0.0, 1.0 + (-np.minimum(s.memory.kv_budget, 0.0)) / 1e9)}
        if ev.load is not None:
            # Under traffic every SLO is folded into the goodput: short of the target rate (or of any).
            good, target = np.asarray(ev.load.goodput, float), ev.load.target_rate
            with np.errstate(divide="ignore", invalid="ignore"):
                short = target / good - 1.0 if target else np.zeros_like(good)
            cons["goodput"] = np.where(good > 0, short, 1.0)
            return values, cons
        for name, limit, got in (("ttft", slo.ttft_s, s.ttft_s), ("tpot", slo.tpot_s, s.tpot_s),
                                 ("e2e", slo.e2e_s, s.e2e_s)):
            if limit:
                cons[name] = np.asarray(got, float) / limit - 1.0
        if self.problem.workload.arrival_rate:
            cons["rate"] = np.asarray(s.utilization, float) - 1.0
        return values, cons

    def __call__(self, trial) -> list[float]:
        import optuna

        key = self.params(trial)
        if self._taken(trial, key):
            self.duplicates_in_a_row += 1
            if len(self.seen) >= len(self.valid) or self.duplicates_in_a_row > 300:
                self.exhausted = True  # the space is exhausted, or the sampler has converged
            raise optuna.TrialPruned("placement already evaluated")
        self.duplicates_in_a_row = 0
        self.seen.add(key)
        if not self.shared:
            trial.set_user_attr("placement", list(key))
            trial.set_user_attr("worker", self.worker)
        values, cons = self.evaluate(key)
        for name, v in cons.items():
            trial.set_constraint(name, v)
        return values


def abandoned(t) -> bool:
    """A RUNNING trial whose worker is gone: a dead process on this machine, or (any machine) no
    word for ABANDONED_AFTER_S, far longer than an evaluation takes."""
    host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    start = t.datetime_start
    return start is not None and (datetime.now() - start).total_seconds() > ABANDONED_AFTER_S


def _fail_abandoned(study) -> int:
    """Mark the RUNNING trials of dead workers FAIL, so that counts are honest and their
    placements are free again. Returns how many."""
    import optuna

    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if abandoned(t):
            try:
                study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                n += 1
            except Exception:  # another worker got there first
                pass
    return n


def _warm_starts(obj: _Objective, budget: int) -> list[dict[str, Any]]:
    """The first `budget` trials: `_promising` placements, best first."""
    return _params_of(obj, _promising(obj))[:budget]


def _promising(obj: _Objective) -> list[tuple]:
    """Placements from the oracle's structure: a cheap pass prices every replica shape at its
    smallest batch cap and its two largest (and, with an arrival rate, its most replicas) in one
    vectorized call; the shapes on that pass's Pareto front are the promising ones, each with
    every batch cap it allows, best shapes first. The cap below the largest: where the largest
    batch breaks the TPOT limit it is often the shape's best, and a shape whose largest cap fails
    and whose smallest is dominated would otherwise never reach the front. The sampler spends
    the rest of the budget exploring around and beyond them."""
    problem, space = obj.problem, obj.space
    pick: list[tuple] = []
    for name, (tp, pp, ep, adp) in obj.shapes.items():
        dp = max(obj.dps[name])
        caps = sorted(obj.batches[name])
        for mb in {caps[0], caps[-1], caps[max(len(caps) - 2, 0)]}:
            pick.append((tp, pp, ep, dp, adp, mb))
    picked = sorted({obj.row_of[k]: k for k in pick if k in obj.row_of}.items())  # (row, placement), in row order
    rows = np.array([r for r, _ in picked], dtype=np.int64)
    ev = evaluate(problem, space.take(rows))
    front = front_of(problem, ev)
    chosen: list[tuple] = []
    seen_shapes: set[str] = set()
    for i in front:
        k = picked[i][1]
        name = _shape_name(k[0], k[1], k[2], k[4])
        if name not in seen_shapes:
            seen_shapes.add(name)
            chosen += [(k[0], k[1], k[2], k[3], k[4], mb)
                       for mb in sorted(obj.batches[name], key=lambda b: (b != k[5], b))]
    return chosen


def _params_of(obj: _Objective, keys) -> list[dict[str, Any]]:
    """Trial parameters that draw each placement of `keys` (in order, without repeats)."""
    out: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for tp, pp, ep, dp, adp, mb in keys:
        p: dict[str, Any] = {}
        if len(obj.choices["shape"]) > 1:
            p["shape"] = _shape_name(tp, pp, ep, adp)
        if len(obj.choices["max_batch"]) > 1:
            p["max_batch"] = mb
        if obj.sample_dp:
            p["dp"] = dp
        if p and tuple(p.items()) not in seen:  # a set: a whole space is thousands of placements
            seen.add(tuple(p.items()))
            out.append(p)
    return out


def _transient(exc: BaseException) -> bool:
    """A database that is busy or briefly unreachable, or a trial another worker finished first."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"OperationalError", "UpdateFinishedTrialError", "DBAPIError"})


def optuna_search(problem: Problem, space: Space, *, progress: bool = True) -> SearchResult:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    o = problem.optuna
    t0 = time.perf_counter()
    if len(space) == 0:
        raise ParasearchError("the placement space is empty")
    storage = open_storage(o.storage) if o.storage else None
    shared = storage is not None
    # Workers sharing a study must not draw the same sequence: without an explicit seed each gets its own.
    seed = o.seed if o.seed is not None else (secrets.randbits(32) if shared else 0)
    obj = _Objective(problem, space, shared)
    directions = ["maximize" if OBJECTIVES[k][1] > 0 else "minimize" for k in problem.objectives]
    name = o.study or default_study_name(problem)
    shown = mask_url(o.storage) if o.storage else "in-memory"
    with warnings.catch_warnings():
        # Two workers on one trial (SQLite pops a queued trial twice) set its constraints twice; harmless.
        warnings.simplefilter("ignore")
        study = _open_study(optuna, storage, name, directions, _sampler(problem, seed), shown)
        done = lambda: len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))  # noqa: E731
        failed_before = _fail_abandoned(study) if shared else 0
        resumed = done()
        remaining = max(o.trials - resumed, 0)
        warm: list = []
        if not study.get_trials(deepcopy=False):
            # A budget that covers the space evaluates all of it: sampling would only redraw duplicates.
            if remaining >= len(obj.valid):  # the whole space, the promising shapes first
                warm = _params_of(obj, _promising(obj) + sorted(obj.valid))
            else:
                warm = _warm_starts(obj, remaining // 2)
        queue = _Queue(study, warm)
        bar = task = None
        if progress and remaining >= 50 and sys.stderr.isatty():
            from rich.progress import Progress

            bar = Progress(transient=True, console=None)
            task = bar.add_task(f"optuna {o.sampler}", total=o.trials, completed=resumed)
            bar.start()
        try:
            _run(optuna, study, obj, o.trials, remaining, done, lambda n: bar and bar.update(task, completed=n), queue)
        except ValueError as exc:
            if "dynamic value space" in str(exc) or "distribution" in str(exc).lower():
                raise ParasearchError(f"study {name!r} was created with a different search space",
                                      hint="keep the problem's search limits, or start a new --study") from None
            raise
        finally:
            if bar:
                bar.stop()
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    keys = sorted({tuple(t.user_attrs["placement"]) for t in trials if "placement" in t.user_attrs}
                  & obj.valid)
    if not keys:
        raise ParasearchError("no trial produced a valid placement", hint="raise --trials")
    a = np.array([[k[0], k[1], k[2], k[3], k[4], k[5]] for k in keys], dtype=np.int64)
    sp = Space(Layout(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(bool)), a[:, 5].astype(float), space.pool)
    ev = evaluate(problem, sp)
    front = front_of(problem, ev)
    workers = sorted({t.user_attrs.get("worker", "?") for t in trials})
    info = {"study": name, "storage": shown, "trials": len(trials), "resumed_from": resumed,
            "sampler": o.sampler, "seed": seed, "workers": workers, "space_size": len(space),
            "evaluated_here": obj.evaluations, "abandoned_trials_failed": failed_before,
            "warm_start_trials": len(warm)}
    notes = [f"{len(trials)} finished trials ({resumed} before this run), {len(keys)} distinct valid placements "
             f"of {len(space)}"]
    if warm and len(warm) >= len(obj.valid):
        notes.append("the trial budget covers the space: every placement was enqueued")
    elif warm:
        notes.append(f"the first {len(warm)} trials were warm starts: the shapes on the front of a cheap pass "
                     f"(every shape at its smallest and two largest batch caps), with every batch cap")
    return SearchResult("optuna", ev, front, len(keys), time.perf_counter() - t0, notes, info)


def _open_study(optuna, storage, name: str, directions: list[str], sampler, shown: str):
    for attempt in range(STORAGE_RETRIES):
        try:
            return optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler,
                                       load_if_exists=True)
        except ValueError as exc:
            raise ParasearchError(f"study {name!r}: {exc}",
                                  hint="a resumed study must keep the same objectives") from None
        except Exception as exc:
            if not _transient(exc) and "UNIQUE constraint" not in str(exc) and "duplicate key" not in str(exc):
                raise ParasearchError(f"cannot open study {name!r} in {shown}: {str(exc).splitlines()[0][:200]}") \
                    from None
            time.sleep(0.05 * 2 ** attempt)  # another worker is creating the same study
    raise ParasearchError(f"cannot open study {name!r} in {shown}: the storage stayed busy")


class _Queue:
    """Warm-start trials, enqueued a chunk at a time as they are asked for: a whole space queued
    at once (8,000 trials) makes every read of a SQLite study slow, a resume after a kill
    included. The study is empty when they are queued and they have no repeats, so no
    skip_if_exists (which compares each new trial with every queued one: quadratic)."""

    CHUNK = 256

    def __init__(self, study, params: list) -> None:
        self.study, self.params, self.at = study, params, 0
        self.refill()

    def refill(self) -> None:
        for p in self.params[self.at:self.at + self.CHUNK]:
            self.study.enqueue_trial(p)
        self.at += self.CHUNK


def _run(optuna, study, obj: _Objective, target: int, remaining: int, done, report, queue: _Queue | None = None) -> None:
    """Ask/tell until the study holds `target` COMPLETE trials. Duplicates are pruned, not
    finished, so allow enough attempts to reach `target` distinct placements; the objective
    flags when the space is exhausted or the sampler has converged."""
    state = optuna.trial.TrialState
    attempts, limit, busy = 0, remaining * 20 + 100, 0
    while remaining > 0 and attempts < limit and not obj.exhausted:
        attempts += 1
        if queue is not None and attempts % _Queue.CHUNK == 0:
            queue.refill()
        trial = None
        try:
            trial = study.ask()
            obj.complete_in_study = None
            try:
                values = obj(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=state.PRUNED, skip_if_finished=True)
                finished = 0
            else:
                study.tell(trial, values, skip_if_finished=True)
                finished = 1
            busy = 0
        except Exception as exc:
            if not _transient(exc) or busy >= STORAGE_RETRIES:
                if trial is not None:
                    _tell_quietly(study, trial, state.FAIL)
                raise
            busy += 1  # the database is busy, or another worker finished this trial: back off and go on
            if trial is not None:
                _tell_quietly(study, trial, state.FAIL)
            time.sleep(0.02 * 2 ** busy)
            continue
        # The check against the study just counted its COMPLETE trials: spare the storage a second read.
        n = obj.complete_in_study + finished if obj.complete_in_study is not None else done()
        report(n)
        remaining = target - n


def _tell_quietly(study, trial, state) -> None:
    try:
        study.tell(trial, state=state, skip_if_finished=True)
    except Exception:
        pass
