import pytest
import torch

from trainer.models.layers.op_hardware_embedding import OpHardwareEmbedding


def test_each_node_reads_its_devices_row_for_its_operation():
    table = OpHardwareEmbedding(3, 4, 2)
    ops = torch.tensor([[0, 3, 3], [1, 2, 0]])
    out = table(torch.tensor([2, 0]), ops)
    assert out.shape == (2, 3, 2)
    assert torch.equal(out[0, 1], table.weight[2, 3]) and torch.equal(out[1, 0], table.weight[0, 1])


def test_add_copy_appends_a_trainable_copy_of_a_source():
    table = OpHardwareEmbedding(2, 4, 2)
    new = table.add_copy(0)
    assert new == 2 and table.num_devices == 3 and torch.equal(table.weight[2], table.weight[0])
    assert table.weight.requires_grad
    with pytest.raises(ValueError, match="not in 0..2"):
        table.add_copy(5)
