"""synflow: Synaptic Flow, the saliency of the linearised all-positive network on an all-ones input.

Reference: Tanaka, Kunin, Yamins & Ganguli, "Pruning neural networks without
any data by iteratively conserving synaptic flow", NeurIPS 2020; as a NAS
proxy, Abdelfattah et al. 2021.

Definition: replace every parameter and buffer by its absolute value,
evaluate the network on a single all-ones input ``1`` and let
``R = 1^T f(1)`` (the sum of the outputs); then ``synflow = sum over conv and
linear weights theta of theta * dR/dtheta``, all in float64 (the products
of many positive weights overflow float32).

Batch norm runs in evaluation mode: at initialisation its running mean is 0
and variance 1, so with absolute-valued scales it is the identity up to
``1/sqrt(1 + eps)``, the "no batch norm" network the zero-cost proxy papers
score (batch statistics of one constant input would be degenerate).

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("mlp")) > 0
    True
"""

from __future__ import annotations

import torch

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite
from farm.proxies.layers import weight_layers

NAME = "synflow"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of ``theta * dR/dtheta`` over every conv and linear weight of the linearised network."""
    model = context.fresh_model().double().eval()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.abs_()
    ones = torch.ones((1, *context.batch.inputs.shape[1:]), dtype=torch.float64)
    model.zero_grad(set_to_none=True)
    model(ones).sum().backward()
    total = 0.0
    for layer in weight_layers(model):
        if layer.weight.grad is not None:
            total += float((layer.weight.detach() * layer.weight.grad).sum())
    return finite(total, NAME, "the linearised network's output overflows float64")
