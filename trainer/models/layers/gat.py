"""Graph attention with operation gating and LayerNorm, NASFLAT's second GNN layer.

Akhauri & Abdelfattah, "On Latency Predictors for Neural Architecture Search",
MLSys 2024 (NASFLAT), Section 4, on the graph attention of Velickovic et al.
(ICLR 2018):

.. math::
    e_{ij} = \\mathrm{LeakyReLU}_{0.2}\\big(a_d^\\top W x_i + a_s^\\top W x_j\\big), \\qquad
    \\alpha_{ij} = \\operatorname{softmax}_{j \\in \\mathcal{N}(i) \\cup \\{i\\}} e_{ij}

.. math::
    x_i' = \\mathrm{LayerNorm}\\Big(\\sigma(o_i W_o) \\odot \\sum_j \\alpha_{ij} W x_j\\Big)

Attention runs over the nodes ``i`` receives from (row ``i`` of ``adj``) and
``i`` itself (GAT's self loop, so a node without predecessors attends to
itself); ``o_i`` is node ``i``'s operation embedding and ``sigma`` the sigmoid.
The score is GAT's additive one: NASFLAT's code scores a pair through the
element-wise product of the two projected states, an [B, N, N, F] tensor; the
additive score costs [B, N, N] and keeps the layer within the CPU budget
(see :mod:`trainer.models.nasflat`).
"""

from __future__ import annotations

import torch
from torch import nn


class GatedGraphAttention(nn.Module):
    """One single-head GAT layer with an operation gate and a LayerNorm on the output.

    Args:
        in_channels: node state size of ``x``.
        out_channels: node state size of the output.
        op_channels: size of the operation embedding that gates the aggregated message.
        negative_slope: LeakyReLU slope of the attention score.

    Shapes: ``x`` [B, N, in_channels], ``adj`` [B, N, N], ``ops`` [B, N, op_channels]
    -> [B, N, out_channels].

    Example:
        >>> layer = GatedGraphAttention(6, 4, 3)
        >>> layer(torch.ones(2, 5, 6), torch.zeros(2, 5, 5), torch.zeros(2, 5, 3)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, op_channels: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.op_channels = in_channels, out_channels, op_channels
        self.project = nn.Linear(in_channels, out_channels, bias=False)
        self.attend_source = nn.Parameter(torch.empty(out_channels))
        self.attend_target = nn.Parameter(torch.empty(out_channels))
        self.gate = nn.Linear(op_channels, out_channels)
        self.norm = nn.LayerNorm(out_channels)
        self.negative_slope = negative_slope
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform projection and attention vectors (GAT), default gate and LayerNorm."""
        nn.init.xavier_uniform_(self.project.weight)
        bound = (6.0 / (self.out_channels + 1)) ** 0.5
        nn.init.uniform_(self.attend_source, -bound, bound)
        nn.init.uniform_(self.attend_target, -bound, bound)
        self.gate.reset_parameters()
        self.norm.reset_parameters()

    def attention(self, projected: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """[B, N, N] weights: row ``i`` is a softmax over ``i``'s predecessors and ``i`` itself."""
        scores = (projected @ self.attend_target).unsqueeze(-1) + (projected @ self.attend_source).unsqueeze(-2)
        scores = nn.functional.leaky_relu(scores, self.negative_slope)
        eye = torch.eye(adj.shape[-1], dtype=torch.bool, device=adj.device)
        edges = (adj > 0) | eye
        return torch.softmax(scores.masked_fill(~edges, float("-inf")), dim=-1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        """Attend over neighbours, gate the message by the node's operation, normalise."""
        projected = self.project(x)
        message = torch.matmul(self.attention(projected, adj), projected)
        return self.norm(torch.sigmoid(self.gate(ops)) * message)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, op_channels={self.op_channels}"
