"""How replicas pack into a pool's nodes (docs/placement.md): pure functions of the shape and pool.

A replica has `pp` stages of `stage = tp x ep` GPUs. A stage never straddles nodes unless it is
larger than a node:

* `stage <= gpus_per_node`: each node holds `gpus_per_node // stage` stage slots, and a replica
  takes any `pp` slots (its stages may sit on different nodes; the hand-off between them then
  uses the scale-out network). TP1 PP3 on 2x8 GPUs: 16 slots, 5 replicas.
* `stage > gpus_per_node`: the stage takes `stage / gpus_per_node` whole nodes, so the node size
  must divide it; a replica takes `pp` such groups.

With `whole` (search.whole_replicas) the replica is the unit instead of the stage, by the same
two rules: what the engines' launchers can start.
"""

from __future__ import annotations


def stage_fits(stage_gpus: int, gpus_per_node: int) -> bool:
    """A stage fits inside a node, or takes whole nodes."""
    return stage_gpus <= gpus_per_node or stage_gpus % gpus_per_node == 0


def replicas_in(stage_gpus: int, pp: int, nodes: int, gpus_per_node: int) -> int:
    """Replicas of `pp` stages of `stage_gpus` GPUs that `nodes` nodes of `gpus_per_node` hold."""
    if stage_gpus < 1 or pp < 1 or not stage_fits(stage_gpus, gpus_per_node):
        return 0
    if stage_gpus <= gpus_per_node:
        return nodes * (gpus_per_node // stage_gpus) // pp
    return nodes // (pp * (stage_gpus // gpus_per_node))


def replicas_that_fit(stage_gpus: int, pp: int, pool, whole: bool = False) -> int:
    """Replicas of a shape that a pool holds (see the module docstring). `whole`: each replica
    packed as one unit, within a node or on whole nodes, as the engines' launchers start them."""
    if whole:
        return replicas_in(stage_gpus * pp, 1, pool.nodes, pool.gpus_per_node)
    return replicas_in(stage_gpus, pp, pool.nodes, pool.gpus_per_node)

