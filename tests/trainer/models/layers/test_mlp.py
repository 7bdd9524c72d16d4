import torch

from trainer.models.layers.mlp import MLP


def test_shapes_and_linear_output():
    mlp = MLP(4, [8, 6], 2)
    assert mlp(torch.randn(5, 4)).shape == (5, 2)
    assert mlp.out_channels == 2
    # the final layer has no activation: outputs can be negative
    torch.manual_seed(0)
    assert (MLP(4, [8], 1)(torch.randn(256, 4)) < 0).any()


def test_no_output_layer_ends_in_relu():
    mlp = MLP(3, [7])
    assert mlp.out_channels == 7
    assert (mlp(torch.randn(64, 3)) >= 0).all()


def test_reset_parameters():
    mlp = MLP(3, [4], 1)
    before = mlp.net[0].weight.detach().clone()
    mlp.reset_parameters()
    assert not torch.equal(before, mlp.net[0].weight)
