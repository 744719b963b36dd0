"""The enumerator builds only valid placements, and every valid placement (within the limits)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from parasearch.catalog.models import catalog_names, load_model
from parasearch.space.enumerate import enumerate_space
from parasearch.space.packing import replicas_that_fit
from parasearch.space.rules import placement_problems
from parasearch.spec import problem_from_text


def _problem(model: str, nodes: int, gpn: int, hw: str = "h200", rate: str = ""):
    return problem_from_text(f"model: {model}\ncluster: {{hardware: {hw}, nodes: {nodes}, gpus_per_node: {gpn}}}\n"
                             f"workload: {{input_tokens: 1024, output_tokens: 1024{rate}}}\n")


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(catalog_names()), nodes=st.sampled_from([1, 2, 3, 4, 16]),
       gpn=st.sampled_from([1, 2, 4, 8]), rate=st.sampled_from(["", ", arrival_rate: 20"]))
def test_every_enumerated_placement_is_valid_and_fits_the_cluster(model, nodes, gpn, rate):
    p = _problem(model, nodes, gpn, rate=rate)
    sp = enumerate_space(p)
    lay = sp.layout
    m = p.model
    assert all(int(g) <= p.total_gpus for g in lay.gpus)
    # Batch caps do not change validity: each (tp, pp, ep, dp, attn_dp) once.
    for tp, pp, ep, dp, adp in sorted(set(zip(lay.tp.tolist(), lay.pp.tolist(), lay.ep.tolist(), lay.dp.tolist(),
                                               lay.attn_dp.tolist()))):
        assert placement_problems(m, tp, pp, ep, dp, adp) == []
        assert dp <= replicas_that_fit(tp * ep, pp, p.pool)
        # KV heads: split evenly or replicated evenly.
        t_a = tp if adp else tp * ep
        for g in m.groups:
            a = g.attention
            assert a.num_heads % t_a == 0
            if a.kind == "gqa":
                assert a.num_kv_heads % t_a == 0 or t_a % a.num_kv_heads == 0
            if g.ffn.kind == "moe":
                assert g.ffn.num_experts % ep == 0


def test_nothing_valid_is_missed_for_a_small_cluster():
    p = _problem("qwen3-235b-a22b", 1, 8)
    sp = enumerate_space(p)
    shapes = {(int(a), int(b), int(c), bool(d)) for a, b, c, d in zip(sp.layout.tp, sp.layout.pp, sp.layout.ep,
                                                                        sp.layout.attn_dp)}
    m = load_model("qwen3-235b-a22b")
    for tp in (1, 2, 4, 8):
        for ep in (1, 2, 4, 8):
            for pp in (1, 2, 4, 8):
                for adp in (False, True):
                    ok = not placement_problems(m, tp, pp, ep, 1, adp) and tp * ep * pp <= 8
                    assert ((tp, pp, ep, adp) in shapes) == ok, (tp, pp, ep, adp)


def test_stages_stay_inside_nodes_or_take_whole_nodes():
    p = _problem("llama-3.1-405b", 3, 8)
    sp = enumerate_space(p)
    stage = sp.layout.stage_gpus
    assert all(int(s) <= 8 or int(s) % 8 == 0 for s in stage)
    # Replicas that are not a whole number of nodes but whose stages fit one (TP4 PP3: 12 GPUs).
    r = sp.layout.replica_gpus
    assert any(int(x) > 8 and int(x) % 8 for x in r)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(catalog_names()), st.integers(0, 16), st.integers(0, 130), st.integers(0, 64), st.booleans())
def test_the_enumerators_check_is_the_worded_rules(model, tp, pp, ep, attn_dp):
    """`placement_ok` (what the enumerator builds) and `placement_problems` (what a hand-given
    placement is told) are one set of rules."""
    from parasearch.space.rules import placement_ok
    m = load_model(model)
    assert placement_ok(m, tp, pp, ep, attn_dp) == (not placement_problems(m, tp, pp, ep, 1, attn_dp))
