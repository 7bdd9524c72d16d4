import numpy as np
import torch

from farm import spaces
from trainer.models import arch_inputs

CONV_CHAIN = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|"


def test_graph_batch_matches_brpnas_input():
    batch = arch_inputs.graph_batch("nasbench201", [CONV_CHAIN], arch_inputs.num_node_types("nasbench201"), True)
    adj, ops = spaces.get("nasbench201").graph(CONV_CHAIN)
    assert batch.x.shape == (1, 9, 8) and batch.adj.shape == (1, 9, 9) and batch.readout.tolist() == [8]
    receive = batch.adj[0]
    # messages follow the data flow: node j receives from i where adj[i, j] = 1, plus a self loop
    expected = np.minimum(adj.T.astype(np.float32) + np.eye(9, dtype=np.float32), 1.0)
    expected[8, :] = 1.0
    assert torch.equal(receive, torch.from_numpy(expected))
    assert receive[3, 1] == 1 and receive[1, 3] == 0  # conv3x3 (node 1, edge 1<-0) feeds conv1x1 (node 3, edge 2<-1)
    assert torch.all(torch.diagonal(receive) == 1)
    assert torch.all(receive[8] == 1)  # the global node reads every node
    # detached ops (the none edges) have zero features; the conv/pool chain keeps its one-hot rows
    detached = [n for n in range(1, 7) if adj[n, :8].sum() == 0 and adj[:8, n].sum() == 0]
    assert detached == [2, 4, 5] and torch.all(batch.x[0, detached] == 0)
    kept = [n for n in range(9) if n not in detached]
    assert torch.all(batch.x[0, kept].sum(-1) == 1)
    assert torch.equal(batch.x[0, kept].argmax(-1), torch.from_numpy(ops[kept]))
    # by default every node keeps its op one-hot (dangling ops still run and cost time)
    default = arch_inputs.graph_batch("nasbench201", [CONV_CHAIN], 8)
    assert torch.equal(default.x[0].argmax(-1), torch.from_numpy(ops)) and torch.all(default.x[0].sum(-1) == 1)
    assert torch.equal(default.adj, batch.adj)


def test_cache_and_onehot():
    archs = spaces.get("nasbench201").sample(5, seed=0)
    first = arch_inputs.graph_batch("nasbench201", archs, 8)
    again = arch_inputs.graph_batch("nasbench201", archs, 8)
    assert torch.equal(first.x, again.x) and torch.equal(first.adj, again.adj)
    assert len(first.index(torch.tensor([0, 2]))) == 2
    onehot = arch_inputs.onehot_batch("nasbench201", archs)
    assert onehot.shape == (5, 30) and torch.all(onehot.sum(1) == 6)


def test_padding_mixed_sizes_with_ofa():
    archs = spaces.get("ofa").sample(6, seed=0)
    sizes = [len(spaces.get("ofa").graph(a)[1]) for a in archs]
    batch = arch_inputs.graph_batch("ofa", archs, arch_inputs.num_node_types("ofa"))
    assert batch.x.shape[1] == max(sizes) and batch.readout.tolist() == [n - 1 for n in sizes]
    for b, n in enumerate(sizes):
        assert torch.all(batch.adj[b, n:] == 0) and torch.all(batch.adj[b, :, n:] == 0)  # padding is inert
        assert torch.all(batch.adj[b, n - 1, :n] == 1)  # the global node reads every real node
        assert torch.all(batch.x[b, :n].sum(-1) == 1)
