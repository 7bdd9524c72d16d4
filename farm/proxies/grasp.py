"""grasp: the summed Gradient Signal Preservation saliency, -theta * (H g).

Reference: Wang, Zhang & Grosse, "Picking Winning Tickets Before Training by
Preserving Gradient Flow" (GraSP), ICLR 2020; as a NAS proxy, Abdelfattah et
al. 2021.

Definition: with ``L`` the cross-entropy on the fixed batch (training-mode
batch norm), ``g = dL/dtheta`` over the conv and linear weights and ``H`` the
Hessian of ``L`` in those weights, ``grasp = sum over weights theta of
-theta * (H g)``, in float64. ``H g`` is a Hessian-vector product, the
gradient of ``g . stop_gradient(g)``, taken in the shared gradient pass
(:mod:`farm.proxies.gradients`). A network whose activations PyTorch cannot
differentiate twice (OFA's hard-sigmoid) raises
:class:`~farm.proxies.errors.ProxyFailed` naming the operation.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> isinstance(score(tiny_context("mlp")), float)
    True
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import ProxyFailed, finite
from farm.proxies.gradients import sum_of_products

NAME = "grasp"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of ``-theta * (H g)`` over every conv and linear weight."""
    result = context.gradients()
    if result.hessian_grads is None:
        raise ProxyFailed(f"{NAME}: no Hessian-gradient product: {result.hessian_error}")
    return finite(-sum_of_products(result.weights, result.hessian_grads), NAME)
