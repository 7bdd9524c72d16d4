import torch

from trainer.models.layers.dgf_gat_ensemble import DGFGATEnsemble


def test_the_ensemble_is_the_mean_of_its_members():
    torch.manual_seed(0)
    layer = DGFGATEnsemble(3, 4, 2)
    x, adj, ops = torch.randn(2, 5, 3), (torch.rand(2, 5, 5) > 0.5).float(), torch.randn(2, 5, 2)
    out = layer(x, adj, ops)
    assert out.shape == (2, 5, 4)
    assert torch.allclose(out, (layer.dgf(x, adj, ops) + layer.gat(x, adj, ops)) / 2)


def test_a_batch_of_one_node_state_broadcasts_over_graphs():
    torch.manual_seed(0)
    layer = DGFGATEnsemble(3, 4, 2)
    x, adj, ops = torch.randn(1, 5, 3), (torch.rand(2, 5, 5) > 0.5).float(), torch.randn(2, 5, 2)
    assert torch.allclose(layer(x, adj, ops), layer(x.expand(2, -1, -1), adj, ops), atol=1e-6)
