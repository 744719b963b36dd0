"""Laying replicas onto nodes, and the memory fraction each engine flag gets from the oracle's plan."""

import pytest

from parasearch.catalog.engines import load_engine
from parasearch.catalog.hardware import load_hardware
from parasearch.catalog.models import load_model
from parasearch.cost.layout import Layout
from parasearch.cost.memory import plan_memory
from parasearch.deploy.memory import memory_fraction
from parasearch.deploy.topology import Group, Shape, lay_out
from parasearch.errors import ParasearchError

H200 = load_hardware("h200")


def group(tp=1, pp=1, ep=1, attn_dp=False, replicas=1, nodes=2, gpn=8, role="aggregated", pool="p"):
    return Group(role, pool, H200, nodes, gpn, Shape(tp, pp, ep, attn_dp), replicas, 64)


def used_gpus(servers):
    return [(sl.node, g) for s in servers for sl in s.slots for g in range(sl.first_gpu, sl.first_gpu + sl.gpus)]


def test_replicas_fill_nodes_in_order_without_sharing_a_gpu():
    servers, nodes = lay_out([group(tp=2, replicas=7)], lambda g: (1, False))
    assert len(servers) == 7 and len(nodes) == 2
    gpus = used_gpus(servers)
    assert len(gpus) == len(set(gpus)) == 14
    assert [s.slots[0].node for s in servers] == [0, 0, 0, 0, 1, 1, 1]
    # several servers on one node listen on distinct ports
    for node in (0, 1):
        ports = [s.port for s in servers if s.head == node]
        assert len(ports) == len(set(ports))


def test_one_server_may_hold_a_nodes_replicas_or_span_nodes():
    per_node, _ = lay_out([group(tp=2, replicas=6)], lambda g: (4, False))
    assert [s.replicas for s in per_node] == [4, 2]
    spanning, _ = lay_out([group(tp=2, replicas=6)], lambda g: (g.replicas, True))
    assert len(spanning) == 1 and spanning[0].replicas == 6
    assert [(sl.node, sl.gpus) for sl in spanning[0].slots] == [(0, 8), (1, 4)]
    assert spanning[0].port == 8000      # alone: no router in front


def test_a_replica_larger_than_a_node_takes_whole_nodes():
    servers, _ = lay_out([group(ep=16, replicas=1, nodes=2)], lambda g: (1, False))
    (s,) = servers
    assert [(sl.node, sl.first_gpu, sl.gpus) for sl in s.slots] == [(0, 0, 8), (1, 0, 8)] and s.whole_nodes


def test_layouts_that_do_not_fit_are_refused():
    with pytest.raises(ParasearchError, match="do not fit"):
        lay_out([group(tp=4, replicas=5, nodes=2)], lambda g: (1, False))
    with pytest.raises(ParasearchError, match="whole nodes"):
        lay_out([group(tp=12, replicas=1, nodes=2)], lambda g: (1, False))


def test_pools_get_their_own_nodes():
    servers, nodes = lay_out([group(tp=8, replicas=1, nodes=1, pool="a"), group(tp=8, replicas=2, pool="b")],
                             lambda g: (1, False))
    assert [n.pool for n in nodes] == ["a", "b", "b"]
    assert [s.head for s in servers] == [0, 1, 2]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_each_flag_gives_back_the_planned_kv_pool(engine):
    """Whatever a flag means, the engine given its value sizes the KV pool the oracle planned."""
    model, eng = load_model("llama-3.1-70b"), load_engine(engine)
    shape = Shape(2, 1, 1, False)
    plan = plan_memory(model, H200, eng, Layout.of(2), "fp8")
    w, act, kv, reserve = float(plan.weights[0]), float(plan.activations[0]), float(plan.kv_budget[0]), plan.reserve
    hbm = H200.hbm_bytes
    for means in ("total", "static", "free"):
        f = memory_fraction(model, H200, eng, shape, "fp8", means).fraction
        assert 0 < f <= 1
        kv_engine = {"total": f * hbm - w - act - reserve, "static": f * hbm - w,
                     "free": f * (hbm - w - act - reserve)}[means]
        assert kv - 0.002 * hbm <= kv_engine <= kv      # rounded down to 3 decimals, never above the plan
