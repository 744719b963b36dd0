"""The integer program: how many replicas of each candidate, per pool.

Variables: x_c >= 0 integer replicas of candidate c; R_dis >= 0 the request rate served
disaggregated; per pool, y_p >= 0 integer nodes holding replicas smaller than a node.

  served rate      R = sum_{c aggregated} r_c x_c + R_dis
  rate matching    R_dis <= sum_{c prefill} r_c x_c      (prompt tokens: rate x input length)
                   R_dis <= sum_{c decode}  r_c x_c      (output tokens: rate x output length)
  KV transfer      R_dis <= sum_{c prefill} (link_c / kv_bytes) x_c   and the same for decode
  node packing     a replica of c is pp_c stages of stage_c = tp_c ep_c GPUs (space/packing.py):
                   sum_{c, big stage in p} pp_c (stage_c / gpus_per_node) x_c + y_p <= nodes_p
                   and the stages smaller than a node fill y_p shared nodes (below)
  end-to-end SLO   a prefill p and a decode d whose TTFT_p + (output - 1) TPOT_d exceeds it are
                   not both used. The decodes p cannot pair with are the slowest k_p of them, so
                   one binary per decode rank says "one of the k slowest decodes is used"
                   (s_k >= s_{k-1}, x_{d_k} <= bound s_k) and p is used only if s_{k_p} = 0:
                   O(prefills + decodes) rows instead of one per clashing pair
  GPU limits       min_gpus <= sum gpus_c x_c <= max_gpus (search limits, when given)
  objectives       goodput: max min(R, target rate), then fewest GPUs
                   gpus / cost: min sum gpus_c x_c (x price) subject to R >= target rate

Shared nodes: when the pool's small stage sizes divide the node and each divides the next
(1, 2, 4, 8), any set of stages whose GPUs fit in y_p nodes packs into them without crossing a node,
so  sum_c pp_c stage_c x_c <= gpus_per_node y_p  is exact. Otherwise (stages of 3, 5, 6 GPUs next
to others) each shared node takes one of the maximal node patterns (multisets of stage sizes that
fill a node so no further stage fits), z_pk integer nodes of pattern k, sum_k z_pk = y_p, and the
stages of each size fit the slots the patterns give:  sum_{c: stage_c = s} pp_c x_c <= sum_k
n_ks z_pk. Every packing of stages into nodes has, node by node, a pattern contained in a maximal
one, so this too is exact.

Time: `time_limit` bounds one `solve` call whole (building the model, both goodput stages), and a
solve always returns the best plan it has: the solver's incumbent, or, when a time-limited solver
found none, the greedy plan it was started from (`greedy.py`). "infeasible" is said only when the
solver proved it within its time; running out of time is "time-limited" (with a plan) or
"no-solution" (without one), never infeasible.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

from ...errors import ParasearchError
from ...spec.problem import Problem
from ...space.packing import replicas_that_fit
from .candidates import Candidate
from .greedy import Greedy, greedy_plan

MIN_SOLVE_S = 0.2  # the least a solver call is given: enough for CBC to read the model and return its start


@dataclass
class Allocation:
    counts: dict[int, int]             # candidate index -> replicas
    served_rate: float
    aggregated_rate: float
    disaggregated_rate: float
    gpus: int
    cost_per_hour: float | None
    status: str                        # optimal | time-limited | infeasible | no-solution
    gap: float | None                  # relative gap of the chosen objective, >= 0; 0 when optimal
    seconds: float
    objective: float | None = None
    notes: list[str] = field(default_factory=list)


@contextmanager
def quiet_stdout():
    """HiGHS writes its banner straight to file descriptor 1, past Python's sys.stdout: point fd 1
    at /dev/null while a solver runs so nothing reaches the user's data stream."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _solver(name: str, time_limit: float, log_path: str | None, warm: bool):
    import pulp

    if name == "highs":
        if "HiGHS" not in pulp.listSolvers(onlyAvailable=True):
            raise ParasearchError("HiGHS is not available", hint="pip install highspy, or use --solver cbc")
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=0.0, threads=1)
    with warnings.catch_warnings():  # PuLP 3.x warns that 4.0 unbundles CBC; this project pins PuLP < 4
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=0.0, logPath=log_path, threads=1,
                                 warmStart=warm)


def _cbc_bounds(log_path: str) -> tuple[float | None, float | None]:
    """(objective of the incumbent, best bound) from CBC's log; None where CBC did not print one."""
    try:
        text = open(log_path).read()
    except OSError:
        return None, None
    obj = re.findall(r"^Objective value:\s+([-0-9.eE+]+)", text, re.M)
    bound = re.findall(r"^(?:Lower|Upper) bound:\s+([-0-9.eE+]+)", text, re.M)
    value = float(obj[-1]) if obj else None
    return (value if value is not None and abs(value) < 1e40 else None), (float(bound[-1]) if bound else None)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / |objective|: never negative (CBC prints -0.00 for maximizations)."""
    if objective is None or bound is None or not all(map(math.isfinite, (objective, bound))):
        return None
    return abs(bound - objective) / max(abs(objective), 1e-9)


@dataclass
class _Model:
    prob: object
    x: dict
    y: dict
    r_dis: object
    served: object
    gpus: object
    binaries: dict
    slow: list  # decode candidate indices, slowest first (the end-to-end rows' order)
    z: dict = field(default_factory=dict)  # pool -> node-pattern variables (mixed stage sizes)


def _expr(pairs):
    """A linear expression from (variable, coefficient) pairs in one step: PuLP's `lpSum(c * x)`
    builds an intermediate expression per term, seconds on ten thousand candidates."""
    import pulp

    return pulp.LpAffineExpression([(v, float(c)) for v, c in pairs if c])


def _build(problem: Problem, cands: list[Candidate], objective: str, target_rate: float | None,
           kv_bytes: float) -> _Model:
    import pulp

    pools = {p.name: p for p in problem.pools}
    prob = pulp.LpProblem("plan", pulp.LpMaximize if objective == "goodput" else pulp.LpMinimize)
    x = {}
    for i, c in enumerate(cands):
        ub = replicas_that_fit(c.stage_gpus, c.slots, pools[c.pool])
        if ub >= 1:
            x[i] = prob.add_variable(f"x{i}", lowBound=0, upBound=ub, cat="Integer")
    r_dis = prob.add_variable("R_dis", lowBound=0)
    agg = [(x[i], c.rate) for i, c in enumerate(cands) if i in x and c.role == "aggregated"]
    pre = [(i, c) for i, c in enumerate(cands) if i in x and c.role == "prefill"]
    dec = [(i, c) for i, c in enumerate(cands) if i in x and c.role == "decode"]
    prob += _expr([(r_dis, 1.0)] + [(x[i], -c.rate) for i, c in pre]) <= 0
    prob += _expr([(r_dis, 1.0)] + [(x[i], -c.rate) for i, c in dec]) <= 0
    if kv_bytes > 0:
        # In requests per second (link bytes/s over bytes per request): rows in bytes carry
        # coefficients of 1e10 next to rates of 1, which left CBC up to 10 s on 30-variable models.
        prob += _expr([(r_dis, 1.0)] + [(x[i], -c.kv_link_bytes_per_s / kv_bytes) for i, c in pre]) <= 0
        prob += _expr([(r_dis, 1.0)] + [(x[i], -c.kv_link_bytes_per_s / kv_bytes) for i, c in dec]) <= 0
    served = _expr(agg + [(r_dis, 1.0)])
    y = {}
    z = {}
    for k, (name, pool) in enumerate(pools.items()):
        g = pool.gpus_per_node
        y[name] = yv = prob.add_variable(f"y{k}", lowBound=0, upBound=pool.nodes, cat="Integer")
        mine = [(i, c) for i, c in enumerate(cands) if i in x and c.pool == name]
        big = [(x[i], c.slots * (c.stage_gpus // g)) for i, c in mine if c.stage_gpus > g]
        prob += _expr(big + [(yv, 1.0)]) <= pool.nodes
        small = [(i, c) for i, c in mine if c.stage_gpus <= g]
        patterns = node_patterns(sorted({c.stage_gpus for _, c in small}), g)
        if patterns is None:
            prob += _expr([(x[i], c.slots * c.stage_gpus) for i, c in small] + [(yv, -g)]) <= 0
            continue
        zs = z[name] = [prob.add_variable(f"z{k}_{j}", lowBound=0, upBound=pool.nodes, cat="Integer")
                        for j in range(len(patterns))]
        prob += _expr([(zv, 1.0) for zv in zs] + [(yv, -1.0)]) <= 0
        for size in sorted({c.stage_gpus for _, c in small}):
            prob += _expr([(x[i], c.slots) for i, c in small if c.stage_gpus == size]
                          + [(zv, -pat.get(size, 0)) for zv, pat in zip(zs, patterns)]) <= 0
    gpus = _expr([(x[i], c.gpus) for i, c in enumerate(cands) if i in x])
    lim = problem.limits
    if lim.max_gpus:
        prob += gpus <= lim.max_gpus
    if lim.min_gpus:
        prob += gpus >= lim.min_gpus
    binaries, slow = _e2e_rows(prob, problem, x, pre, dec)
    if objective == "goodput":
        if target_rate:
            # The rate served is min(capacity, target), a continuous S: asking the integer capacity
            # itself to stay under the target is a subset-sum that only disaggregation's R_dis could fill.
            cap = prob.add_variable("S", lowBound=0, upBound=target_rate)
            prob += _expr([(cap, 1.0), (r_dis, -1.0)] + [(v, -c) for v, c in agg]) <= 0
            served = cap
        prob += served
    else:
        if not target_rate:
            raise ParasearchError(f"objective '{objective}' needs workload.arrival_rate (the rate to serve)")
        prob += served >= target_rate
        if objective == "gpus":
            prob += gpus
        else:
            missing = next((c.pool for i, c in enumerate(cands) if i in x and pools[c.pool].price_per_gpu_hour is None),
                           None)
            if missing:
                raise ParasearchError(f"objective 'cost' needs price_per_gpu_hour (pool {missing} has none)")
            prob += _expr([(x[i], pools[c.pool].price_per_gpu_hour * c.gpus) for i, c in enumerate(cands) if i in x])
    return _Model(prob, x, y, r_dis, served, gpus, binaries, slow, z)


MAX_PATTERNS = 5000


def node_patterns(sizes: list[int], gpus_per_node: int) -> list[dict[int, int]] | None:
    """The maximal ways to fill one node with stages of `sizes` (size -> count), or None when the
    sizes form a chain dividing the node (the GPU count alone is then exact). Past MAX_PATTERNS
    (hundreds of GPUs per node and many sizes) only single-size nodes are offered: still valid
    packings, no longer every one (a note says so)."""
    if all(gpus_per_node % s == 0 for s in sizes) and all(b % a == 0 for a, b in zip(sizes, sizes[1:])):
        return None
    out: list[dict[int, int]] = []
    smallest = min(sizes)
    desc = sorted(sizes, reverse=True)

    def walk(j: int, left: int, cur: dict[int, int]) -> bool:
        if len(out) > MAX_PATTERNS:
            return False
        if j == len(desc):
            if left < smallest:
                out.append(dict(cur))
            return True
        s = desc[j]
        for n in range(left // s, -1, -1):
            if n:
                cur[s] = n
            else:
                cur.pop(s, None)
            if not walk(j + 1, left - n * s, cur):
                return False
        cur.pop(s, None)
        return True

    if not walk(0, gpus_per_node, {}):
        return [{s: gpus_per_node // s} for s in sizes]
    return out


def pattern_of(stages: list[int], patterns: list[dict[int, int]]) -> int | None:
    """Index of a maximal pattern holding one node's stages (None: none offered holds them)."""
    need: dict[int, int] = {}
    for s in stages:
        need[s] = need.get(s, 0) + 1
    return next((k for k, pat in enumerate(patterns) if all(pat.get(s, 0) >= n for s, n in need.items())), None)


def _e2e_rows(prob, problem: Problem, x: dict, pre: list, dec: list) -> tuple[dict, list]:
    """The end-to-end SLO over prefill/decode pairings (see the module docstring)."""
    e2e = problem.slo.e2e_s
    if not (e2e and pre and dec):
        return {}, []
    tail = problem.workload.output_tokens - 1
    slow = sorted(dec, key=lambda ic: -ic[1].tpot_s)  # the slowest decodes first
    # k_p: how many of the slowest decodes prefill p cannot pair with.
    k_of = {i: sum(1 for _, d in slow if p.ttft_s + tail * d.tpot_s > e2e) for i, p in pre}
    top = max(k_of.values(), default=0)
    if top == 0:
        return {}, []
    binaries = {}
    s_prev = None
    for k in range(1, top + 1):
        s_k = binaries[f"s{k}"] = prob.add_variable(f"s{k}", cat="Binary")
        j = slow[k - 1][0]
        prob += _expr([(x[j], 1.0), (s_k, -x[j].upBound)]) <= 0
        if s_prev is not None:
            prob += _expr([(s_prev, 1.0), (s_k, -1.0)]) <= 0
        s_prev = s_k
    for i, k in k_of.items():
        if k:
            u = binaries[f"u{i}"] = prob.add_variable(f"u{i}", cat="Binary")
            prob += _expr([(x[i], 1.0), (u, -x[i].upBound)]) <= 0
            prob += _expr([(u, 1.0), (binaries[f"s{k}"], 1.0)]) <= 1
    return binaries, [j for j, _ in slow[:top]]


def _set_start(m: _Model, problem: Problem, cands: list[Candidate], start: Greedy) -> bool:
    """The greedy plan as the solver's starting point (False: it cannot be written in the model's
    node patterns, and the solver starts cold)."""
    counts = start.counts
    for i, v in m.x.items():
        v.setInitialValue(counts.get(i, 0))
    m.r_dis.setInitialValue(start.r_dis)
    if hasattr(m.served, "setInitialValue"):  # the capped served rate S (goodput with a target)
        agg = sum(cands[i].rate * n for i, n in counts.items() if cands[i].role == "aggregated")
        m.served.setInitialValue(min(agg + start.r_dis, m.served.upBound))
    for name, b in m.binaries.items():
        if name.startswith("u"):
            b.setInitialValue(1 if counts.get(int(name[1:])) else 0)
        else:  # s_k: one of the k slowest decodes is used
            b.setInitialValue(1 if any(counts.get(j) for j in m.slow[:int(name[1:])]) else 0)
    pools = {p.name: p for p in problem.pools}
    for name, yv in m.y.items():
        shared = start.nodes.get(name, [])
        yv.setInitialValue(len(shared))
        if name in m.z:
            patterns = node_patterns(sorted({cands[i].stage_gpus for i in m.x if cands[i].pool == name
                                             and cands[i].stage_gpus <= pools[name].gpus_per_node}),
                                     pools[name].gpus_per_node)
            counts_z = [0] * len(m.z[name])
            for stages in shared:
                k = pattern_of(stages, patterns)
                if k is None:
                    return False
                counts_z[k] += 1
            for zv, n in zip(m.z[name], counts_z):
                zv.setInitialValue(n)
    return True


def solve(problem: Problem, cands: list[Candidate], *, objective: str, target_rate: float | None,
          kv_bytes: float, solver: str = "highs", time_limit: float = 60.0, fewest_gpus: bool = True) -> Allocation:
    """Solve one plan within `time_limit` seconds, model building included. For `goodput`, a
    second stage (when `fewest_gpus`) keeps the best rate and minimizes GPUs, so no idle replica is
    handed out; if it runs out of time the first stage's plan stands."""
    import pulp

    t0 = time.perf_counter()
    deadline = t0 + time_limit
    m = _build(problem, cands, objective, target_rate, kv_bytes)
    start = greedy_plan(problem, cands, objective, target_rate, kv_bytes)
    warm = start is not None and _set_start(m, problem, cands, start)
    if start is not None and not warm:
        for v in m.prob.variables():
            v.setInitialValue(None)
    two_stage = objective == "goodput" and fewest_gpus
    first = (deadline - time.perf_counter()) * (0.7 if two_stage else 1.0)
    # Serving nothing is a plan under goodput: without a GPU floor that objective cannot be infeasible.
    may_be_infeasible = objective != "goodput" or bool(problem.limits.min_gpus)
    status, bound = _run(m.prob, solver, max(first, MIN_SOLVE_S), warm=warm,
                         may_be_infeasible=may_be_infeasible)
    notes: list[str] = []
    if status == "infeasible":
        return Allocation({}, 0.0, 0.0, 0.0, 0, None, status, None, time.perf_counter() - t0)
    if status == "no-solution":
        if start is None:
            return Allocation({}, 0.0, 0.0, 0.0, 0, None, status, None, time.perf_counter() - t0)
        values = {i: float(start.counts.get(i, 0)) for i in m.x}
        status, gap = "time-limited", None  # measured against the solver's bound below
        notes.append("the solver found no plan in its time; this is the greedy plan it started from")
    else:
        values = {i: v.value() or 0.0 for i, v in m.x.items()}
        gap = 0.0 if status == "optimal" else relative_gap(pulp.value(m.prob.objective), bound)
    if two_stage and not notes:
        # Second stage: among plans that serve the best rate, the one with the fewest GPUs,
        # started from the first stage's plan (the variables hold it).
        best = pulp.value(m.served) or 0.0
        m.prob.sense = pulp.LpMinimize
        m.prob.setObjective(m.gpus)
        m.prob += m.served >= best * (1 - 1e-7) - 1e-9
        left = deadline - time.perf_counter()
        status2 = "no-solution"
        if left > MIN_SOLVE_S / 2:
            status2, _ = _run(m.prob, solver, max(left, MIN_SOLVE_S), warm=True, may_be_infeasible=False)
        if status2 in ("optimal", "time-limited"):
            values = {i: v.value() or 0.0 for i, v in m.x.items()}
        if status2 != "optimal":
            notes.append("the fewest-GPU stage ran out of time: the plan may use more GPUs than it needs")
    counts = {i: int(round(v)) for i, v in values.items() if v > 0.5}
    alloc = allocation(problem, cands, counts, objective, target_rate, kv_bytes, status, gap,
                       time.perf_counter() - t0)
    if gap is None:
        alloc.gap = relative_gap(alloc.objective, bound)
    alloc.notes = notes
    return alloc


def allocation(problem: Problem, cands: list[Candidate], counts: dict[int, int], objective: str,
               target_rate: float | None, kv_bytes: float, status: str, gap: float | None,
               seconds: float) -> Allocation:
    """The rates, GPUs and cost of integer replica counts."""
    pools = {p.name: p for p in problem.pools}
    agg_rate = sum(cands[i].rate * n for i, n in counts.items() if cands[i].role == "aggregated")
    # The disaggregated rate the integer plan supports (never more than its prefill, decode and
    # KV-transfer capacities allow).
    caps = [sum(cands[i].rate * n for i, n in counts.items() if cands[i].role == role) for role in ("prefill", "decode")]
    if kv_bytes > 0:
        caps += [sum(cands[i].kv_link_bytes_per_s * n for i, n in counts.items() if cands[i].role == role) / kv_bytes
                 for role in ("prefill", "decode")]
    dis_rate = min(caps)
    if objective == "goodput" and target_rate:
        dis_rate = max(min(dis_rate, target_rate - agg_rate), 0.0)
        agg_rate = min(agg_rate, target_rate)  # serving the target is all that is asked (the S of _build)
    total_gpus = sum(cands[i].gpus * n for i, n in counts.items())
    prices = [pools[cands[i].pool].price_per_gpu_hour for i in counts]
    cost = (sum(pools[cands[i].pool].price_per_gpu_hour * cands[i].gpus * n for i, n in counts.items())
            if counts and all(p is not None for p in prices) else None)
    value = {"goodput": agg_rate + dis_rate, "gpus": total_gpus, "cost": cost}.get(objective)
    return Allocation(counts, agg_rate + dis_rate, agg_rate, dis_rate, total_gpus, cost, status, gap, seconds, value)


def _run(prob, solver: str, time_limit: float, *, warm: bool, may_be_infeasible: bool) -> tuple[str, float | None]:
    """(status, best bound) of one solver call: optimal, time-limited (a plan, not proven best),
    no-solution (no plan in time) or infeasible (proven, within the time)."""
    import pulp

    fd, log_path = tempfile.mkstemp(prefix="parasearch-cbc-", suffix=".log")
    os.close(fd)
    t0 = time.perf_counter()
    try:
        s = _solver(solver, time_limit, log_path, warm and solver == "cbc")
        with quiet_stdout():
            prob.solve(s)
        ran = time.perf_counter() - t0
        if prob.sol_status == pulp.LpSolutionOptimal:
            return "optimal", None
        if prob.sol_status == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
            # A solver stopped by its clock may call a model it had no time for infeasible.
            proven = may_be_infeasible and ran < 0.9 * time_limit
            return ("infeasible" if proven else "no-solution"), None
        found = prob.sol_status == pulp.LpSolutionIntegerFeasible
        status = "time-limited" if found else "no-solution"
        if solver == "highs":
            try:
                return status, _highs_bound(prob, prob.solverModel.getInfo())
            except Exception:  # no model was built
                return status, None
        return status, _cbc_bounds(log_path)[1]
    finally:
        os.unlink(log_path)


def _highs_bound(prob, info) -> float | None:
    """HiGHS minimizes internally (a maximization is negated): its dual bound, in the model's sense."""
    import pulp

    bound = float(info.mip_dual_bound)
    if not math.isfinite(bound):
        return None
    return -bound if prob.sense == pulp.LpMaximize else bound
