"""Arch strings -> the tensors the neural predictors read, from ``farm.spaces``.

* :func:`graph_batch`: BRP-NAS graphs. ``space.graph(arch)`` gives a directed
  adjacency (``adj[i, j] = 1`` for an edge ``i -> j``) and node op indices with a
  global node. The GCN layer computes ``A H W`` where row ``i`` of ``A`` lists
  the nodes ``i`` receives from, so we pass ``A = adj.T + I`` (messages follow the
  data flow, self loops as in BRP-NAS) and make the global node receive from every
  node so that reading it out summarises the graph. Node features are one-hot op
  indices; padding (a negative index) gets a zero vector.

  ``zero_detached=True`` also zeroes the features of nodes without edges, as
  BRP-NAS does (it detaches ``none`` and ``skip_connect`` ops and ops off every
  input-output path). That suits accuracy, not latency: a dangling conv still
  runs in the built cell, and with zeroed features the 15,625 NAS-Bench-201 cells
  collapse to 8,687 distinct inputs. On the HELP latencies a MultiPredict
  encoder then ranks its own source devices on unseen archs at Spearman 0.84-0.90
  instead of 0.94-0.98 (900 archs, 30 epochs), so the predictors keep the op
  features by default (the node still sends to the global node only).
* :func:`onehot_batch`: ``space.onehot(arch)`` stacked.

Both cache per (space, arch), so predicting a whole space twice is cheap.

Example:
    >>> import numpy as np
    >>> receive_matrix(np.array([[0, 1], [0, 0]], np.float32), global_index=1).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from farm import spaces

_GRAPH_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_ONEHOT_CACHE: dict[tuple[str, str], np.ndarray] = {}
_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class GraphBatch:
    """Padded batch of graphs: ``x`` [B, N, F], ``adj`` [B, N, N] (receive matrix), ``readout`` [B]."""

    x: torch.Tensor
    adj: torch.Tensor
    readout: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def index(self, idx: torch.Tensor | slice) -> "GraphBatch":
        """The sub-batch at ``idx`` (an index tensor or a slice)."""
        return GraphBatch(self.x[idx], self.adj[idx], self.readout[idx])


def receive_matrix(adj: np.ndarray, global_index: int) -> np.ndarray:
    """``adj.T + I`` with the global node receiving from every node."""
    receive = adj.T.astype(np.float32) + np.eye(adj.shape[0], dtype=np.float32)
    receive = np.minimum(receive, 1.0)
    receive[global_index, :] = 1.0
    return receive


def _cached(cache: dict, key: tuple[str, str], compute: Callable[[], object]):
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        value = cache[key] = compute()
    return value


def _graph(space_name: str, arch: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(receive matrix, op indices, detached mask) of one arch."""
    adj, ops = spaces.get(space_name).graph(arch)
    adj, ops = np.asarray(adj), np.asarray(ops, dtype=np.int64)
    inner = adj[:-1, :-1]
    detached = np.zeros(len(ops), dtype=bool)
    detached[:-1] = (inner.sum(0) == 0) & (inner.sum(1) == 0)
    return receive_matrix(adj, global_index=len(ops) - 1), ops, detached


def graph_batch(
    space_name: str, archs: Sequence[str], num_node_types: int, zero_detached: bool = False
) -> GraphBatch:
    """Stack ``space.graph`` of each arch, padding to the largest graph; the global node is the last node."""
    graphs = [_cached(_GRAPH_CACHE, (space_name, a), lambda a=a: _graph(space_name, a)) for a in archs]
    size = max(len(ops) for _, ops, _ in graphs)
    x = np.zeros((len(graphs), size, num_node_types), np.float32)
    adj = np.zeros((len(graphs), size, size), np.float32)
    readout = np.empty(len(graphs), np.int64)
    for b, (receive, ops, detached) in enumerate(graphs):
        n = len(ops)
        adj[b, :n, :n] = receive
        valid = np.nonzero((ops >= 0) & ~(detached & zero_detached))[0]
        if valid.size and ops[valid].max() >= num_node_types:
            raise ValueError(f"{space_name} graph op index {ops.max()} >= num_node_types={num_node_types}")
        x[b, valid, ops[valid]] = 1.0
        readout[b] = n - 1
    return GraphBatch(torch.from_numpy(x), torch.from_numpy(adj), torch.from_numpy(readout))


def num_node_types(space_name: str) -> int:
    """Size of the node one-hot: ``len(GRAPH_OPS)`` of the space's module (the names ``graph()`` indexes)."""
    space = spaces.get(space_name)
    names = getattr(space, "GRAPH_OPS", None) or getattr(importlib.import_module(type(space).__module__), "GRAPH_OPS", None)
    if names is None:
        raise TypeError(f"search space {space_name!r} does not declare GRAPH_OPS, the node types of its graph()")
    return len(names)


def onehot_batch(space_name: str, archs: Sequence[str]) -> torch.Tensor:
    """[B, D] float32 stack of ``space.onehot(arch)``."""
    space = spaces.get(space_name)
    rows = [_cached(_ONEHOT_CACHE, (space_name, a), lambda a=a: np.asarray(space.onehot(a), np.float32)) for a in archs]
    return torch.from_numpy(np.stack(rows))
