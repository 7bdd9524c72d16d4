"""Dense graph flow with operation gating (DGF), NASFLAT's first GNN layer.

Akhauri & Abdelfattah, "On Latency Predictors for Neural Architecture Search",
MLSys 2024 (NASFLAT), Section 4, after the dense graph flow of TA-GATES:

.. math::
    X' = \\sigma(O W_o) \\odot (A X W_f) + X W_f + b

``A`` is the (batched, dense, directed) adjacency with row ``i`` listing the
nodes ``i`` receives from, ``X`` the node states, ``O`` the per-node operation
embedding and ``sigma`` the logistic sigmoid: each node's operation decides,
channel by channel, how much of the incoming flow passes. ``X W_f`` is the
residual path, so a node with no predecessor keeps its own transformed state.
The activation between layers is the caller's, as in PyG.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DenseGraphFlow(nn.Module):
    """One DGF layer ``sigmoid(O W_o) * (A X W_f) + X W_f + b``.

    Args:
        in_channels: node state size of ``x``.
        out_channels: node state size of the output.
        op_channels: size of the operation embedding ``O`` that gates the flow.

    Shapes: ``x`` [B, N, in_channels], ``adj`` [B, N, N], ``ops`` [B, N, op_channels]
    -> [B, N, out_channels].

    Example:
        >>> layer = DenseGraphFlow(6, 4, 3)
        >>> layer(torch.ones(2, 5, 6), torch.eye(5).expand(2, 5, 5), torch.zeros(2, 5, 3)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, op_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.op_channels = in_channels, out_channels, op_channels
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.gate = nn.Linear(op_channels, out_channels)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(out), 1/sqrt(out)) flow weights and bias (Kipf & Welling); default gate init."""
        bound = 1.0 / math.sqrt(self.out_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.gate.reset_parameters()

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        """Gate the flow each node receives by its own operation, add the residual and the bias."""
        support = torch.matmul(x, self.weight)
        return torch.sigmoid(self.gate(ops)) * torch.matmul(adj, support) + support + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, op_channels={self.op_channels}"
