"""plain: the summed first-order saliency, gradient times weight, without absolute value.

Reference: Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021 (the "plain" saliency, after Mozer & Smolensky 1989).

Definition: ``plain = sum over conv and linear weights theta of
(dL/dtheta) * theta``, with ``L`` the cross-entropy on the fixed batch
(training-mode batch norm), summed in float64. Reads the shared gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> isinstance(score(tiny_context("mlp")), float)
    True
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite
from farm.proxies.gradients import sum_of_products

NAME = "plain"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of gradient times weight over every conv and linear weight."""
    result = context.gradients()
    return finite(sum_of_products(result.grads, result.weights), NAME)
