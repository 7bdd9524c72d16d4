"""nwot: the activation-pattern kernel score of "Neural Architecture Search without Training" (v2).

Reference: Mellor, Turner, Storkey & Crowley, "Neural Architecture Search
without Training", ICML 2021 (the score of the published version).

Definition: each sample ``n`` of the fixed batch gets a binary code ``c_n``
over all ``N_A`` units of the network's rectifier activations (1 where the
unit's output is positive). With the Hamming distance ``d_H``, the kernel
``K_H[i, j] = N_A - d_H(c_i, c_j)`` (computed as ``c c^T + (1-c)(1-c)^T``)
and ``nwot = log |det K_H|``, via ``slogdet`` in float64 (the kernel's
entries are agreement counts, exact in float32 below 2^24 units, so the
products run in float32). A singular kernel
(two samples with the same code, e.g. an arch whose output ignores its
input) has no finite score: :class:`~farm.proxies.errors.ProxyUndefined`.
Reads the codes of the shared gradient pass (training-mode batch norm).

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("conv")) > 0
    True
"""

from __future__ import annotations

import numpy as np

from farm.proxies.context import ProxyContext
from farm.proxies.errors import ProxyUndefined, finite

NAME = "nwot"
VERSION = 1


def score(context: ProxyContext) -> float:
    """``log |det K_H|`` of the batch's activation codes."""
    codes = context.gradients().codes
    if codes.shape[1] == 0:
        raise ProxyUndefined(f"{NAME}: the network has no rectifier activations to read codes from")
    if codes.shape[1] >= 2**24:
        raise ProxyUndefined(f"{NAME}: {codes.shape[1]} units exceed float32's exact integers; use a smaller input")
    on = codes.astype(np.float32)
    off = 1.0 - on
    kernel = (on @ on.T + off @ off.T).astype(np.float64)
    sign, logdet = np.linalg.slogdet(kernel)
    if sign == 0:
        raise ProxyUndefined(f"{NAME}: the activation kernel is singular (samples share a code)")
    return finite(float(logdet), NAME)
