import torch

from trainer.models.layers.gcn import DirectedGraphConv


def test_output_shape_and_directed_aggregation():
    conv = DirectedGraphConv(2, 3, bias=False)
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])
    # node 2 receives from nodes 0 and 1 only; nodes 0 and 1 receive from nobody
    adj = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    out = conv(x, adj)
    assert out.shape == (1, 3, 3)
    assert torch.allclose(out[0, 2], conv.weight[0] + conv.weight[1])
    assert torch.count_nonzero(out[0, :2]) == 0


def test_adjacency_is_not_normalised():
    conv = DirectedGraphConv(1, 1, bias=False)
    x = torch.ones(1, 4, 1)
    out = conv(x, torch.ones(1, 4, 4))
    assert torch.allclose(out, 4 * conv.weight.expand(1, 4, 1))


def test_reset_parameters_redraws_within_bound():
    torch.manual_seed(0)
    conv = DirectedGraphConv(5, 16)
    before = conv.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.weight)
    assert conv.weight.abs().max() <= 1 / 16**0.5
    assert conv.bias is not None and conv.bias.abs().max() <= 1 / 16**0.5
