"""flops: multiply-accumulates of one forward pass for one input of the spec's resolution.

Reference: a baseline proxy of Abdelfattah et al., "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021, and of NAS-Bench-Suite-Zero.

Definition: ``flops = sum over conv and linear layer calls of
out_elements * (in_channels / groups) * k_h * k_w`` (``in_features`` for a
linear layer), per input, as :mod:`farm.spaces.counting` counts them (the
MACs NAS papers call FLOPs). It is counted at the input spec's resolution
(one zero input in evaluation mode), so for NB201 at 16x16 it is about a
quarter of the 32x32 figure.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("conv"))  # conv: 4*4 positions x 8 channels x 27; linear: 8 x 2
    3472.0
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.spaces.counting import count_macs

NAME = "flops"
VERSION = 1


def score(context: ProxyContext) -> float:
    """MACs per input of ``context.model`` at the batch's resolution."""
    shape = (1, *context.batch.inputs.shape[1:])
    return float(count_macs(context.fresh_model().eval(), shape))
