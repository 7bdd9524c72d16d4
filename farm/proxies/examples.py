"""Tiny seeded networks in a :class:`~farm.proxies.context.ProxyContext`, for the proxies' examples and tests.

Example:
    >>> context = tiny_context("conv")
    >>> tuple(context.batch.inputs.shape), type(context.model[0]).__name__
    ((4, 3, 6, 6), 'Conv2d')
"""

from __future__ import annotations

import torch
from torch import nn

from farm.proxies.context import ProxyContext
from farm.proxies.inputs import InputSpec

__all__ = ["NETWORKS", "tiny_context"]

#: ``linear``: one linear layer; ``mlp``: linear-ReLU-linear; ``conv``: conv-BN-ReLU, pooling, linear.
NETWORKS: tuple[str, ...] = ("linear", "mlp", "conv")


def tiny_context(network: str = "conv", batch_size: int = 4, label_classes: int = 2, seed: int = 0) -> ProxyContext:
    """A context on the tiny ``network`` (see :data:`NETWORKS`), initialised from ``seed``, 2 classes, 6x6 inputs."""
    spec = InputSpec(batch_size=batch_size, resolution=6, num_classes=2, label_classes=label_classes, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if network == "linear":
            model: nn.Module = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2))
        elif network == "mlp":
            model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.ReLU(), nn.Linear(5, 2))
        elif network == "conv":
            model = nn.Sequential(
                nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)
            )
        else:
            raise ValueError(f"unknown tiny network {network!r}; known: {', '.join(NETWORKS)}")
    return ProxyContext(model, spec.make_batch())
