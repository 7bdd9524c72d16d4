"""freeze_torchscript: the fast TorchScript export of space models."""

from __future__ import annotations

import pytest
import torch
from torch.jit.mobile import _load_for_lite_interpreter

from farm.spaces import get
from farm.spaces.export import freeze_torchscript

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Lite Interpreter is deprecated:DeprecationWarning"),
]


@pytest.mark.parametrize("space_name", ["nasbench201", "fbnet", "ofa"])
def test_export_equals_eager_and_runs_in_the_lite_interpreter(space_name: str, tmp_path) -> None:
    space = get(space_name)
    arch = space.sample(1, seed=17)[0]
    model = space.build(arch)
    shape = space.input_shape(arch, input_size=64 if space_name == "ofa" else None)
    frozen = freeze_torchscript(model, torch.zeros(shape))
    x = torch.randn(shape)
    expected = model(x)
    torch.testing.assert_close(frozen(x), expected, rtol=1e-4, atol=1e-4)
    assert not list(frozen.children())  # weights are constants, no module tree
    path = tmp_path / "model.ptl"
    frozen._save_for_lite_interpreter(str(path))
    torch.testing.assert_close(_load_for_lite_interpreter(str(path))(x), expected, rtol=1e-4, atol=1e-4)


def test_export_leaves_the_model_alone_and_shares_no_storage() -> None:
    space = get("nasbench201")
    model = space.build(space.arch(1462)).train()
    frozen = freeze_torchscript(model, torch.zeros(1, 3, 32, 32))
    assert model.training
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in model.parameters())
    x = torch.randn(1, 3, 32, 32)
    before = frozen(x)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    torch.testing.assert_close(frozen(x), before)
