"""The ILP is optimal over every valid placement: the same shapes as the enumerator (PP3 replicas,
stages packed into nodes, mixed shapes), against brute force."""

import pytest

from parasearch.search import run_search
from parasearch.search.ilp.candidates import _shapes, all_candidates, kv_bytes_per_request
from parasearch.search.ilp.formulation import solve
from parasearch.spec import problem_from_text

A100_70B = """model: llama-3.1-70b
engine: reference
precision: {weights: fp8, kv_cache: fp8}
cluster: {hardware: a100-sxm-80gb, nodes: 1, gpus_per_node: 8}
workload: {input_tokens: 1024, output_tokens: 1024}
slo: {ttft_s: 5.0, tpot_s: 0.1}
ilp: {objective: goodput}
"""


def _exact_fill(cands, role, budget):
    """best[k]: the most requests/s replicas of `role` give on exactly k GPUs (any mix of
    candidates, each any number of times), -inf where no mix uses exactly k."""
    best = [0.0] + [float("-inf")] * budget
    for k in range(1, budget + 1):
        for c in cands:
            if c.role == role and c.gpus <= k and best[k - c.gpus] > float("-inf"):
                best[k] = max(best[k], best[k - c.gpus] + c.rate)
    return best


def test_ilp_finds_the_all_shapes_optimum_for_70b_on_one_a100_node():
    p = problem_from_text(A100_70B)
    g = p.pool.gpus
    # The ILP's shapes are the enumerator's, PP3 and PP5 included.
    shapes = _shapes(p, p.pool).layout
    assert {3, 5, 7} <= set(shapes.pp.tolist())
    cands = all_candidates(p, prune=False)
    kvb = kv_bytes_per_request(p)
    per_gpu_link = next(c.kv_link_bytes_per_s / c.gpus for c in cands if c.role != "aggregated")
    # One node: every mix of stages no larger than the node packs iff its GPUs add up to at most 8.
    agg, pre, dec = (_exact_fill(cands, r, g) for r in ("aggregated", "prefill", "decode"))
    brute = 0.0
    for a in range(g + 1):
        for q in range(g + 1 - a):
            for d in range(g + 1 - a - q):
                if min(agg[a], pre[q], dec[d]) == float("-inf"):
                    continue
                dis = min(pre[q], dec[d], q * per_gpu_link / kvb, d * per_gpu_link / kvb)
                brute = max(brute, agg[a] + dis)
    res = run_search(p, "ilp")
    assert res.plan["status"] == "optimal"
    assert res.plan["served_rate"] == pytest.approx(brute, rel=1e-6)
    # Aggregated replicas alone: the best mix of shapes, not the best single shape.
    only = [c for c in cands if c.role == "aggregated"]
    a = solve(p, only, objective="goodput", target_rate=None, kv_bytes=kvb)
    assert a.served_rate == pytest.approx(max(agg), rel=1e-6)


def _multisets(items, budget, start=0, chosen=()):
    """Every multiset of items whose GPUs add up to at most `budget`."""
    yield chosen
    for j in range(start, len(items)):
        if items[j].gpus <= budget:
            yield from _multisets(items, budget - items[j].gpus, j, chosen + (items[j],))


def _packs(stages, nodes, g):
    """Whether stages (sizes <= g) go into `nodes` nodes of g GPUs (exhaustive, largest first)."""
    stages = sorted(stages, reverse=True)
    free = [g] * nodes

    def rec(i):
        if i == len(stages):
            return True
        tried = set()
        for k in range(nodes):
            if free[k] >= stages[i] and free[k] not in tried:
                tried.add(free[k])
                free[k] -= stages[i]
                if rec(i + 1):
                    return True
                free[k] += stages[i]
        return False

    return rec(0)


@pytest.mark.parametrize("gpn,tpot,rate", [(6, 0.02, ""), (6, 0.02, ", arrival_rate: 60"), (10, 0.006, "")])
def test_ilp_packs_mixed_stage_sizes_exactly(gpn, tpot, rate):
    """Nodes of 6 or 10 GPUs: stages of 1, 2, 4, 8 do not form a chain dividing the node, so the
    ILP packs them by node patterns; brute force over every multiset of shapes with a real packing.
    At TPOT 6 ms only TP4 and TP8 meet the SLO: on two nodes of 10, two TP8 replicas and a TP4 have
    20 GPUs but do not pack (a count of GPUs alone would allow them)."""
    p = problem_from_text(f"""model: llama-3.1-8b
cluster: {{hardware: h100-sxm, nodes: 2, gpus_per_node: {gpn}}}
workload: {{input_tokens: 2048, output_tokens: 512{rate}}}
slo: {{ttft_s: 1.0, tpot_s: {tpot}}}
search: {{pp: [1, 2, 3], max_batch: [8, 32, 128], disaggregation: false}}
""")
    cands = all_candidates(p, ("aggregated",), prune=False)
    best: dict[tuple, object] = {}
    for c in cands:  # per shape, the best batch cap (every candidate meets the SLOs)
        k = (c.tp, c.pp, c.ep, c.attn_dp)
        if k not in best or c.rate > best[k].rate:
            best[k] = c
    items = list(best.values())
    target = p.workload.arrival_rate
    brute = 0.0
    for combo in _multisets(items, 2 * gpn):
        if combo and _packs([c.stage_gpus for c in combo for _ in range(c.pp)], 2, gpn):
            got = sum(c.rate for c in combo)
            brute = max(brute, min(got, target) if target else got)  # with a target, what is served is capped by it
    a = solve(p, cands, objective="goodput", target_rate=target, kv_bytes=kv_bytes_per_request(p))
    assert a.status == "optimal"
    assert a.served_rate == pytest.approx(brute, rel=1e-6)
