"""params: the number of parameters of the network.

Reference: one of the baseline proxies of Abdelfattah et al., "Zero-Cost
Proxies for Lightweight NAS", ICLR 2021, and of NAS-Bench-Suite-Zero
(Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks).

Definition: ``params = sum over parameter tensors theta of |theta|`` (element
counts; batch-norm scales and shifts included), i.e. ``farm.spaces``'
``params(arch)``. Needs no input.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("linear"))  # 108 inputs x 2 outputs + 2 biases
    218.0
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext

NAME = "params"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Parameter count of ``context.model`` (as a float, the encodings table's type)."""
    return float(sum(parameter.numel() for parameter in context.model.parameters()))
