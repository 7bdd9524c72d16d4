"""grad_norm: the summed L2 norms of the loss gradients of the weights.

Reference: Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021 (Section 3, "grad_norm").

Definition: with ``L`` the cross-entropy of the network on the fixed batch
(training-mode batch norm), ``grad_norm = sum over conv and linear layers l
of ||dL/dW_l||_2`` (Frobenius norm), in float64. Reads the shared gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("linear")) > 0
    True
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite

NAME = "grad_norm"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum over weight layers of the norm of the loss gradient."""
    grads = context.gradients().grads
    return finite(sum(float(grad.double().norm()) for grad in grads), NAME)
