"""The integer program: how many replicas of each candidate, per pool.

Variables: x_c >= 0 integer replicas of candidate c; R_dis >= 0 the request rate served
disaggregated; per pool, y_p >= 0 integer nodes holding replicas smaller than a node.

  served rate      R = sum_{c aggregated} r_c x_c + R_dis
  rate matching    R_dis <= sum_{c prefill} r_c x_c      (prompt tokens: rate x input length)
                   R_dis <= sum_{c decode}  r_c x_c      (output tokens: rate x output length)
  KV transfer      R_dis * kv_bytes <= sum_{c prefill} link_c x_c   and the same for decode
  node packing     sum_{c big in p} (gpus_c / gpus_per_node) x_c + y_p <= nodes_p
                   sum_{c small in p} gpus_c x_c <= gpus_per_node * y_p
  end-to-end SLO   a prefill p and a decode d whose TTFT_p + (output - 1) TPOT_d exceeds it are
                   not both used (binary u_c >= x_c / bound_c, u_p + u_d <= 1)
  GPU limits       min_gpus <= sum gpus_c x_c <= max_gpus (search limits, when given)
  objectives       goodput: max R (R <= target rate when one is given), then fewest GPUs
                   gpus / cost: min sum gpus_c x_c (x price) subject to R >= target rate

Small replica sizes divide the node size and each divides the next (1, 2, 4, 8), so any set whose
GPUs fit in y_p nodes packs into them without crossing a node: the packing constraint is exact.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

from ...errors import ParasearchError
from ...spec.problem import Problem
from .candidates import Candidate


@dataclass
class Allocation:
    counts: dict[int, int]             # candidate index -> replicas
    served_rate: float
    aggregated_rate: float
    disaggregated_rate: float
    gpus: int
    cost_per_hour: float | None
    status: str                        # optimal | time-limited | infeasible
    gap: float | None
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


def _solver(name: str, time_limit: float, log_path: str | None):
    import pulp

    if name == "highs":
        if "HiGHS" not in pulp.listSolvers(onlyAvailable=True):
            raise ParasearchError("HiGHS is not available", hint="pip install highspy, or use --solver cbc")
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=0.0, threads=1)
    with warnings.catch_warnings():  # PuLP 3.x warns that 4.0 unbundles CBC; this project pins PuLP < 4
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=0.0, logPath=log_path, threads=1)


def _cbc_gap(log_path: str) -> float | None:
    try:
        text = open(log_path).read()
    except OSError:
        return None
    m = re.findall(r"Gap:\s+([0-9.eE+-]+)", text)
    return float(m[-1]) if m else None


def solve(problem: Problem, cands: list[Candidate], *, objective: str, target_rate: float | None,
          kv_bytes: float, solver: str = "cbc", time_limit: float = 60.0, fewest_gpus: bool = True) -> Allocation:
    """Solve one plan. For `goodput`, a second stage (when `fewest_gpus`) keeps the best rate and
    minimizes GPUs, so no idle replica is handed out."""
    import pulp

    t0 = time.perf_counter()
    pools = {p.name: p for p in problem.pools}
    prob = pulp.LpProblem("plan", pulp.LpMaximize if objective == "goodput" else pulp.LpMinimize)
    x = {}
    for i, c in enumerate(cands):
        pool = pools[c.pool]
        ub = pool.gpus // c.gpus
        if ub >= 1:
            x[i] = prob.add_variable(f"x{i}", lowBound=0, upBound=ub, cat="Integer")
    r_dis = prob.add_variable("R_dis", lowBound=0)
    agg = pulp.lpSum(c.rate * x[i] for i, c in enumerate(cands) if i in x and c.role == "aggregated")
    pre = [(i, c) for i, c in enumerate(cands) if i in x and c.role == "prefill"]
    dec = [(i, c) for i, c in enumerate(cands) if i in x and c.role == "decode"]
    prob += r_dis <= pulp.lpSum(c.rate * x[i] for i, c in pre)
    prob += r_dis <= pulp.lpSum(c.rate * x[i] for i, c in dec)
    if kv_bytes > 0:
        prob += r_dis * kv_bytes <= pulp.lpSum(c.kv_link_bytes_per_s * x[i] for i, c in pre)
        prob += r_dis * kv_bytes <= pulp.lpSum(c.kv_link_bytes_per_s * x[i] for i, c in dec)
    served = agg + r_dis
    for k, (name, pool) in enumerate(pools.items()):
        g = pool.gpus_per_node
        big = [(i, c) for i, c in enumerate(cands) if i in x and c.pool == name and c.gpus >= g]
        small = [(i, c) for i, c in enumerate(cands) if i in x and c.pool == name and c.gpus < g]
        y = prob.add_variable(f"y{k}", lowBound=0, upBound=pool.nodes, cat="Integer")
        prob += pulp.lpSum((c.gpus // g) * x[i] for i, c in big) + y <= pool.nodes
        prob += pulp.lpSum(c.gpus * x[i] for i, c in small) <= g * y
    gpus = pulp.lpSum(c.gpus * x[i] for i, c in enumerate(cands) if i in x)
    lim = problem.limits
    if lim.max_gpus:
        prob += gpus <= lim.max_gpus
    if lim.min_gpus:
        prob += gpus >= lim.min_gpus
    e2e = problem.slo.e2e_s
    if e2e and pre and dec:
        tail = problem.workload.output_tokens - 1
        clash = [(i, j) for i, p in pre for j, d in dec if p.ttft_s + tail * d.tpot_s > e2e]
        used = {}
        for i in {a for a, _ in clash} | {b for _, b in clash}:
            used[i] = prob.add_variable(f"u{i}", cat="Binary")
            prob += x[i] <= x[i].upBound * used[i]
        for i, j in clash:
            prob += used[i] + used[j] <= 1

    def price(c: Candidate) -> float:
        p = pools[c.pool].price_per_gpu_hour
        if p is None:
            raise ParasearchError(f"objective 'cost' needs price_per_gpu_hour (pool {c.pool} has none)")
        return p

    if objective == "goodput":
        if target_rate:
            prob += served <= target_rate
        prob += served
    else:
        if not target_rate:
            raise ParasearchError(f"objective '{objective}' needs workload.arrival_rate (the rate to serve)")
        prob += served >= target_rate
        prob += gpus if objective == "gpus" else pulp.lpSum(price(c) * c.gpus * x[i] for i, c in enumerate(cands)
                                                          if i in x)
    status, gap = _run(prob, solver, time_limit)
    if status == "infeasible":
        return Allocation({}, 0.0, 0.0, 0.0, 0, None, status, None, time.perf_counter() - t0)
    values = {i: v.value() or 0.0 for i, v in x.items()}
    if objective == "goodput" and fewest_gpus:
        # Second stage: among plans that serve the best rate, the one with the fewest GPUs. If it
        # does not come back with a plan, the first stage's plan stands.
        best = pulp.value(served) or 0.0
        prob.sense = pulp.LpMinimize
        prob.setObjective(gpus)
        prob += served >= best * (1 - 1e-7) - 1e-9
        try:
            status2, gap2 = _run(prob, solver, time_limit)
        except ParasearchError:
            status2, gap2 = "infeasible", None
        if status2 != "infeasible":
            values = {i: v.value() or 0.0 for i, v in x.items()}
            status, gap = (status if status2 == "optimal" else status2), (gap if status2 == "optimal" else gap2)
    counts = {i: int(round(v)) for i, v in values.items() if v > 0.5}
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
    total_gpus = sum(cands[i].gpus * n for i, n in counts.items())
    prices = [pools[cands[i].pool].price_per_gpu_hour for i in counts]
    cost = (sum(pools[cands[i].pool].price_per_gpu_hour * cands[i].gpus * n for i, n in counts.items())
            if counts and all(p is not None for p in prices) else None)
    return Allocation(counts, agg_rate + dis_rate, agg_rate, dis_rate, total_gpus, cost, status, gap,
                      time.perf_counter() - t0, pulp.value(prob.objective))


def _run(prob, solver: str, time_limit: float) -> tuple[str, float | None]:
    import pulp

    fd, log_path = tempfile.mkstemp(prefix="parasearch-cbc-", suffix=".log")
    os.close(fd)
    try:
        s = _solver(solver, time_limit, log_path)
        with quiet_stdout():
            prob.solve(s)
        if prob.status == pulp.LpStatusInfeasible or prob.sol_status == pulp.LpSolutionInfeasible:
            return "infeasible", None
        if prob.status == pulp.LpStatusNotSolved and prob.sol_status == pulp.LpSolutionNoSolutionFound:
            raise ParasearchError(f"the solver found no plan within {time_limit:g} s", hint="raise --time-limit")
        if prob.sol_status == pulp.LpSolutionOptimal:
            return "optimal", 0.0
        gap = None
        if solver == "highs" and getattr(prob, "solverModel", None) is not None:
            try:
                gap = float(prob.solverModel.getInfo().mip_gap)
            except Exception:
                gap = None
        else:
            gap = _cbc_gap(log_path)
        return "time-limited", gap
    finally:
        os.unlink(log_path)
