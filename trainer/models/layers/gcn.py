"""Directed graph convolution over a dense, unnormalised adjacency (BRP-NAS).

Dudziak, Chau, Abdelfattah, Lee, Kim, Lane: "BRP-NAS: Prediction-based NAS
using GCNs", NeurIPS 2020, Section 3 / Appendix A:

.. math::
    H^{(l+1)} = \\sigma\\big(A \\, H^{(l)} W^{(l)} + b^{(l)}\\big)

``A`` is the (batched) adjacency *as given*: directed, not symmetrised and not
degree-normalised, with self loops when the caller adds them. The activation
``sigma`` is applied by the caller (see :class:`GraphEncoder`), as in PyG.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DirectedGraphConv(nn.Module):
    """One dense GCN layer ``A @ (X @ W) + b``.

    Args:
        in_channels: node feature size of ``x``.
        out_channels: node feature size of the output.
        bias: add a learnable bias.

    Shapes: ``x`` [B, N, in_channels], ``adj`` [B, N, N] -> [B, N, out_channels].
    Row ``i`` of ``adj`` lists the nodes whose messages node ``i`` receives.

    Example:
        >>> conv = DirectedGraphConv(6, 4)
        >>> x, adj = torch.ones(2, 3, 6), torch.eye(3).expand(2, 3, 3)
        >>> conv(x, adj).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(out), 1/sqrt(out)) as in Kipf & Welling's reference code, used by BRP-NAS."""
        bound = 1.0 / math.sqrt(self.out_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Aggregate ``x @ W`` over each node's incoming edges in ``adj``."""
        out = torch.matmul(adj, torch.matmul(x, self.weight))
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, bias={self.bias is not None}"
