"""zen: the Zen-score of Zen-NAS, expressivity of the Gaussian-initialised network.

Reference: Lin, Wang, Sun, Chen, Sun, Qian, Li & Jin, "Zen-NAS: A Zero-Shot
NAS for High-Performance Image Recognition", ICCV 2021.

Definition: re-initialise every conv and linear weight with N(0, 1) and
biases with 0, batch-norm scales with 1 and shifts with 0 (training-mode
batch norm). With ``f`` the feature map before global average pooling
(:class:`~farm.proxies.layers.capture_pre_pooling`), ``x`` the fixed batch,
``eps ~ N(0, 1)`` a second fixed draw and ``alpha = 0.01``,
``Delta = mean over the batch of ||f(x) - f(x + alpha * eps)||_F`` and
``zen = log(Delta) + sum over batch-norm layers i of log(sigma_i)``, where
``sigma_i = sqrt(mean over channels of the batch variance)`` of layer i's
input in the forward pass on ``x``. A batch-norm layer whose input is
identically zero (an op fed only by ``none`` edges) carries no signal and is
left out of the sum (its log would be minus infinity). The paper averages over repeated draws;
here one fixed draw (seed ``spec.seed + 1``) keeps it deterministic.
``Delta = 0`` (the output ignores the input) is
:class:`~farm.proxies.errors.ProxyUndefined`; all sums in float64.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> isinstance(score(tiny_context("conv")), float)
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from farm.proxies.context import ProxyContext
from farm.proxies.errors import ProxyUndefined, finite
from farm.proxies.layers import capture_pre_pooling, weight_layers

NAME = "zen"
VERSION = 1
#: The paper's mixing weight ``alpha``.
ALPHA = 0.01


def score(context: ProxyContext) -> float:
    """``log(Delta) + sum_i log(sigma_i)`` (see the module docstring)."""
    generator = torch.Generator().manual_seed(context.batch.spec.seed + 1)
    model = context.fresh_model().train()
    _gaussian_init(model, generator)
    inputs = context.batch.inputs
    noise = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype)
    variances: list[float] = []

    def keep_variance(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        variances.append(float(args[0].detach().var(dim=(0, 2, 3), unbiased=False).double().mean()))

    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad(), capture_pre_pooling(model) as features:
        handles = [module.register_forward_pre_hook(keep_variance) for module in norms]
        try:
            model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        clean = features.features
        model(inputs + ALPHA * noise)
        mixed = features.features
    if clean is None or mixed is None:
        raise ProxyUndefined(f"{NAME}: the network produced no feature map larger than 1x1 before pooling")
    delta = float((clean.double() - mixed.double()).flatten(1).norm(dim=1).mean())
    if not delta > 0:
        raise ProxyUndefined(f"{NAME}: the features do not change with the input (Delta = {delta})")
    scales = sum(0.5 * math.log(variance) for variance in variances if variance > 0)
    return finite(math.log(delta) + scales, NAME)


def _gaussian_init(model: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's initialisation: N(0, 1) weights, zero biases, unit BN scales, zero BN shifts."""
    with torch.no_grad():
        for layer in weight_layers(model):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.zero_()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()
