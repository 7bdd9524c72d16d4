"""A stack of directed GCN layers read out at the global node (BRP-NAS encoder).

Dudziak et al., "BRP-NAS", NeurIPS 2020: ``L`` layers of

.. math::
    H^{(l+1)} = \\mathrm{dropout}\\big(\\mathrm{ReLU}(A H^{(l)} W^{(l)} + b^{(l)})\\big),
    \\qquad z = H^{(L)}_{g}

where ``g`` is the global node, connected to every other node, so ``z``
summarises the whole graph. MultiPredict (Akhauri & Abdelfattah, AutoML 2023)
uses the same encoder with 3 layers of 200 units for NAS-Bench-201.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from trainer.models.layers.gcn import DirectedGraphConv


class GraphEncoder(nn.Module):
    """GCN layers with ReLU and dropout; returns the embedding of the global node.

    Args:
        in_channels: node feature size.
        hidden: output size of each GCN layer, e.g. ``[600] * 4``.
        dropout: dropout probability after each layer.

    Shapes: ``x`` [B, N, in_channels], ``adj`` [B, N, N], ``readout`` [B] (index
    of the global node in each graph) -> [B, hidden[-1]].

    Example:
        >>> enc = GraphEncoder(6, [8, 8])
        >>> x, adj = torch.ones(2, 3, 6), torch.ones(2, 3, 3)
        >>> enc(x, adj, torch.tensor([2, 2])).shape
        torch.Size([2, 8])
    """

    def __init__(self, in_channels: int, hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("GraphEncoder needs at least one layer size in `hidden`")
        sizes = [in_channels, *hidden]
        self.convs = nn.ModuleList(DirectedGraphConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.out_channels = sizes[-1]

    def reset_parameters(self) -> None:
        """Re-initialise every GCN layer."""
        for conv in self.convs:
            conv.reset_parameters()

    def node_states(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """[B, N, hidden[-1]]: the final state of every node."""
        for conv in self.convs:
            x = self.dropout(torch.relu(conv(x, adj)))
        return x

    def forward(self, x: torch.Tensor, adj: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
        """Embed each graph as the final state of its global node.

        Only the global node's row of the last layer is read, so that layer is
        computed for that row alone: ``(A_g H) W`` instead of ``A (H W)``.
        """
        rows = torch.arange(x.shape[0], device=x.device)
        for conv in self.convs[:-1]:
            x = self.dropout(torch.relu(conv(x, adj)))
        last = self.convs[-1]
        out = torch.matmul(torch.matmul(adj[rows, readout].unsqueeze(1), x).squeeze(1), last.weight)
        if last.bias is not None:
            out = out + last.bias
        return self.dropout(torch.relu(out))
