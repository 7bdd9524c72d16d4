"""Count the multiply-accumulates and parameters a module really executes.

Forward hooks on every ``nn.Conv2d`` and ``nn.Linear`` record the output
shape of each call; the MACs of one call are

* Conv2d: ``out_elements * (in_channels / groups) * kh * kw``
* Linear: ``out_elements * in_features``

divided by the batch size, so the count is per input. Pooling, batch norm,
activations, additions and channel shuffles are not MACs and are not counted
(the usual "FLOPs" of NAS papers, which are MACs of convolutions and
fully connected layers; OFA's ``count_net_flops`` counts the same layers).

Modules built under ``torch.device("meta")`` are counted without allocating
or computing anything: only shapes flow, which makes per-component counting
cheap enough to tabulate whole search spaces.

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    >>> count_macs(conv, (1, 3, 4, 4))
    3456
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = ["Cost", "conv_cost", "conv_out_size", "count", "count_macs", "count_params", "module_device"]


@dataclass(frozen=True)
class Cost:
    """MACs for one input and parameters of one module (or a sum of them)."""

    macs: int = 0
    params: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.params + other.params)

    def __mul__(self, times: int) -> "Cost":
        return Cost(self.macs * times, self.params * times)

    __rmul__ = __mul__


def module_device(module: nn.Module) -> torch.device:
    """The device of the first parameter or buffer (CPU for stateless modules)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def count_params(module: nn.Module) -> int:
    """Number of parameters (works on meta modules)."""
    return sum(p.numel() for p in module.parameters())


def _macs_of_call(layer: nn.Module, output: torch.Tensor) -> int:
    batch = output.shape[0]
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        per_output = (layer.in_channels // layer.groups) * kh * kw
    else:
        assert isinstance(layer, nn.Linear)
        per_output = layer.in_features
    return output.numel() * per_output // batch


def count_macs(
    module: nn.Module,
    input_shape: Sequence[int],
    device: torch.device | str | None = None,
) -> int:
    """MACs of one forward pass of ``module`` on a zero input of ``input_shape``, per input.

    The input lives on ``device`` (default: the module's own device, so a meta
    module gets a meta input and nothing is computed).
    """
    return count(module, input_shape, device).macs


def count(
    module: nn.Module,
    input_shape: Sequence[int],
    device: torch.device | str | None = None,
) -> Cost:
    """:class:`Cost` (MACs per input and parameters) of ``module`` on ``input_shape``."""
    total = 0

    def hook(layer: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _macs_of_call(layer, output)

    handles = [
        layer.register_forward_hook(hook)
        for layer in module.modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear))
    ]
    try:
        x = torch.zeros(tuple(input_shape), device=device or module_device(module))
        with torch.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return Cost(total, count_params(module))


def conv_out_size(size: int, kernel: int, stride: int = 1) -> int:
    """Output side of a conv with padding ``kernel // 2`` (odd kernels: "same" at stride 1)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def conv_cost(
    c_in: int,
    c_out: int,
    kernel: int,
    out_size: int,
    groups: int = 1,
    bias: bool = False,
    bn: bool = True,
) -> Cost:
    """Analytic :class:`Cost` of one square Conv2d (optionally followed by BatchNorm2d).

    MACs = ``out_size**2 * c_out * (c_in / groups) * kernel**2``, the same
    count the hooks of :func:`count` make; parameters include the bias and
    the BN scale and shift. Spaces too large to tabulate by running modules
    use this, and their tests compare it with :func:`count` on built models.

    Example:
        >>> conv_cost(16, 32, 3, 8)
        Cost(macs=294912, params=4672)
    """
    weights = c_out * (c_in // groups) * kernel * kernel
    return Cost(weights * out_size * out_size, weights + (c_out if bias else 0) + (2 * c_out if bn else 0))
