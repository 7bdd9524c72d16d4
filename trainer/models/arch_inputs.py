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
    >>> batch = graph_batch("nasbench201", ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"], 8)
    >>> tuple(batch.x.shape), tuple(batch.adj.shape), batch.readout.tolist()
    ((1, 9, 8), (1, 9, 9), [8])
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from farm import spaces

_GRAPH_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
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


def _cached(cache: dict, key: tuple[str, str], compute: Callable[[], object]):
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        value = cache[key] = compute()
    return value


def _raw_graph(space_name: str, arch: str) -> tuple[np.ndarray, np.ndarray]:
    adj, ops = spaces.get(space_name).graph(arch)
    return np.asarray(adj, dtype=np.uint8), np.asarray(ops, dtype=np.int64)


def graph_batch(
    space_name: str, archs: Sequence[str], num_node_types: int, zero_detached: bool = False
) -> GraphBatch:
    """Stack ``space.graph`` of each arch, padding to the largest graph; the global node is the last node.

    Vectorised over the batch: encoding all 15,625 NAS-Bench-201 cells takes a fraction of a second.
    """
    raw = [_cached(_GRAPH_CACHE, (space_name, a), lambda a=a: _raw_graph(space_name, a)) for a in archs]
    sizes = np.fromiter((len(ops) for _, ops in raw), dtype=np.int64, count=len(raw))
    size = int(sizes.max())
    if np.all(sizes == size):
        adj = np.stack([a for a, _ in raw]).astype(np.float32)
        ops = np.stack([o for _, o in raw])
    else:
        adj = np.zeros((len(raw), size, size), np.float32)
        ops = np.full((len(raw), size), -1, np.int64)
        for b, (a, o) in enumerate(raw):
            adj[b, : len(o), : len(o)] = a
            ops[b, : len(o)] = o
    batch = np.arange(len(raw))
    glob = sizes - 1
    real = np.arange(size)[None, :] < sizes[:, None]
    # edges other than those into / out of the global node
    out_degree = adj.sum(2) - adj[batch, :, glob]
    in_degree = adj.sum(1) - adj[batch, glob, :]
    detached = (out_degree == 0) & (in_degree == 0)
    detached[batch, glob] = False
    receive = np.minimum(adj.transpose(0, 2, 1) + np.eye(size, dtype=np.float32) * real[:, :, None], 1.0)
    receive[batch, glob, :] = real.astype(np.float32)
    keep = real & (ops >= 0) & ~(detached & zero_detached)
    if np.any(ops[keep] >= num_node_types):
        raise ValueError(f"{space_name} graph op index {ops[keep].max()} >= num_node_types={num_node_types}")
    x = np.zeros((len(raw), size, num_node_types), np.float32)
    b_idx, n_idx = np.nonzero(keep)
    x[b_idx, n_idx, ops[b_idx, n_idx]] = 1.0
    return GraphBatch(torch.from_numpy(x), torch.from_numpy(receive), torch.from_numpy(glob))


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
