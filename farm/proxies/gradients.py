"""The shared gradient pass: one forward on the fixed batch, then every gradient nine proxies read.

epe_nas, fisher, grad_norm, grasp, jacov, nwot, plain and snip all read this
one pass, so asking for all of them costs one forward and three backward
passes, and each value is the same whether it is computed alone or with the
others. The network runs in training mode (batch-norm uses the batch's
statistics, as in the zero-cost proxy papers) on the input ``x`` of the batch:

1. ``jacobian[n] = d(sum_k f(x)_nk) / dx_n``: the input Jacobian of each
   sample (one backward of the summed outputs; Mellor et al. 2021), float64
   ``[B, 3*R*R]``; ``codes``: for every unit of every rectifier activation,
   whether its output is positive (bool ``[B, units]``);
2. with ``L`` the cross-entropy of the logits and the batch's labels, for
   each weight layer (:func:`farm.proxies.layers.weight_layers`): its weight
   ``W``, ``dL/dW``, and the per-channel Fisher saliency
   ``0.5 * mean_n (sum_spatial z * dL/dz)^2`` of its output ``z`` (Theis et
   al. 2018; Turner et al. 2020); this backward keeps its graph, so that
3. ``hessian_grads = H g``, the Hessian of ``L`` times ``g = dL/dW``, is the
   gradient of ``g . stop_gradient(g)`` (GraSP; Wang et al. 2020). PyTorch
   has no second derivative for some activations (OFA's hard-sigmoid); then
   ``hessian_grads`` is ``None`` and ``hessian_error`` says why, and only
   grasp fails.

Every tensor kept is a copy (the context resets the network in place).

Example:
    >>> from torch import nn
    >>> from farm.proxies.inputs import InputSpec
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> result = gradient_pass(net, InputSpec(4, 8, 2, 2).make_batch())
    >>> len(result.weights), tuple(result.fisher[0].shape), result.jacobian.shape, result.codes.shape
    (2, (4,), (4, 192), (4, 144))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from farm.proxies.inputs import ProxyBatch
from farm.proxies.layers import activation_modules, weight_layers

__all__ = ["GradientPass", "gradient_pass", "sum_of_products"]


@dataclass(frozen=True)
class GradientPass:
    """What the pass leaves (see the module docstring); tensors per weight layer, detached copies on CPU."""

    weights: list[torch.Tensor]
    grads: list[torch.Tensor]
    fisher: list[torch.Tensor]
    hessian_grads: list[torch.Tensor] | None
    jacobian: np.ndarray
    codes: np.ndarray
    hessian_error: str | None = None


def gradient_pass(model: nn.Module, batch: ProxyBatch) -> GradientPass:
    """Run ``model`` (modified: train mode, gradients, hooks removed after) on ``batch``."""
    layers = weight_layers(model)
    outputs: list[list[torch.Tensor]] = [[] for _ in layers]
    codes: list[torch.Tensor] = []

    def keep_output(index: int):  # type: ignore[no-untyped-def]
        def hook(_layer: nn.Module, _inputs: tuple[object, ...], output: torch.Tensor) -> torch.Tensor:
            outputs[index].append(output)
            # the network continues on a copy, so an in-place activation (OFA's h-swish) cannot overwrite z
            return output.clone()

        return hook

    def keep_code(_module: nn.Module, _inputs: tuple[object, ...], output: torch.Tensor) -> None:
        codes.append((output.detach() > 0).flatten(1))

    handles = [layer.register_forward_hook(keep_output(i)) for i, layer in enumerate(layers)]
    handles += [module.register_forward_hook(keep_code) for module in activation_modules(model)]
    try:
        model.train()
        inputs = batch.inputs.clone().requires_grad_(True)
        logits = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    (input_grad,) = torch.autograd.grad(logits.sum(), inputs, retain_graph=True)
    weights = [layer.weight for layer in layers]
    produced = [z for per_layer in outputs for z in per_layer]
    loss = F.cross_entropy(logits, batch.labels)
    gradients = torch.autograd.grad(loss, [*weights, *produced], create_graph=True, allow_unused=True)
    weight_grads = [_or_zeros(g, w) for g, w in zip(gradients[: len(weights)], weights)]
    output_grads = iter(gradients[len(weights):])
    fisher = []
    for per_layer, weight in zip(outputs, weights):
        saliency = torch.zeros(weight.shape[0], dtype=torch.float64)
        for z in per_layer:
            saliency = saliency + _channel_fisher(z, _or_zeros(next(output_grads), z))
        fisher.append(saliency)
    preserved = sum((g * g.detach()).sum() for g in weight_grads if g.requires_grad)
    hessian_grads: list[torch.Tensor] | None = [torch.zeros_like(w) for w in weights]
    hessian_error = None
    if isinstance(preserved, torch.Tensor):
        try:
            second = torch.autograd.grad(preserved, weights, allow_unused=True)
        except RuntimeError as error:  # e.g. "derivative for aten::hardsigmoid_backward is not implemented"
            hessian_grads, hessian_error = None, " ".join(str(error).split())
        else:
            hessian_grads = [_or_zeros(h, w).detach().clone() for h, w in zip(second, weights)]
    units = torch.cat(codes, dim=1).numpy() if codes else np.zeros((batch.spec.batch_size, 0), dtype=bool)
    return GradientPass(
        weights=[w.detach().clone() for w in weights],
        grads=[g.detach().clone() for g in weight_grads],
        fisher=fisher,
        hessian_grads=hessian_grads,
        jacobian=input_grad.detach().double().flatten(1).numpy().copy(),
        codes=units,
        hessian_error=hessian_error,
    )


def sum_of_products(lefts: list[torch.Tensor], rights: list[torch.Tensor], *, absolute: bool = False) -> float:
    """``sum over layers of sum(left * right)`` (of ``|left * right|`` with ``absolute``), in float64.

    Example:
        >>> sum_of_products([torch.tensor([1.0, -2.0])], [torch.tensor([3.0, 1.0])], absolute=True)
        5.0
    """
    total = 0.0
    for left, right in zip(lefts, rights, strict=True):
        product = left.double() * right.double()
        total += float((product.abs() if absolute else product).sum())
    return total


def _or_zeros(gradient: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return gradient if gradient is not None else torch.zeros_like(like)


def _channel_fisher(output: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """``0.5 * mean over the batch of (sum over positions of z * dL/dz)^2`` per channel, float64."""
    product = output.detach().double() * gradient.detach().double()
    per_sample = product.sum(dim=tuple(range(2, product.dim()))) if product.dim() > 2 else product
    return 0.5 * per_sample.pow(2).mean(dim=0)
