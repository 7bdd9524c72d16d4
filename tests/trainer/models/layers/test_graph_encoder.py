import pytest
import torch

from trainer.models.layers.graph_encoder import GraphEncoder


def test_reads_out_the_requested_node():
    torch.manual_seed(0)
    enc = GraphEncoder(3, [4, 5])
    x = torch.randn(2, 3, 3)
    adj = torch.eye(3).expand(2, 3, 3).clone()
    out = enc(x, adj, torch.tensor([2, 0]))
    assert out.shape == (2, 5)
    # with self loops only, each node is processed independently: swapping graphs swaps the readout
    swapped = enc(torch.stack([x[1], x[0]]), adj, torch.tensor([0, 2]))
    assert torch.allclose(out.flip(0), swapped)


def test_global_node_sees_every_node():
    torch.manual_seed(0)
    enc = GraphEncoder(2, [8])
    adj = torch.eye(3).unsqueeze(0).clone()
    adj[0, 2, :] = 1.0  # global node 2 receives from all
    x = torch.zeros(1, 3, 2)
    base = enc(x, adj, torch.tensor([2]))
    x[0, 0, 0] = 1.0
    assert not torch.allclose(base, enc(x, adj, torch.tensor([2])))


def test_reset_parameters_and_empty_config():
    enc = GraphEncoder(2, [4, 4])
    before = [c.weight.detach().clone() for c in enc.convs]
    enc.reset_parameters()
    assert all(not torch.equal(b, c.weight) for b, c in zip(before, enc.convs))
    with pytest.raises(ValueError, match="at least one layer"):
        GraphEncoder(2, [])


def test_global_row_shortcut_equals_the_full_last_layer():
    torch.manual_seed(1)
    enc = GraphEncoder(4, [16, 16, 8])
    x = torch.randn(5, 7, 4)
    adj = (torch.rand(5, 7, 7) > 0.5).float()
    readout = torch.tensor([6, 6, 3, 0, 6])
    full = x
    for conv in enc.convs:
        full = torch.relu(conv(full, adj))
    torch.testing.assert_close(enc(x, adj, readout), full[torch.arange(5), readout])
