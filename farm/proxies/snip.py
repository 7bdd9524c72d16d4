"""snip: the summed connection sensitivity |gradient times weight|.

Reference: Lee, Ajanthan & Torr, "SNIP: Single-shot Network Pruning based on
Connection Sensitivity", ICLR 2019; as a NAS proxy, Abdelfattah et al. 2021.

Definition: ``snip = sum over conv and linear weights theta of
|dL/dtheta * theta|``, with ``L`` the cross-entropy on the fixed batch
(training-mode batch norm), summed in float64. Reads the shared gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("mlp")) > 0
    True
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite
from farm.proxies.gradients import sum_of_products

NAME = "snip"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of |gradient times weight| over every conv and linear weight."""
    result = context.gradients()
    return finite(sum_of_products(result.grads, result.weights, absolute=True), NAME)
