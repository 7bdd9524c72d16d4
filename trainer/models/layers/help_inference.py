"""HELP's inference network: a device's hardware embedding -> a distribution over header modulations.

Lee, Lee, Chong, Hwang, "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021, Section 3.3. From the hardware embedding ``h`` (the device's
latencies on the reference archs) it infers

.. math::
    q(z \\mid h) = \\mathcal{N}\\big(\\mu(h), \\mathrm{softplus}(\\sigma(h))\\big), \\qquad
    \\mu, \\sigma = W_2\\,\\mathrm{ReLU}(W_1 h + b_1) + b_2

and ``z`` modulates the header's initial parameters before the inner loop: each layer's weight
columns are scaled by ``1 + s z_w`` and its bias shifted by ``s z_b`` (``s`` = ``z_scaling``).
The KL divergence to a standard normal regularises ``q``.

Example:
    >>> net = HardwareInference(10, [200, 200, 200])
    >>> z, kl = net(torch.rand(10), sample=False)
    >>> [w.shape[0] for w in z.weight_scales], z.bias_shifts.shape, kl.ndim
    ([200, 200, 200], torch.Size([3]), 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class Modulation:
    """One draw of ``z``: per-input-unit weight scales of each header layer, one bias shift per layer."""

    weight_scales: list[torch.Tensor]
    bias_shifts: torch.Tensor


class HardwareInference(nn.Module):
    """MLP ``h -> (mu, sigma)`` of a diagonal Gaussian over the header modulation.

    Args:
        embedding_dim: length of the hardware embedding (10 reference latencies).
        header_inputs: input size of each modulated header layer (HELP: 200, 200, 200).
        hidden: width of the hidden layer (HELP's code: 10).
    """

    def __init__(self, embedding_dim: int, header_inputs: Sequence[int], hidden: int = 10) -> None:
        super().__init__()
        self.header_inputs = list(header_inputs)
        self.size = sum(self.header_inputs) + len(self.header_inputs)
        self.net = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * self.size))

    def reset_parameters(self) -> None:
        """Re-initialise both linear layers."""
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, embedding: torch.Tensor, *, sample: bool = True) -> tuple[Modulation, torch.Tensor]:
        """A draw of ``z`` (the mean when ``sample`` is False) and ``KL(q(z|h) || N(0, I))``."""
        stats = self.net(embedding.reshape(-1))
        mean, spread = stats[: self.size], nn.functional.softplus(stats[self.size:]) + 1e-6
        posterior = torch.distributions.Normal(mean, spread)
        prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(spread))
        kl = torch.distributions.kl_divergence(posterior, prior).sum()
        z = posterior.rsample() if sample else mean
        weights, biases = z[: sum(self.header_inputs)], z[sum(self.header_inputs):]
        return Modulation(list(torch.split(weights, self.header_inputs)), biases), kl
