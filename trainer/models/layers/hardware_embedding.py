"""Learnable hardware-embedding table that grows by one row per new device.

Akhauri & Abdelfattah, "Multi-Predict: Few Shot Predictors For Efficient
Neural Architecture Search", AutoML 2023, Section 4: a device ``d`` is a row
``E_d`` of a table learned jointly with the predictor ``f(arch, E_d)``. A new
target device gets a new row initialised from source rows before fine-tuning:

.. math::
    E_{new} = \\sum_s w_s E_s, \\qquad \\sum_s w_s = 1

with ``w`` one-hot on the source whose latencies correlate best with the
target's samples (the paper), or any other convex weighting.
"""

from __future__ import annotations

import torch
from torch import nn


class HardwareEmbedding(nn.Module):
    """Table of ``num_devices`` x ``dim`` device embeddings.

    Example:
        >>> table = HardwareEmbedding(3, 8)
        >>> new = table.add_row(torch.tensor([0.0, 1.0, 0.0]))
        >>> new, torch.equal(table.weight[new], table.weight[1])
        (3, True)
    """

    def __init__(self, num_devices: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.empty(num_devices, dim))
        self.reset_parameters()

    @property
    def num_devices(self) -> int:
        return self.weight.shape[0]

    def reset_parameters(self) -> None:
        """N(0, 1) rows, as ``torch.nn.Embedding``."""
        nn.init.normal_(self.weight)

    @torch.no_grad()
    def add_row(self, mix: torch.Tensor) -> int:
        """Append a row equal to ``mix @ weight`` (``mix``: [num_devices] convex weights); return its index."""
        if mix.shape != (self.num_devices,):
            raise ValueError(f"mix must have shape ({self.num_devices},), got {tuple(mix.shape)}")
        row = (mix.to(self.weight.dtype) @ self.weight).unsqueeze(0)
        self.weight = nn.Parameter(torch.cat([self.weight.detach(), row]))
        return self.num_devices - 1

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.weight[index]
