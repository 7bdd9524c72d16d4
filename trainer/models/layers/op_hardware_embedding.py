"""Op-wise hardware embeddings: one learnable vector per (device, operation type).

Akhauri & Abdelfattah, "On Latency Predictors for Neural Architecture Search",
MLSys 2024 (NASFLAT), Section 4: a node's input to the op-hardware GNN is its
operation embedding joined to a hardware embedding of that operation on the
device, so a device can price each kind of operation on its own:

.. math::
    o_i^{(d)} = [\\, E^{op}_{t_i} \\,\\|\\, H^{(d)}_{t_i} \\,]

with ``t_i`` node ``i``'s operation type and ``H^{(d)}`` the [num_ops, dim]
table of device ``d``. A new target device gets a copy of a source's table
(NASFLAT: the source whose latencies correlate best with the target's samples).
"""

from __future__ import annotations

import torch
from torch import nn


class OpHardwareEmbedding(nn.Module):
    """A [num_devices, num_ops, dim] table, read per node; grows by one device at a time.

    Example:
        >>> table = OpHardwareEmbedding(2, 5, 3)
        >>> table(torch.tensor([1]), torch.tensor([[0, 4]])).shape
        torch.Size([1, 2, 3])
        >>> new = table.add_copy(1)
        >>> new, torch.equal(table.weight[new], table.weight[1])
        (2, True)
    """

    def __init__(self, num_devices: int, num_ops: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_devices, num_ops, dim))
        self.reset_parameters()

    @property
    def num_devices(self) -> int:
        return self.weight.shape[0]

    def reset_parameters(self) -> None:
        """N(0, 1) entries, as ``torch.nn.Embedding``."""
        nn.init.normal_(self.weight)

    @torch.no_grad()
    def add_copy(self, source: int) -> int:
        """Append a device whose table equals device ``source``'s; return its index."""
        if not 0 <= source < self.num_devices:
            raise ValueError(f"source device {source} is not in 0..{self.num_devices - 1}")
        self.weight = nn.Parameter(torch.cat([self.weight.detach(), self.weight[source : source + 1].detach()]))
        return self.num_devices - 1

    def forward(self, device: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        """[B, N, dim]: row ``ops[b, n]`` of device ``device[b]``'s table."""
        return self.weight[device.unsqueeze(-1), ops]
