"""Multi-layer perceptron (the FC stacks of BRP-NAS and MultiPredict).

.. math::
    h^{(l+1)} = \\mathrm{dropout}\\big(\\mathrm{ReLU}(W^{(l)} h^{(l)} + b^{(l)})\\big)

for every hidden layer, and a plain affine map for the last one when
``out_channels`` is given (a regression head).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Linear + ReLU (+ dropout) layers, with an optional final linear output.

    Args:
        in_channels: input size.
        hidden: sizes of the hidden layers (ReLU after each).
        out_channels: size of a final linear layer without activation; None for none.
        dropout: dropout after each hidden layer.

    Example:
        >>> MLP(4, [8, 8], 1)(torch.ones(3, 4)).shape
        torch.Size([3, 1])
    """

    def __init__(
        self, in_channels: int, hidden: Sequence[int], out_channels: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = in_channels
        for width in hidden:
            layers += [nn.Linear(size, width), nn.ReLU(), nn.Dropout(dropout)]
            size = width
        if out_channels is not None:
            layers.append(nn.Linear(size, out_channels))
            size = out_channels
        self.net = nn.Sequential(*layers)
        self.out_channels = size

    def reset_parameters(self) -> None:
        """Re-initialise every linear layer (PyTorch's default Kaiming-uniform)."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
