import torch

from trainer.models.layers.dgf import DenseGraphFlow


def test_shape_and_the_equation_on_a_two_node_graph():
    torch.manual_seed(0)
    layer = DenseGraphFlow(3, 4, 2)
    x = torch.randn(1, 2, 3)
    ops = torch.randn(1, 2, 2)
    adj = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # node 1 receives from node 0
    out = layer(x, adj, ops)
    assert out.shape == (1, 2, 4)
    support = x @ layer.weight
    gate = torch.sigmoid(layer.gate(ops))
    assert torch.allclose(out[0, 0], support[0, 0] + layer.bias)  # no predecessor: residual only
    assert torch.allclose(out[0, 1], gate[0, 1] * support[0, 0] + support[0, 1] + layer.bias)


def test_the_operation_gate_controls_the_incoming_flow():
    layer = DenseGraphFlow(2, 2, 1)
    x, adj = torch.ones(1, 2, 2), torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    with torch.no_grad():
        layer.gate.weight.fill_(1.0)
        layer.gate.bias.zero_()
    closed = layer(x, adj, torch.full((1, 2, 1), -50.0))
    opened = layer(x, adj, torch.full((1, 2, 1), 50.0))
    support = (x @ layer.weight)[0, 0]
    assert torch.allclose(opened[0, 1] - closed[0, 1], support, atol=1e-5)
    assert torch.allclose(opened[0, 0], closed[0, 0])  # node 0 receives nothing to gate


def test_reset_parameters_redraws_within_bound():
    torch.manual_seed(1)
    layer = DenseGraphFlow(5, 16, 3)
    before = layer.weight.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.weight)
    assert layer.weight.abs().max() <= 1 / 16**0.5 and layer.bias.abs().max() <= 1 / 16**0.5
