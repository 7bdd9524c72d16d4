"""l2_norm: the summed L2 norms of the weights at initialisation.

Reference: a baseline proxy of NAS-Bench-Suite-Zero (Krishnakumar et al.,
NeurIPS 2022 Datasets and Benchmarks), after Abdelfattah et al. 2021.

Definition: ``l2_norm = sum over conv and linear layers l of ||W_l||_2``
(the Frobenius norm of the layer's weight tensor), in float64. Uses no input.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from farm.proxies.context import ProxyContext
    >>> from farm.proxies.inputs import InputSpec
    >>> layer = nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[3.0, 4.0]]))
    >>> score(ProxyContext(layer, InputSpec(2, 1, 2, 2).make_batch()))
    5.0
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite
from farm.proxies.layers import weight_layers

NAME = "l2_norm"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of the weight layers' Frobenius norms."""
    total = sum(float(layer.weight.detach().double().norm()) for layer in weight_layers(context.model))
    return finite(total, NAME)
