"""Fast TorchScript export of space models: trace once with the weights as constants, then freeze.

``torch.jit.trace(model)`` and ``torch.jit.script(model)`` wrap or compile
every submodule, and their cost grows with the module count: an NB201 network
has 230-470 submodules, and building, tracing or scripting and freezing one
took a median 0.7-1.0 s of CPU time on the shared 2-core machine, against
0.17 s with this function (``benchmarks/spaces.py``). :func:`freeze_torchscript` hides the model behind a
one-module wrapper, so tracing records the executed ops with the parameters
as constants (what ``torch.jit.freeze`` produces anyway) and wraps one module.
The result is a frozen ``ScriptModule``: ``torch.jit.freeze``'s optimisations
(conv-BN folding, constant propagation) run on it, and it saves for the lite
interpreter. Tracing records one path through ``forward``; the space models'
control flow depends only on the arch, never on the input, so that path is the
model.

Example:
    >>> import torch
    >>> from farm.spaces import get
    >>> space = get("nasbench201")
    >>> arch = space.arch(1462)
    >>> model = space.build(arch)
    >>> frozen = freeze_torchscript(model, torch.zeros(space.input_shape(arch)))
    >>> x = torch.randn(space.input_shape(arch))
    >>> torch.allclose(frozen(x), model(x), atol=1e-5)
    True
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

__all__ = ["freeze_torchscript"]


class _Sealed(nn.Module):
    """Calls a model that is kept out of the module tree, so tracing sees its tensors as constants."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "sealed_model", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sealed_model(x)


@contextlib.contextmanager
def _detached_copies(model: nn.Module) -> Iterator[None]:
    """Temporarily replace every parameter and buffer by a detached copy (restored on exit).

    The traced constants are then these copies: the export shares no storage
    with ``model`` and never requires grad, whatever the caller does next.
    """
    swapped = []
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, tensor in table.items():
                if tensor is not None:
                    swapped.append((table, name, tensor))
                    table[name] = tensor.detach().clone()
    try:
        yield
    finally:
        for table, name, tensor in swapped:
            table[name] = tensor


def freeze_torchscript(model: nn.Module, example_input: torch.Tensor) -> torch.jit.ScriptModule:
    """A frozen TorchScript module computing ``model(x)`` in eval mode; ``model`` is left unchanged."""
    was_training = model.training
    try:
        with torch.no_grad(), _detached_copies(model.eval()):
            traced = torch.jit.trace(_Sealed(model).eval(), example_input, check_trace=False)
    finally:
        model.train(was_training)
    return torch.jit.freeze(traced)
