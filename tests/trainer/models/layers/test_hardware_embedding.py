import pytest
import torch

from trainer.models.layers.hardware_embedding import HardwareEmbedding


def test_lookup_and_add_row_copy_and_mix():
    table = HardwareEmbedding(3, 4)
    assert table(torch.tensor([2, 0])).shape == (2, 4)
    best = table.add_row(torch.tensor([0.0, 0.0, 1.0]))
    assert best == 3 and table.num_devices == 4
    assert torch.equal(table.weight[3], table.weight[2])
    mixed = table.add_row(torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.allclose(table.weight[mixed], (table.weight[0] + table.weight[1]) / 2)
    assert table.weight.requires_grad


def test_add_row_rejects_wrong_shape():
    with pytest.raises(ValueError, match="mix must have shape"):
        HardwareEmbedding(3, 4).add_row(torch.ones(2))


def test_reset_parameters():
    table = HardwareEmbedding(2, 8)
    before = table.weight.detach().clone()
    table.reset_parameters()
    assert not torch.equal(before, table.weight)
