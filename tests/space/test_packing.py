"""The placement space is complete: every shape the rules allow and the nodes hold, with the
right replica count, checked against a count from first principles (rules + stage packing by
hand, no code shared with the enumerator)."""

import pytest

from parasearch.space.enumerate import enumerate_space
from parasearch.space.packing import replicas_in
from parasearch.space.rules import placement_problems
from parasearch.spec import load_problem, problem_from_text
from tests.conftest import ROOT


def _replicas_by_hand(stage: int, pp: int, nodes: int, g: int) -> int:
    """Place replicas one at a time: each stage first-fit into a node with room, or, a stage
    larger than a node, onto whole free nodes; a stage never straddles a node otherwise."""
    free = [g] * nodes
    count = 0
    while True:
        trial = list(free)
        for _ in range(pp):
            if stage <= g:
                k = next((k for k, f in enumerate(trial) if f >= stage), None)
                if k is None:
                    return count
                trial[k] -= stage
            else:
                if stage % g:
                    return count
                whole = [k for k, f in enumerate(trial) if f == g][:stage // g]
                if len(whole) < stage // g:
                    return count
                for k in whole:
                    trial[k] = 0
        free = trial
        count += 1


def _shapes_by_hand(model, nodes: int, g: int) -> dict[tuple, int]:
    n = nodes * g
    out = {}
    for tp in range(1, n + 1):
        for ep in range(1, n + 1):
            if tp * ep > n:
                break
            for pp in range(1, min(model.num_layers, n) + 1):
                for adp in (False, True):
                    if placement_problems(model, tp, pp, ep, 1, adp):
                        continue
                    r = _replicas_by_hand(tp * ep, pp, nodes, g)
                    if r:
                        out[(tp, pp, ep, adp)] = r
    return out


def _enumerated(problem) -> dict[tuple, int]:
    sp = enumerate_space(problem)
    lay = sp.layout
    out: dict[tuple, int] = {}
    for t, p, e, a, d in zip(lay.tp.tolist(), lay.pp.tolist(), lay.ep.tolist(), lay.attn_dp.tolist(), lay.dp.tolist()):
        out[(t, p, e, a)] = max(out.get((t, p, e, a), 0), d)
    return out


def test_deepseek_r1_on_16_h200_has_83_shapes_with_the_right_replica_counts():
    p = load_problem(ROOT / "problems" / "deepseek-r1-2xh200.yaml")
    assert p.pool.gpus == 16
    by_hand = _shapes_by_hand(p.model, p.pool.nodes, p.pool.gpus_per_node)
    assert len(by_hand) == 83
    assert _enumerated(p) == by_hand
    assert by_hand[(1, 3, 1, False)] == 5      # 16 one-GPU stage slots hold five 3-stage replicas
    assert by_hand[(4, 3, 1, False)] == 1      # 4 four-GPU slots: one 12-GPU replica
    assert (1, 5, 1, False) in by_hand and (1, 7, 1, False) in by_hand  # PP5, PP7
    assert (2, 6, 1, False) in by_hand and (1, 3, 4, True) in by_hand


@pytest.mark.parametrize("model,nodes,gpn,rate", [
    ("llama-3.1-8b", 2, 6, ""), ("llama-3.1-70b", 3, 4, ", arrival_rate: 5"), ("qwen3-235b-a22b", 1, 8, ""),
    ("llama-3.1-405b", 2, 8, ", arrival_rate: 2")])
def test_enumerator_matches_first_principles(model, nodes, gpn, rate):
    p = problem_from_text(f"model: {model}\ncluster: {{hardware: h200, nodes: {nodes}, gpus_per_node: {gpn}}}\n"
                          f"workload: {{input_tokens: 1024, output_tokens: 1024{rate}}}\n")
    by_hand = _shapes_by_hand(p.model, nodes, gpn)
    assert _enumerated(p) == by_hand
    if rate:  # with an arrival rate dp is searched: every count from 1 to what fits
        sp = enumerate_space(p)
        lay = sp.layout
        for shape, most in list(by_hand.items())[:20]:
            sel = (lay.tp == shape[0]) & (lay.pp == shape[1]) & (lay.ep == shape[2]) & (lay.attn_dp == shape[3])
            assert sorted(set(lay.dp[sel].tolist())) == list(range(1, most + 1))


@pytest.mark.parametrize("stage,pp,nodes,g", [(1, 3, 2, 8), (4, 3, 2, 8), (3, 2, 2, 8), (16, 1, 4, 8), (16, 2, 3, 8),
                                              (12, 1, 4, 8), (4, 5, 3, 6), (2, 7, 1, 8)])
def test_packing_formula_agrees_with_placing_by_hand(stage, pp, nodes, g):
    assert replicas_in(stage, pp, nodes, g) == _replicas_by_hand(stage, pp, nodes, g)


def test_the_space_sizes_in_docs_placement_are_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("placement_counts", ROOT / "scripts" / "placement_counts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = (ROOT / "docs" / "placement.md").read_text()
    assert mod.current_section(doc) == mod.table(), "regenerate with python scripts/placement_counts.py --write"


def test_whole_replicas_pack_each_replica_within_a_node_or_on_whole_nodes():
    """search.whole_replicas: what the engines' launchers start. On 2 x 8 H200s, TP1 PP3 gets 4
    replicas (two per node) instead of 5, and TP4 PP3 (12 GPUs, 1.5 nodes) is not a placement."""
    from parasearch.space.enumerate import enumerate_space
    from parasearch.spec import problem_from_text

    def shapes(whole):
        p = problem_from_text("model: deepseek-r1\nprecision: {weights: fp8, kv_cache: fp8}\n"
                              "cluster: {hardware: h200, nodes: 2, gpus_per_node: 8}\n"
                              f"workload: {{input_tokens: 1024, output_tokens: 1024}}\nsearch: {{whole_replicas: {whole}}}\n")
        lay = enumerate_space(p).layout
        return {(int(t), int(q), int(e), bool(a)): int(d) for t, q, e, a, d in zip(lay.tp, lay.pp, lay.ep, lay.attn_dp,
                                                                                 lay.dp)}
    split, whole = shapes("false"), shapes("true")
    assert split[1, 3, 1, False] == 5 and whole[1, 3, 1, False] == 4
    assert (4, 3, 1, False) in split and (4, 3, 1, False) not in whole
    assert set(whole) < set(split)
    for (t, q, e, _), dp in whole.items():
        size = t * q * e
        assert size <= 8 and dp <= 2 * (8 // size) or size % 8 == 0 and dp * size <= 16
