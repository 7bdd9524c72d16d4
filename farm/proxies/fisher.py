"""fisher: the summed Fisher-information channel saliency of the activations.

References: Theis et al., "Faster gaze prediction with dense networks and
Fisher pruning", 2018; Turner et al., "BlockSwap: Fisher-guided Block
Substitution for Network Compression on a Budget", ICLR 2020; as a NAS
proxy, Abdelfattah et al. 2021.

Definition: for the output ``z`` of every conv and linear layer and each of
its channels ``c``, ``Delta_c = 1/2 * mean over the batch n of
(sum over spatial positions of z_nc * dL/dz_nc)^2``, with ``L`` the
cross-entropy on the fixed batch (training-mode batch norm);
``fisher = sum over layers and channels of Delta_c``, in float64. Reads the
shared gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("conv")) >= 0
    True
"""

from __future__ import annotations

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite

NAME = "fisher"
VERSION = 1


def score(context: ProxyContext) -> float:
    """Sum of the Fisher channel saliencies of every conv and linear layer's output."""
    return finite(sum(float(channels.sum()) for channels in context.gradients().fisher), NAME)
