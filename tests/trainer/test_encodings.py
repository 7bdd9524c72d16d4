"""trainer.encodings: the space's encodings, batched and memoised."""

from __future__ import annotations

import numpy as np

from farm import spaces
from trainer import encodings

SPACE = "nasbench201"


def test_batches_match_the_space_one_by_one():
    space = spaces.get(SPACE)
    archs = space.sample(7, seed=2)
    np.testing.assert_array_equal(encodings.onehot(SPACE, archs), np.stack([space.onehot(a) for a in archs]))
    assert encodings.flops(SPACE, archs).tolist() == [space.flops(a) for a in archs]
    assert encodings.params(SPACE, archs).tolist() == [space.params(a) for a in archs]
    adjacency, ops = encodings.graphs(SPACE, archs)
    for i, arch in enumerate(archs):
        adj, op = space.graph(arch)
        np.testing.assert_array_equal(adjacency[i], adj)
        np.testing.assert_array_equal(ops[i], op)


def test_fbnet_graphs_stack():
    adjacency, ops = encodings.graphs("fbnet", spaces.get("fbnet").sample(3, seed=0))
    assert adjacency.shape == (3, 25, 25) and ops.shape == (3, 25)


def test_results_are_memoised(monkeypatch):
    space = spaces.get(SPACE)
    arch = space.sample(1, seed=123)[0]
    encodings.clear_cache()
    first = encodings.flops(SPACE, [arch])
    monkeypatch.setattr(type(space), "flops", lambda self, a, size=None: (_ for _ in ()).throw(AssertionError("recomputed")))
    assert encodings.flops(SPACE, [arch]).tolist() == first.tolist()
