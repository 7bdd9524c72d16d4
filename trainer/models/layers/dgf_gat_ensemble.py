"""NASFLAT's GNN layer: the mean of a DGF layer and a gated GAT layer over the same inputs.

Akhauri & Abdelfattah, "On Latency Predictors for Neural Architecture Search",
MLSys 2024 (NASFLAT), Section 4 (the ensemble GNN module; its code's default
fusion, ``add``):

.. math::
    X' = \\tfrac12\\big(\\mathrm{DGF}(X, A, O) + \\mathrm{GAT}(X, A, O)\\big)

DGF (:mod:`trainer.models.layers.dgf`) passes the gated sum of the incoming
flow; GAT (:mod:`trainer.models.layers.gat`) weighs the predecessors by
attention. Both are gated by the same operation embedding ``O``.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.layers.dgf import DenseGraphFlow
from trainer.models.layers.gat import GatedGraphAttention


class DGFGATEnsemble(nn.Module):
    """``(DGF(x) + GAT(x)) / 2`` with the same sizes and operation gate input.

    Example:
        >>> layer = DGFGATEnsemble(6, 4, 3)
        >>> layer(torch.ones(2, 5, 6), torch.zeros(2, 5, 5), torch.zeros(2, 5, 3)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, op_channels: int) -> None:
        super().__init__()
        self.dgf = DenseGraphFlow(in_channels, out_channels, op_channels)
        self.gat = GatedGraphAttention(in_channels, out_channels, op_channels)
        self.out_channels = out_channels

    def reset_parameters(self) -> None:
        """Re-initialise both members."""
        self.dgf.reset_parameters()
        self.gat.reset_parameters()

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.dgf(x, adj, ops) + self.gat(x, adj, ops))
