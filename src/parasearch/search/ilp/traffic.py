"""The ILP under real traffic: percentile SLOs and bursty arrivals (a trace or an arrival process).

Under load (`problem.under_load`), an aggregated candidate's servable rate is its **goodput** from
the analytic load model (`cost/load.py`): the highest per-replica arrival rate at which every stated
SLO (means and percentiles) holds, given the arrivals' burstiness. Its TTFT has the queueing terms
of the load model (the cycle in progress, the prompts riding with it, slot and token-budget waits),
so rate matching `sum_c goodput_c x_c >= target` leaves the headroom burstiness needs.

Approximations, stated (docs/traffic.md, "The ILP under traffic"):

* **Splitting.** A balancer hands each replica a share of the fleet's stream no larger than its
  goodput (weighted round-robin; an even split when the plan uses one kind of replica). Each
  replica is taken to see arrivals **as bursty as the whole stream** (squared CV cv^2 and, for a
  trace, the stream's own index of dispersion of counts). That is conservative: round-robin over k
  replicas leaves cv^2 / k (what the single-pool search assumes for its dp replicas), and a random
  split with share p leaves p cv^2 + 1 - p, which tends to Poisson; both are at most cv^2 for
  cv >= 1, and round-robin is below it for every cv. The exact reduction depends on the replica
  count, which is what the ILP decides; taking none keeps each candidate's rate a constant, so
  the program stays linear and exact for the model it solves.
* **Disaggregated replicas** are left out under load: the load model covers aggregated replicas
  only (the simulator covers disaggregation), and mean-based prefill/decode rates would be
  compared unfairly against burst-aware aggregated goodputs. The plan says so in a note.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import numpy as np

from ...cost import load as L
from ...cost.layout import Layout
from ...spec.problem import Problem, Slo
from .candidates import Candidate, all_candidates, prune_dominated

SAMPLE = 96          # requests standing for the length distribution (as in search/goodput.py)
DISAGGREGATION_NOTE = ("under traffic the ILP plans aggregated replicas only: the load model behind the "
                       "percentiles and the burst headroom covers aggregated serving (the simulator covers "
                       "disaggregation: parasearch simulate)")


def applies(problem: Problem) -> bool:
    """Whether the ILP plans with the load model: a trace, an arrival process or percentile SLOs."""
    return problem.under_load


def binding_label(name: str) -> str:
    """'p99-ttft' -> 'p99 TTFT'; 'capacity' stays."""
    if "-" not in name:
        return name
    stat, metric = name.split("-", 1)
    return f"{stat} {metric.upper()}"


def _load_model(problem: Problem, pool, cands: list[Candidate]) -> L.LoadModel:
    """The load model of one replica (dp = 1) of each candidate, on the pool's hardware."""
    traffic = problem.traffic_or_default()
    inp, out, w, by = traffic.pairs(SAMPLE)
    one = np.ones(len(cands), np.int64)
    lay = Layout(np.array([c.tp for c in cands], np.int64), np.array([c.pp for c in cands], np.int64),
                 np.array([c.ep for c in cands], np.int64), one, np.array([c.attn_dp for c in cands], bool))
    batch = np.array([c.batch for c in cands], float)
    return L.build(problem.model, pool.hardware, problem.engine, lay, problem.precision, batch, inp, out, w,
                   traffic.population(), by, traffic.dispersion)


def _ca2(problem: Problem) -> float:
    """The squared CV each replica's arrivals are taken to have: the whole stream's (see the module)."""
    return problem.traffic_or_default().cv ** 2


def load_candidates(problem: Problem, prune: bool = True) -> tuple[list[Candidate], dict[Candidate, str]]:
    """Aggregated candidates rated at their goodput, and the SLO that binds for each (its label).

    The candidates are the steady-state ones without the mean-SLO filter (the load model checks
    every SLO, means included, at the operating rate); those with no goodput are dropped. Rows:
    `rate` = per-replica goodput, `ttft_s`/`tpot_s` = mean TTFT/TPOT at that rate."""
    loose = all_candidates(replace(problem, slo=Slo()), ("aggregated",), prune=False)
    pools = {p.name: p for p in problem.pools}
    targets = problem.slo.targets
    cv = problem.traffic_or_default().cv
    # Pools of one GPU type and node size share a shape's goodput: one load model per such class.
    classes: list[tuple[object, int, dict]] = []
    for c in loose:
        pool = pools[c.pool]
        if not any(hw == pool.hardware and g == pool.gpus_per_node for hw, g, _ in classes):
            classes.append((pool.hardware, pool.gpus_per_node, {}))
    by_class: dict[int, list[Candidate]] = defaultdict(list)
    for c in loose:
        pool = pools[c.pool]
        k = next(j for j, (hw, g, _) in enumerate(classes) if hw == pool.hardware and g == pool.gpus_per_node)
        by_class[k].append(c)
    out: list[Candidate] = []
    binding: dict[Candidate, str] = {}
    for k, members in by_class.items():
        shapes = list(dict.fromkeys((c.tp, c.pp, c.ep, c.attn_dp, c.batch) for c in members))
        proto = [next(c for c in members if (c.tp, c.pp, c.ep, c.attn_dp, c.batch) == s) for s in shapes]
        lm = _load_model(problem, pools[proto[0].pool], proto)
        good, binds = L.goodput(lm, targets, cv)          # lm.replicas = 1: ca2 = cv^2 per replica
        st = L.state(lm, np.maximum(good, 1e-12), _ca2(problem))
        ttft, tpot = L.mean(lm, st, "ttft"), L.mean(lm, st, "tpot")
        table = {s: (float(good[j]), str(binds[j]), float(ttft[j]), float(tpot[j])) for j, s in enumerate(shapes)}
        for c in members:
            g, b, tt, tp = table[(c.tp, c.pp, c.ep, c.attn_dp, c.batch)]
            if g <= 0 or not np.isfinite(tt) or not np.isfinite(tp):
                continue
            r = replace(c, rate=g, ttft_s=tt, tpot_s=tp, e2e_s=tt + tp * max(problem.workload.output_tokens - 1, 0))
            out.append(r)
            binding[r] = binding_label(b)
    if prune:
        out = prune_dominated(out)
    order = {p.name: i for i, p in enumerate(problem.pools)}
    out.sort(key=lambda c: order[c.pool])
    return out, {c: binding[c] for c in out}


def no_candidates_reason(problem: Problem) -> str:
    """Why no replica has any goodput: the SLO that fails even at the lowest rate, and how often."""
    loose = all_candidates(replace(problem, slo=Slo()), ("aggregated",), prune=False)
    if not loose:
        return ""
    pools = {p.name: p for p in problem.pools}
    shapes = list({(c.pool, c.tp, c.pp, c.ep, c.attn_dp, c.batch): c for c in loose}.values())
    first = [c for c in shapes if c.pool == shapes[0].pool]
    lm = _load_model(problem, pools[first[0].pool], first)
    _, binds = L.goodput(lm, problem.slo.targets, problem.traffic_or_default().cv)
    counts = {binding_label(b): int(np.sum(binds == b)) for b in np.unique(binds)}
    text = ", ".join(f"{n} of {len(first)} configurations of pool {first[0].pool} miss {b}" for b, n in counts.items())
    return f"no replica configuration meets the SLOs under this traffic even at a trickle of requests ({text})"


def annotate(plan: dict, problem: Problem, cands: list[Candidate], counts: dict[int, int],
             binding: dict[Candidate, str]) -> None:
    """Add to an ILP plan what traffic planning decided: per row the SLO that binds at the replica's
    goodput and the stated percentiles at the rate it serves (its share), the SLO margins of those,
    and how burstiness and disaggregation were treated."""
    pools = {p.name: p for p in problem.pools}
    targets = problem.slo.targets
    traffic = problem.traffic_or_default()
    capacity = sum(cands[i].rate * n for i, n in counts.items())
    served = float(plan.get("served_rate") or 0.0)
    load = min(served / capacity, 1.0) if capacity > 0 else 0.0
    by_key = {(c.pool, c.role, c.tp, c.pp, c.ep, c.attn_dp, c.batch): i for i, c in
              ((i, cands[i]) for i in counts)}
    worst: dict[str, tuple[float, float]] = {}
    for row in plan["allocation"]:
        i = by_key.get((row["pool"], row["role"], row["tp"], row["pp"], row["ep"], row["attn_dp"],
                        row.get("max_batch")))
        if i is None:
            continue
        c = cands[i]
        share = c.rate * load
        row["slo_binding"] = binding.get(c, "")
        row["goodput_per_replica_rps"] = c.rate
        row["rate_per_replica_rps"] = share
        lm = _load_model(problem, pools[c.pool], [c])
        st = L.state(lm, np.array([max(share, 1e-12)]), _ca2(problem))
        checks = []
        for t in targets:
            value = float(L.mean(lm, st, t.metric)[0]) if t.quantile is None else \
                float(L.percentile(lm, st, t.metric, t.quantile)[0])
            checks.append({"slo": binding_label(t.name), "limit_s": t.limit, "at_share_s": value})
            w = worst.get(t.name)
            if w is None or value > w[0]:
                worst[t.name] = (value, t.limit)
        row["slo_at_share"] = checks
    if targets:
        plan["slo_margins"] = {binding_label(k): {"limit_s": lim, "worst_s": v, "margin": 1 - v / lim}
                               for k, (v, lim) in worst.items()}
    binds = sorted({r["slo_binding"] for r in plan["allocation"] if r.get("slo_binding")})
    plan["traffic"] = {
        "arrival": traffic.arrival, "cv": traffic.cv, "replica_cv": float(np.sqrt(_ca2(problem))),
        "splitting": "each replica sees the stream's full burstiness (conservative: round-robin over k "
                     "replicas would leave cv^2/k)",
        "slos": [binding_label(t.name) for t in targets],
        "binding": binds,
        "load_factor": load,
    }
    notes = plan.setdefault("notes", [])
    if binds:
        notes.append("replicas are sized at their goodput under this traffic (cv {:.2f} per replica); what binds "
                     "just past it: {}".format(traffic.cv, "; ".join(
                         f"{r['placement']} ({r['pool']}): {r['slo_binding']}" for r in plan["allocation"]
                         if r.get("slo_binding"))))
    notes.append(DISAGGREGATION_NOTE)
    d = plan.get("disaggregation")
    if isinstance(d, dict):
        d["considered"] = False
        d["reason"] = DISAGGREGATION_NOTE
