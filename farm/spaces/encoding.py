"""Encodings shared by the chain-structured spaces (FBNet, OFA): one-hot rows and chain graphs.

Graph convention (the same as :meth:`farm.spaces.nasbench201.NasBench201.graph`):
``adjacency[i, j] = 1`` means data flows from node i to node j; the last node is
the global node and every other node has an edge into it; no self-loops. This is
the matrix BRP-NAS's and HELP's ``add_global_node`` builds before it fills the
diagonal and transposes for the GCN.

Example:
    >>> adjacency, ops = chain_graph([3, 1], active=[True, False], input_op=0, output_op=5, global_op=6)
    >>> adjacency.tolist()
    [[0, 1, 0, 0, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    >>> ops.tolist()
    [0, 3, 1, 5, 6]
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np

__all__ = ["chain_graph", "onehot_rows", "distinct_samples"]


def onehot_rows(choices: Sequence[int], width: int, active: Sequence[bool] | None = None) -> np.ndarray:
    """Flat float32 vector: row i is the one-hot of ``choices[i]`` over ``width`` (zeros where inactive)."""
    rows = np.zeros((len(choices), width), dtype=np.float32)
    for row, (choice, on) in enumerate(zip(choices, active or [True] * len(choices))):
        if on:
            rows[row, choice] = 1.0
    return rows.reshape(-1)


def chain_graph(
    op_indices: Sequence[int],
    active: Sequence[bool],
    input_op: int,
    output_op: int,
    global_op: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Graph of input -> active blocks in order -> output, plus a global node fed by all nodes.

    Nodes: 0 input, 1..n the block slots, n+1 output, n+2 global. Inactive
    slots keep their op index and get no chain edges (only the edge into the
    global node), so every arch of a space has the same node count.
    """
    count = len(op_indices)
    size = count + 3
    adjacency = np.zeros((size, size), dtype=np.uint8)
    previous = 0
    for slot, on in enumerate(active, start=1):
        if on:
            adjacency[previous, slot] = 1
            previous = slot
    adjacency[previous, count + 1] = 1
    adjacency[: size - 1, size - 1] = 1
    ops = np.array([input_op, *op_indices, output_op, global_op], dtype=np.int64)
    return adjacency, ops


def distinct_samples(draw: Callable[[random.Random], str], n: int, seed: int, limit: int | None = None) -> list[str]:
    """``n`` distinct results of ``draw(rng)`` with ``rng = random.Random(seed)``, in draw order."""
    if n < 0 or (limit is not None and n > limit):
        raise ValueError(f"cannot sample {n} distinct archs (the space has {limit})")
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(draw(rng))
    return list(seen)
