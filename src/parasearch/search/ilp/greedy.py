"""A quick feasible plan: the incumbent a solver starts from, and the plan that stands when a
time-limited solver finds none of its own.

Replicas are added one at a time, the most efficient kind first (requests/s per GPU, or per dollar
for the cost objective): aggregated replicas, or prefill and decode replicas in step (a decode
replica, then prefill replicas until their rate and KV bandwidth match it), whichever serves a
request with fewer GPUs. They are packed into each pool's nodes under the integer program's rules
(stages larger than a node take whole nodes, smaller stages go first-fit into the nodes opened
for them, a replica's stages anywhere: space/packing.py), and
a prefill and a decode whose pairing would break the end-to-end SLO are never both used. The
plan is feasible for the integer program by construction, never optimal by promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...spec.problem import Problem
from .candidates import Candidate

@dataclass
class Greedy:
    counts: dict[int, int] = field(default_factory=dict)
    r_dis: float = 0.0                 # the disaggregated rate the plan serves
    nodes: dict[str, list[list[int]]] = field(default_factory=dict)  # pool -> stage sizes in each shared node


def _served(cands, counts, kv_bytes) -> tuple[float, float]:
    """(aggregated rate, disaggregated rate the replicas support)."""
    agg = sum(cands[i].rate * n for i, n in counts.items() if cands[i].role == "aggregated")
    caps = []
    for role in ("prefill", "decode"):
        caps.append(sum(cands[i].rate * n for i, n in counts.items() if cands[i].role == role))
        if kv_bytes > 0:
            caps.append(sum(cands[i].kv_link_bytes_per_s * n for i, n in counts.items() if cands[i].role == role)
                        / kv_bytes)
    return agg, min(caps)


def greedy_plan(problem: Problem, cands: list[Candidate], objective: str, target_rate: float | None,
                kv_bytes: float) -> Greedy | None:
    """A plan, or None when this rule cannot meet the objective's target (or the GPU floor)."""
    pools = {p.name: p for p in problem.pools}
    free_nodes = {n: p.nodes for n, p in pools.items()}
    shared = {n: [] for n in pools}  # pool -> stage sizes in each node opened for stages smaller than a node
    lim = problem.limits
    max_gpus = lim.max_gpus or float("inf")
    e2e, tail = problem.slo.e2e_s, problem.workload.output_tokens - 1
    plan = Greedy()
    state = {"gpus": 0, "ttft": 0.0, "tpot": 0.0}  # GPUs used; slowest prefill TTFT and decode TPOT used

    def cost(c: Candidate) -> float:  # what one replica costs in the objective's currency
        price = pools[c.pool].price_per_gpu_hour if objective == "cost" else 1.0
        return c.gpus * (price or 1.0)

    def useful_rate(c: Candidate) -> float:
        link = c.kv_link_bytes_per_s / kv_bytes if kv_bytes > 0 and c.role != "aggregated" else float("inf")
        return min(c.rate, link)

    def pairs_ok(c: Candidate) -> bool:
        if not e2e:
            return True
        if c.role == "prefill":
            return c.ttft_s + tail * state["tpot"] <= e2e
        if c.role == "decode":
            return state["ttft"] + tail * c.tpot_s <= e2e
        return True

    def place(i: int) -> bool:
        c = cands[i]
        g = pools[c.pool].gpus_per_node
        if state["gpus"] + c.gpus > max_gpus or not pairs_ok(c):
            return False
        s = c.stage_gpus
        if s > g:
            need = c.slots * (s // g)
            if free_nodes[c.pool] < need:
                return False
            free_nodes[c.pool] -= need
        else:
            nodes = [list(n) for n in shared[c.pool]]
            opened = 0
            for _ in range(c.slots):
                home = next((n for n in nodes if sum(n) + s <= g), None)
                if home is None:
                    if opened >= free_nodes[c.pool]:
                        return False
                    opened += 1
                    home = []
                    nodes.append(home)
                home.append(s)
            free_nodes[c.pool] -= opened
            shared[c.pool] = nodes
        plan.counts[i] = plan.counts.get(i, 0) + 1
        state["gpus"] += c.gpus
        if c.role == "prefill":
            state["ttft"] = max(state["ttft"], c.ttft_s)
        elif c.role == "decode":
            state["tpot"] = max(state["tpot"], c.tpot_s)
        return True

    def ranked(role: str) -> list[int]:
        idx = [i for i, c in enumerate(cands) if c.role == role and useful_rate(cands[i]) > 0]
        return sorted(idx, key=lambda i: useful_rate(cands[i]) / cost(cands[i]), reverse=True)

    agg, pre, dec = ranked("aggregated"), ranked("prefill"), ranked("decode")
    capped = objective == "goodput" and bool(target_rate)  # goodput counts aggregated capacity against the target
    # A candidate that cannot be placed never can later (pools fill, the GPU limit and the pairing
    # constraint only tighten, the served rate only grows): each list is walked once.
    at = {"aggregated": 0, "prefill": 0, "decode": 0}

    def place_first(role: str, order: list[int], skip=lambda i: False) -> bool:
        while at[role] < len(order):
            i = order[at[role]]
            if not skip(i) and place(i):
                return True
            at[role] += 1
        return False

    def served() -> float:
        return rates["agg"] + min(rates["prefill"], rates["decode"])

    def wanted() -> bool:
        return not target_rate or served() < target_rate * (1 - 1e-9)

    rates = {"agg": 0.0, "prefill": 0.0, "decode": 0.0}

    def add_aggregated() -> bool:
        over = lambda i: capped and rates["agg"] + cands[i].rate > target_rate * (1 + 1e-9)  # noqa: E731
        if not place_first("aggregated", agg, over):
            return False
        rates["agg"] += cands[agg[at["aggregated"]]].rate
        return True

    def add_pair() -> bool:
        """One decode replica, then prefill replicas until they keep up with the decodes."""
        if not place_first("decode", dec):
            return False
        rates["decode"] += useful_rate(cands[dec[at["decode"]]])
        while rates["prefill"] < rates["decode"] and place_first("prefill", pre):
            rates["prefill"] += useful_rate(cands[pre[at["prefill"]]])
        return True

    def per_request(role_lists) -> float:  # objective cost of one request/s, best kind of each role
        return sum(cost(cands[r[0]]) / useful_rate(cands[r[0]]) for r in role_lists if r) if all(role_lists) \
            else float("inf")

    order = [add_aggregated, add_pair]
    if per_request([pre, dec]) < per_request([agg]):
        order.reverse()
    for step in order:
        while wanted() and step():
            pass
    while lim.min_gpus and state["gpus"] < lim.min_gpus:  # a floor on GPUs: more of whatever still fits
        if not (add_aggregated() or add_pair()):
            return None
    plan.nodes = shared
    a, d = _served(cands, plan.counts, kv_bytes)
    plan.r_dis = max(min(d, target_rate - a), 0.0) if capped else d
    if target_rate and not capped and a + d < target_rate * (1 - 1e-9):
        return None
    return plan
