import torch

from trainer.models.layers.gat import GatedGraphAttention


def test_shape_and_layer_norm_of_each_node():
    torch.manual_seed(0)
    layer = GatedGraphAttention(3, 8, 2)
    out = layer(torch.randn(4, 5, 3), (torch.rand(4, 5, 5) > 0.5).float(), torch.randn(4, 5, 2))
    assert out.shape == (4, 5, 8)
    assert torch.allclose(out.mean(-1), torch.zeros(4, 5), atol=1e-5)


def test_attention_covers_predecessors_and_self_only():
    torch.manual_seed(0)
    layer = GatedGraphAttention(3, 4, 2)
    adj = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    weights = layer.attention(layer.project(torch.randn(1, 3, 3)), adj)[0]
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert torch.equal(weights[0], torch.tensor([1.0, 0.0, 0.0]))  # no predecessor: itself
    assert weights[1, 2] == 0 and weights[1, 0] > 0 and weights[1, 1] > 0


def test_the_operation_gate_scales_the_message_before_the_norm():
    layer = GatedGraphAttention(2, 4, 1)
    with torch.no_grad():
        layer.gate.weight.fill_(1.0)
        layer.gate.bias.zero_()
    x, adj = torch.randn(1, 2, 2), torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    closed = layer(x, adj, torch.full((1, 2, 1), -30.0))
    opened = layer(x, adj, torch.full((1, 2, 1), 30.0))
    assert closed.abs().max() < 1e-2 < opened.abs().max()


def test_reset_parameters_redraws():
    torch.manual_seed(2)
    layer = GatedGraphAttention(3, 4, 2)
    before = layer.attend_source.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.attend_source)
