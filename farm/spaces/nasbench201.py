"""NAS-Bench-201 (Dong & Yang, ICLR 2020): 15,625 cells in a fixed ResNet-like skeleton.

A cell is a DAG over 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries
one of 5 ops. The canonical string lists the edges node by node::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
     1<-0   2<-0 2<-1   3<-0 3<-1 3<-2

The network (``get_cell_based_tiny_net`` with C=16, N=5 in the reference
``xautodl`` package) is a 3x3 conv stem with 16 channels + BN, three stages of
five cells with 16/32/64 channels, a residual reduction block (stride 2)
between stages, BN-ReLU, global average pooling and a linear classifier.
Module and parameter names follow ``xautodl`` so its ``state_dict`` loads into
:func:`NasBench201.build` models unchanged. Every op of every cell runs, as in
``xautodl``: a cell whose output node has no path from its input (341 of the
15,625) still computes its ops and outputs zeros.

Example:
    >>> from farm.spaces import get
    >>> space = get("nasbench201")
    >>> arch = next(space.enumerate())
    >>> space.index(arch)
    0
    >>> tuple(space.build(arch)(torch.zeros(space.input_shape(arch))).shape)
    (1, 10)
"""

from __future__ import annotations

import functools
import itertools
import random
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from farm.spaces.base import ArchError, SearchSpace
from farm.spaces.counting import Cost, count

#: Cell op names in NAS-Bench-201's own order (also the order of the one-hot blocks).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The 6 cell edges ``(to_node, from_node)`` in canonical-string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: Node vocabulary of :meth:`NasBench201.graph`: ``op_indices`` index into this tuple.
GRAPH_OPS: tuple[str, ...] = ("input", *OPS, "output", "global")
#: Nodes of :meth:`NasBench201.graph`: input, the 6 edge ops in ``EDGES`` order, output, global.
GRAPH_NODES = len(EDGES) + 3
INPUT_NODE, OUTPUT_NODE, GLOBAL_NODE = 0, len(EDGES) + 1, len(EDGES) + 2

STEM_CHANNELS = 16
CELLS_PER_STAGE = 5
STAGE_CHANNELS = (16, 32, 64)
NUM_ARCHS = len(OPS) ** len(EDGES)
#: NAS-Bench-201 shuffled its archs with this seed (``random.seed(88); random.shuffle``).
_OFFICIAL_SHUFFLE_SEED = 88


# --- ops (names and structure as xautodl.models.cell_operations) -------------


class ReLUConvBN(nn.Module):
    """ReLU -> Conv (no bias) -> BN, held in ``self.op`` as in xautodl."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` op: multiplies by zero (xautodl's ``Zero`` for C_in == C_out, stride 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool3x3(nn.Module):
    """``avg_pool_3x3`` with stride 1 (xautodl's ``POOLING``, attribute ``op``)."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def make_op(name: str, channels: int) -> nn.Module:
    """The module of cell op ``name`` on ``channels`` channels (cells keep C and resolution)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; expected one of {', '.join(OPS)}")


class Cell(nn.Module):
    """One NB201 cell: node_i = sum over j < i of op_ji(node_j); the output is node 3."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_op(name, channels) for name in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = self.layers
        node1 = layers[0](x)
        node2 = layers[1](x) + layers[2](node1)
        return layers[3](x) + layers[4](node1) + layers[5](node2)


class ResNetBasicblock(nn.Module):
    """The stride-2 reduction block between stages (xautodl's ``ResNetBasicblock``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NAS-Bench-201 skeleton around one cell genotype; returns logits only."""

    def __init__(self, ops: Sequence[str], num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_CHANNELS, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(STEM_CHANNELS),
        )
        cells: list[nn.Module] = []
        for stage, channels in enumerate(STAGE_CHANNELS):
            if stage > 0:
                cells.append(ResNetBasicblock(STAGE_CHANNELS[stage - 1], channels))
            cells.extend(Cell(ops, channels) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.ModuleList(cells)
        last = STAGE_CHANNELS[-1]
        self.lastact = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


# --- the space ---------------------------------------------------------------


def _official_order() -> list[tuple[str, ...]]:
    """All cells in NAS-Bench-201's index order.

    NAS-Bench-201 enumerated cells node by node (``CellStructure.gen_all``:
    the ops of node 1, then node 2, then node 3, each op position
    varying slowest-first in ``OPS`` order) and shuffled the list with
    ``random.seed(88)``; the position after the shuffle is the arch index.
    """
    archs = list(itertools.product(OPS, repeat=len(EDGES)))
    random.Random(_OFFICIAL_SHUFFLE_SEED).shuffle(archs)
    return archs


def _edge_name(edge: int) -> str:
    to_node, from_node = EDGES[edge]
    return f"edge {edge} (node {to_node} <- node {from_node})"


class NasBench201(SearchSpace):
    """NAS-Bench-201's cell space in the C=16, N=5 CIFAR skeleton.

    The parsed form of an arch is a tuple of the 6 op names in ``EDGES`` order.
    Every method accepts the canonical string or the parsed tuple.
    """

    name = "nasbench201"
    default_input_size = 32
    num_classes = 10

    def __init__(self) -> None:
        self._order: list[tuple[str, ...]] | None = None
        self._index: dict[tuple[str, ...], int] | None = None

    # strings ---------------------------------------------------------------
    def parse(self, arch: str) -> tuple[str, ...]:
        """The 6 op names of ``arch``; :class:`ArchError` names the bad edge and the allowed ops."""
        if not isinstance(arch, str):
            raise ArchError(f"nasbench201 arch must be a string, got {type(arch).__name__}")
        return _parse(arch)

    def format(self, parsed: Sequence[str]) -> str:
        """The canonical string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of 6 op names."""
        ops = self._ops(tuple(parsed))
        nodes, position = [], 0
        for to_node in (1, 2, 3):
            nodes.append("|".join(f"{ops[position + j]}~{j}" for j in range(to_node)))
            position += to_node
        return "|" + "|+|".join(nodes) + "|"

    def _ops(self, arch: str | Sequence[str]) -> tuple[str, ...]:
        if isinstance(arch, str):
            return _parse(arch)
        ops = tuple(arch)
        if len(ops) != len(EDGES):
            raise ArchError(f"nasbench201 arch needs {len(EDGES)} ops, got {len(ops)}: {ops!r}")
        for edge, op in enumerate(ops):
            if op not in OPS:
                raise ArchError(f"nasbench201 {_edge_name(edge)}: {op!r} is not one of {', '.join(OPS)}")
        return ops

    # enumeration -----------------------------------------------------------
    def _official(self) -> list[tuple[str, ...]]:
        if self._order is None:
            self._order = _official_order()
            self._index = {ops: i for i, ops in enumerate(self._order)}
        return self._order

    def enumerate(self) -> Iterator[str]:
        """All 15,625 archs; the i-th is NAS-Bench-201's (and HELP's) arch index i."""
        return (self.format(ops) for ops in self._official())

    def arch(self, index: int) -> str:
        """The arch with NAS-Bench-201 index ``index`` (0..15624)."""
        if not 0 <= index < NUM_ARCHS:
            raise ArchError(f"nasbench201 index {index} is outside 0..{NUM_ARCHS - 1}")
        return self.format(self._official()[index])

    def index(self, arch: str | Sequence[str]) -> int:
        """NAS-Bench-201's index of ``arch``."""
        self._official()
        assert self._index is not None
        return self._index[self._ops(arch)]

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct archs drawn uniformly without replacement, deterministic in ``seed``."""
        if not 0 <= n <= NUM_ARCHS:
            raise ValueError(f"nasbench201 has {NUM_ARCHS} archs; cannot sample {n}")
        return [self.arch(i) for i in random.Random(seed).sample(range(NUM_ARCHS), n)]

    # models ----------------------------------------------------------------
    def build(self, arch: str | Sequence[str], input_size: int | None = None, num_classes: int | None = None) -> nn.Module:
        """The NB201 network of ``arch`` in eval mode on CPU; ``forward`` returns logits.

        ``input_size`` does not change the module (global pooling); it is
        accepted for interface symmetry. ``num_classes`` defaults to 10 (CIFAR-10).
        """
        model = TinyNetwork(self._ops(arch), num_classes or self.num_classes)
        return model.eval()

    # encodings -------------------------------------------------------------
    def graph(self, arch: str | Sequence[str], detach: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """BRP-NAS op-node graph: ``(adjacency [9, 9] uint8, op_indices [9] int64)``.

        Nodes: 0 input, 1..6 the edge ops in ``EDGES`` order, 7 output,
        8 global; ``op_indices`` index :data:`GRAPH_OPS`. ``adjacency[i, j] = 1``
        means data flows from node i to node j. Every other node has an edge
        into the global node; there are no self-loops (predictors add them).

        With ``detach`` (BRP-NAS, Dudziak et al. 2020), ``none`` nodes lose
        their edges, ``skip_connect`` nodes are bypassed (predecessors wired to
        successors) and then lose theirs, and nodes not on an input-to-output
        path lose theirs too. Detached nodes keep their op index, so a
        predictor that maps ``none``/``skip_connect`` to zero features gets
        BRP-NAS's input. ``detach=False`` gives the plain op graph (the same
        adjacency for every arch).
        """
        ops = self._ops(arch)
        return _graph(ops, detach)

    def onehot(self, arch: str | Sequence[str]) -> np.ndarray:
        """30 floats: for each edge in ``EDGES`` order, a one-hot over :data:`OPS`."""
        ops = self._ops(arch)
        vector = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
        vector[np.arange(len(EDGES)), [OPS.index(op) for op in ops]] = 1.0
        return vector.reshape(-1)

    def flops(self, arch: str | Sequence[str], input_size: int | None = None) -> int:
        """MACs per input of ``build(arch)``, exactly what its Conv2d/Linear layers execute."""
        return self.cost(arch, input_size).macs

    def params(self, arch: str | Sequence[str]) -> int:
        """Parameters of ``build(arch)`` (all of them, BN affine included)."""
        return self.cost(arch).params

    def cost(self, arch: str | Sequence[str], input_size: int | None = None) -> Cost:
        """MACs and parameters of ``build(arch)``.

        Cells only add the costs of their ops, so the network's cost is the
        skeleton's plus ``CELLS_PER_STAGE`` times each stage's op costs; the
        parts are counted once per input size with forward hooks on meta
        modules (see :mod:`farm.spaces.counting`). A test checks the sum
        against hooks on the whole built model.
        """
        skeleton, op_costs = _component_costs(input_size or self.default_input_size, self.num_classes)
        total = skeleton
        for op in self._ops(arch):
            for stage_costs in op_costs:
                total = total + stage_costs[op] * CELLS_PER_STAGE
        return total


@functools.lru_cache(maxsize=65536)
def _parse(arch: str) -> tuple[str, ...]:
    text = arch.strip()
    nodes = text.split("+")
    if len(nodes) != 3:
        raise ArchError(
            f"nasbench201 arch {arch!r}: expected 3 nodes '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' "
            f"separated by '+', found {len(nodes)}"
        )
    ops: list[str] = []
    for to_node, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|") and len(node) > 1):
            raise ArchError(f"nasbench201 arch {arch!r}: node {to_node} {node!r} must look like '|op~0|...|'")
        items = node[1:-1].split("|")
        if len(items) != to_node:
            raise ArchError(
                f"nasbench201 arch {arch!r}: node {to_node} needs {to_node} inputs (~0..~{to_node - 1}), "
                f"found {len(items)}"
            )
        for from_node, item in enumerate(items):
            edge = len(ops)
            op, sep, source = item.partition("~")
            if not sep or source != str(from_node):
                raise ArchError(
                    f"nasbench201 arch {arch!r}: {_edge_name(edge)}: {item!r} must be 'op~{from_node}'"
                )
            if op not in OPS:
                raise ArchError(
                    f"nasbench201 arch {arch!r}: {_edge_name(edge)}: {op!r} is not one of {', '.join(OPS)}"
                )
            ops.append(op)
    return tuple(ops)


def _plain_edges() -> list[tuple[int, int]]:
    """Op-node edges: op (j -> i) feeds every op leaving node i, or the output if i == 3."""
    edges = []
    for a, (to_a, from_a) in enumerate(EDGES, start=1):
        if from_a == 0:
            edges.append((INPUT_NODE, a))
        if to_a == 3:
            edges.append((a, OUTPUT_NODE))
        edges.extend((a, b) for b, (_, from_b) in enumerate(EDGES, start=1) if from_b == to_a)
    return edges


_PLAIN_EDGES = _plain_edges()


_OP_INDEX = {op: GRAPH_OPS.index(op) for op in GRAPH_OPS}


@functools.lru_cache(maxsize=65536)
def _graph_cached(ops: tuple[str, ...], detach: bool) -> tuple[np.ndarray, np.ndarray]:
    successors = [set() for _ in range(OUTPUT_NODE + 1)]
    for a, b in _PLAIN_EDGES:
        successors[a].add(b)
    if detach:
        _detach(ops, successors)
    cells = bytearray(GRAPH_NODES * GRAPH_NODES)
    for node, targets in enumerate(successors):
        for target in targets:
            cells[node * GRAPH_NODES + target] = 1
    for node in range(GLOBAL_NODE):
        cells[node * GRAPH_NODES + GLOBAL_NODE] = 1
    adjacency = np.frombuffer(bytes(cells), dtype=np.uint8).reshape(GRAPH_NODES, GRAPH_NODES)
    op_indices = np.array(
        [_OP_INDEX["input"], *(_OP_INDEX[op] for op in ops), _OP_INDEX["output"], _OP_INDEX["global"]], dtype=np.int64
    )
    op_indices.flags.writeable = False
    return adjacency, op_indices


def _detach(ops: tuple[str, ...], successors: list[set[int]]) -> None:
    """BRP-NAS detaching on successor sets (in place): drop zeros, bypass skips, drop dangling ops."""

    def isolate(node: int) -> None:
        successors[node].clear()
        for targets in successors:
            targets.discard(node)

    for node, op in enumerate(ops, start=1):
        if op == "none":
            isolate(node)
    for node, op in enumerate(ops, start=1):
        if op == "skip_connect":
            for targets in successors:
                if node in targets:
                    targets |= successors[node]
            isolate(node)
    from_input = _reachable(successors, INPUT_NODE)
    predecessors = [set() for _ in successors]
    for a, targets in enumerate(successors):
        for b in targets:
            predecessors[b].add(a)
    to_output = _reachable(predecessors, OUTPUT_NODE)
    for node in range(1, len(EDGES) + 1):
        if node not in from_input or node not in to_output:
            isolate(node)


def _graph(ops: tuple[str, ...], detach: bool) -> tuple[np.ndarray, np.ndarray]:
    adjacency, op_indices = _graph_cached(ops, detach)
    return adjacency.copy(), op_indices.copy()


def _reachable(successors: list[set[int]], start: int) -> set[int]:
    seen: set[int] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(successors[node])
    return seen


@functools.lru_cache(maxsize=None)
def _component_costs(input_size: int, num_classes: int) -> tuple[Cost, list[dict[str, Cost]]]:
    """(skeleton cost, per stage {op: cost of one op instance}) at ``input_size``."""
    with torch.device("meta"):
        stem = nn.Sequential(
            nn.Conv2d(3, STEM_CHANNELS, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(STEM_CHANNELS)
        )
        reductions = [ResNetBasicblock(a, b) for a, b in zip(STAGE_CHANNELS, STAGE_CHANNELS[1:])]
        last = STAGE_CHANNELS[-1]
        head = nn.Sequential(
            nn.BatchNorm2d(last), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(last, num_classes)
        )
    skeleton = count(stem, (1, 3, input_size, input_size))
    size = input_size
    op_costs = []
    for stage, channels in enumerate(STAGE_CHANNELS):
        if stage > 0:
            block = reductions[stage - 1]
            skeleton = skeleton + count(block, (1, STAGE_CHANNELS[stage - 1], size, size))
            with torch.device("meta"):
                size = block(torch.empty(1, STAGE_CHANNELS[stage - 1], size, size)).shape[-1]
        with torch.device("meta"):
            modules = {op: make_op(op, channels) for op in OPS}
        op_costs.append({op: count(m, (1, channels, size, size), "meta") for op, m in modules.items()})
    skeleton = skeleton + count(head, (1, last, size, size))
    return skeleton, op_costs
