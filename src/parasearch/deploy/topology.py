"""Where a plan's replicas run: servers (one engine instance and its HTTP endpoint each), the
nodes and GPUs each one occupies, and its port. Engine-neutral: an engine says only how many
replicas one of its servers may hold and whether such a server may span nodes.

Replicas fill a pool's nodes GPU 0 up, first fit, largest first; a replica larger than a node
takes whole nodes. Nodes are numbered across pools in the order the problem lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.hardware import Hardware
from ..errors import ParasearchError
from ..space.label import placement_label
from ..space.packing import stage_fits

ROUTER_PORT = 8000       # the one endpoint clients and bench.sh talk to
SERVER_PORT_BASE = 8100  # servers behind a router: 8100, 8101, ... on each node


@dataclass(frozen=True)
class Shape:
    """One replica: `pp` stages of `tp * ep` GPUs (docs/placement.md)."""

    tp: int
    pp: int
    ep: int
    attn_dp: bool

    @property
    def gpus(self) -> int:
        return self.tp * self.ep * self.pp

    def label(self, dp: int = 1) -> str:
        return placement_label(self.tp, self.pp, self.ep, dp, self.attn_dp)


@dataclass(frozen=True)
class Slot:
    """The GPUs a server uses on one node."""

    node: int        # index into Deployment.nodes
    first_gpu: int
    gpus: int
    replicas: float  # replicas (or parts of one) on this node


@dataclass(frozen=True)
class Server:
    index: int                # 0.. over the deployment
    role: str                 # aggregated | prefill | decode
    pool: str
    hardware: Hardware
    gpus_per_node: int
    shape: Shape
    replicas: int             # model replicas this one engine instance serves
    max_batch: int            # sequences per replica (prefill: prompts per forward pass)
    slots: tuple[Slot, ...]   # head node first
    port: int
    on_node: int              # its rank among the servers whose head is the same node (for ports)

    @property
    def gpus(self) -> int:
        return sum(s.gpus for s in self.slots)

    @property
    def head(self) -> int:
        return self.slots[0].node

    @property
    def whole_nodes(self) -> bool:
        return all(s.first_gpu == 0 and s.gpus == self.gpus_per_node for s in self.slots)


@dataclass(frozen=True)
class Node:
    pool: str
    hardware: str
    index_in_pool: int
    gpus: int


@dataclass(frozen=True)
class Group:
    """Replicas of one shape and role in one pool, as the plan has them."""

    role: str
    pool: str
    hardware: Hardware
    nodes: int
    gpus_per_node: int
    shape: Shape
    replicas: int
    max_batch: int


def lay_out(groups: list[Group], per_server) -> tuple[list[Server], list[Node]]:
    """Servers for `groups`, with nodes numbered across pools. `per_server(group)` is the engine's
    answer: (most replicas one server holds, whether one server may span nodes)."""
    nodes: list[Node] = []
    first_node: dict[str, int] = {}
    for g in groups:
        if g.pool not in first_node:
            first_node[g.pool] = len(nodes)
            nodes += [Node(g.pool, g.hardware.name, i, g.gpus_per_node) for i in range(g.nodes)]
    # First fit, largest replicas first (whole-node replicas, then the sizes that share nodes):
    # the integer plan packed its stages by node patterns, and placing groups in the order the plan
    # lists them can strand a small replica's GPUs across nodes that, largest first, fit it.
    free = {g.pool: [g.gpus_per_node] * g.nodes for g in groups}
    placed: dict[int, list[tuple[int, int]]] = {}
    for i in sorted(range(len(groups)), key=lambda i: -groups[i].shape.gpus):
        g = groups[i]
        placed[i] = [_fit(free[g.pool], g) for _ in range(g.replicas)]
    servers: list[Server] = []
    for i, g in enumerate(groups):
        most, span = per_server(g)
        for chunk in _chunks(placed[i], most, span, g):
            servers.append(_server(len(servers), g, chunk, first_node[g.pool]))
    _assign_ports(servers)
    return servers, nodes


def _fit(free: list[int], g: Group) -> tuple[int, int]:
    """(node in pool, first GPU) of one more replica of `g`, taken from `free` (GPUs left per
    node; a node fills from GPU 0 up, so what is left is its top)."""
    size, gpn = g.shape.gpus, g.gpus_per_node
    if not stage_fits(size, gpn):  # the packing rule, with the whole replica as the unit
        raise ParasearchError(f"a {g.shape.label()} replica ({size} GPUs) does not fill whole nodes of "
                              f"{gpn} GPUs; engines run a multi-node replica on whole nodes")
    if size > gpn:
        k = size // gpn
        for n in range(len(free) - k + 1):
            if all(f == gpn for f in free[n:n + k]):
                free[n:n + k] = [0] * k
                return n, 0
    else:
        for n, f in enumerate(free):
            if f >= size:
                free[n] -= size
                return n, gpn - f
    beside = " beside the pool's other replicas" if any(f < gpn for f in free) else ""
    raise ParasearchError(f"the {g.replicas} {g.shape.label()} replicas of pool {g.pool} do not fit on its "
                          f"{g.nodes} node(s) of {gpn} GPUs{beside}",
                          hint="engines run a replica within one node or on whole nodes")


def _chunks(placed: list[tuple[int, int]], most: int, span: bool, g: Group) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = []
    for node, gpu in placed:
        cur = out[-1] if out else None
        same_node = cur is not None and cur[-1][0] == node
        next_node = cur is not None and node == cur[-1][0] + 1 and gpu == 0 and cur[0][1] == 0
        if cur is not None and len(cur) < most and g.shape.gpus <= g.gpus_per_node and (same_node or (span and next_node)):
            cur.append((node, gpu))
        else:
            out.append([(node, gpu)])
    return out


def _server(index: int, g: Group, chunk: list[tuple[int, int]], node0: int) -> Server:
    per_node: dict[int, list[int]] = {}
    size = g.shape.gpus
    if size > g.gpus_per_node:
        node, _ = chunk[0]
        slots = tuple(Slot(node0 + node + k, 0, g.gpus_per_node, g.gpus_per_node / size)
                      for k in range(size // g.gpus_per_node))
    else:
        for node, gpu in chunk:
            per_node.setdefault(node, []).append(gpu)
        slots = tuple(Slot(node0 + n, min(gpus), len(gpus) * size, float(len(gpus))) for n, gpus in per_node.items())
    return Server(index, g.role, g.pool, g.hardware, g.gpus_per_node, g.shape, len(chunk), g.max_batch, slots,
                  0, 0)


def _assign_ports(servers: list[Server]) -> None:
    """One server alone listens on the router port; several get 8100, 8101, ... per head node and
    a router takes 8000 on node 0."""
    from dataclasses import replace

    alone = len(servers) == 1 and servers[0].role == "aggregated"
    count: dict[int, int] = {}
    for i, s in enumerate(servers):
        k = count.get(s.head, 0)
        count[s.head] = k + 1
        servers[i] = replace(s, port=ROUTER_PORT if alone else SERVER_PORT_BASE + k, on_node=k)


def needs_router(servers: list[Server]) -> bool:
    return len(servers) > 1 or any(s.role != "aggregated" for s in servers)
