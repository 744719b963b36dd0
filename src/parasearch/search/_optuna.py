"""Black-box multi-objective search with Optuna (NSGA-II by default, TPE as an option).

Trials sample the parallel degrees and the batch cap as categorical parameters; a combination the
space does not contain is infeasible by constraint. Feasibility (memory, SLOs, arrival rate) is
reported through `trial.set_constraint`, so the sampler ranks near-misses above far misses. A
placement already evaluated (by this process, an earlier run, or another worker on the same
storage) is not evaluated again. Several processes given the same `--storage` and `--study`
cooperate on one study, Optuna's documented distributed pattern; each stops once the study
holds the requested number of finished trials.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from ..cost.layout import Layout
from ..errors import ParasearchError
from ..space.enumerate import Space
from ..spec.problem import Problem
from .evaluate import OBJECTIVES, evaluate
from .result import SearchResult, front_of

def _storage(url: str | None):
    import optuna

    if not url:
        return None
    if "://" in url:
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=120)
        except ImportError as exc:
            raise ParasearchError(f"storage {url!r} needs a database driver: {exc}",
                                  hint="pip install 'parasearch[postgres]' for PostgreSQL") from None
        except Exception as exc:  # sqlalchemy errors: bad URL, server down, auth
            raise ParasearchError(f"cannot open storage {url!r}: {str(exc).splitlines()[0]}") from None
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(url))
    except OSError as exc:
        raise ParasearchError(f"cannot open journal file {url!r}: {exc.strerror}") from None


def _sampler(problem: Problem):
    import optuna

    o = problem.optuna
    if o.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=o.seed, multivariate=True, group=True)
    return optuna.samplers.NSGAIISampler(seed=o.seed, population_size=o.population)


def _shape_name(tp: int, pp: int, ep: int, adp: bool) -> str:
    return f"tp{tp}-pp{pp}-ep{ep}" + ("-adp" if adp else "")


class _Objective:
    """Samples a replica shape (a valid (tp, pp, ep, attn_dp)), a batch cap and, with an arrival
    rate, a replica count: every sample is a placement of the space, none is wasted on an invalid
    combination. A placement seen before is pruned instead of evaluated again, so `trials` counts
    distinct placements."""

    def __init__(self, problem: Problem, space: Space) -> None:
        self.problem = problem
        self.space = space
        lay = space.layout
        self.valid = {(int(a), int(b), int(c), int(d), bool(e), int(f)) for a, b, c, d, e, f in
                      zip(lay.tp, lay.pp, lay.ep, lay.dp, lay.attn_dp, space.max_batch)}
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
        self.seen: set[tuple] = set()
        self.evaluations = 0
        self.duplicates_in_a_row = 0
        self.worker = f"{os.uname().nodename}:{os.getpid()}"
        self.shared = problem.optuna.storage is not None  # other processes may add trials

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

    def _known(self, study, key: tuple) -> bool:
        if key in self.seen:
            return True
        if not self.shared:
            return False  # an in-memory study has no other writer: `seen` is complete
        import optuna

        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            placement = t.user_attrs.get("placement")
            if placement is not None:
                self.seen.add(tuple(placement))
        return key in self.seen

    def evaluate(self, key: tuple) -> tuple[list[float], dict[str, float]]:
        tp, pp, ep, dp, adp, mb = key
        sp = Space(Layout.of(tp, pp, ep, dp, adp), np.array([float(mb)]), self.space.pool)
        ev = evaluate(self.problem, sp)
        self.evaluations += 1
        values = []
        for o in self.problem.objectives:
            metric, sense = OBJECTIVES[o]
            v = float(ev.metric(metric)[0])
            values.append(v if np.isfinite(v) else (0.0 if sense > 0 else 1e12))
        s = ev.serving
        slo = self.problem.slo
        cons = {"memory": 0.0 if s.fits[0] else 1.0 + float(-min(s.memory.kv_budget[0], 0.0)) / 1e9}
        if ev.load is not None:
            # Under traffic every SLO is folded into the goodput: short of the target rate (or of any).
            good, target = float(ev.load.goodput[0]), ev.load.target_rate
            cons["goodput"] = (target / good - 1.0 if target else 0.0) if good > 0 else 1.0
            return values, cons
        for name, limit, got in (("ttft", slo.ttft_s, s.ttft_s[0]), ("tpot", slo.tpot_s, s.tpot_s[0]),
                                 ("e2e", slo.e2e_s, s.e2e_s[0])):
            if limit:
                cons[name] = float(got / limit - 1.0)
        if self.problem.workload.arrival_rate:
            cons["rate"] = float(s.utilization[0] - 1.0)
        return values, cons

    def __call__(self, trial) -> list[float]:
        import optuna

        key = self.params(trial)
        if self._known(trial.study, key):
            self.duplicates_in_a_row += 1
            if len(self.seen) >= len(self.valid) or self.duplicates_in_a_row > 300:
                trial.study.stop()  # the space is exhausted, or the sampler has converged
            raise optuna.TrialPruned("placement already evaluated")
        self.duplicates_in_a_row = 0
        self.seen.add(key)
        trial.set_user_attr("placement", list(key))
        trial.set_user_attr("worker", self.worker)
        values, cons = self.evaluate(key)
        for name, v in cons.items():
            trial.set_constraint(name, v)
        return values


def _warm_starts(obj: _Objective) -> list[dict[str, Any]]:
    """Heuristic first points: for every replica shape at the shallowest pipeline, the largest
    batch cap (throughput end) and the smallest (latency end)."""
    out = []
    by_tp: dict[tuple, list[str]] = {}
    for name, (tp, pp, ep, adp) in obj.shapes.items():
        by_tp.setdefault((tp, adp), []).append(name)
    for names in by_tp.values():
        best = min(names, key=lambda n: (obj.shapes[n][1], -obj.shapes[n][2]))
        for mb in (max(obj.batches[best]), min(obj.batches[best])):
            p: dict[str, Any] = {}
            if len(obj.choices["shape"]) > 1:
                p["shape"] = best
            if len(obj.choices["max_batch"]) > 1:
                p["max_batch"] = mb
            if obj.sample_dp:
                p["dp"] = max(obj.dps[best])
            if p and p not in out:
                out.append(p)
    return out


def optuna_search(problem: Problem, space: Space, *, progress: bool = True) -> SearchResult:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    o = problem.optuna
    t0 = time.perf_counter()
    if len(space) == 0:
        raise ParasearchError("the placement space is empty")
    obj = _Objective(problem, space)
    directions = ["maximize" if OBJECTIVES[k][1] > 0 else "minimize" for k in problem.objectives]
    storage = _storage(o.storage)
    name = o.study or f"parasearch-{problem.name}"
    sampler = _sampler(problem)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                    sampler=sampler, load_if_exists=True)
    except ValueError as exc:
        raise ParasearchError(f"study {name!r}: {exc}",
                              hint="a resumed study must keep the same objectives") from None
    done = lambda: len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))  # noqa: E731
    resumed = done()
    if resumed == 0:
        for params in _warm_starts(obj):
            study.enqueue_trial(params, skip_if_exists=True)
    remaining = max(o.trials - resumed, 0)
    callbacks = [optuna.study.MaxTrialsCallback(o.trials, states=(optuna.trial.TrialState.COMPLETE,))]
    bar = None
    if progress and remaining >= 50 and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True, console=None)
        task = bar.add_task(f"optuna {o.sampler}", total=o.trials, completed=resumed)
        bar.start()
        callbacks.append(lambda s, t: bar.update(task, completed=done()))
    try:
        if remaining:
            # Duplicates are pruned, not finished: allow enough attempts to reach `trials` distinct
            # placements; the objective stops the study when the space is exhausted.
            study.optimize(obj, n_trials=remaining * 20, callbacks=callbacks, catch=())
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
    info = {"study": name, "storage": o.storage or "in-memory", "trials": len(trials), "resumed_from": resumed,
            "sampler": o.sampler, "seed": o.seed, "workers": workers, "space_size": len(space),
            "evaluated_here": obj.evaluations}
    notes = [f"{len(trials)} finished trials ({resumed} before this run), {len(keys)} distinct valid placements "
             f"of {len(space)}"]
    return SearchResult("optuna", ev, front, len(keys), time.perf_counter() - t0, notes, info)
