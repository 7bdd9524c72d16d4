"""epe_nas: EPE-NAS, how differently the input Jacobians correlate within each class.

Reference: Lopes, Alirezazadeh & Alexandre, "EPE-NAS: Efficient Performance
Estimation Without Training for Neural Architecture Search", ICANN 2021.

Definition: with ``J_n`` the input Jacobian of each sample (as for jacov),
``Sigma_c`` the correlation matrix of the Jacobians of the samples of class
``c`` and ``k = 1e-5``, each class gets
``E_c = sum_{i,j} log(|Sigma_c[i, j]| + k)``, and for ``C <= 100`` classes
``epe_nas = sum_{t,j} |E_t - E_j| / C`` (the paper's formula for more than
100 classes, ``E_c`` averaged per row, is not needed: the batch never holds
more than 100 labels). Classes are the batch's labels
(:class:`~farm.proxies.inputs.InputSpec`: ``label_classes`` classes with the
same number of samples each, at least two); all in float64. Reads the shared
gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("conv", batch_size=8)) >= 0
    True
"""

from __future__ import annotations

import numpy as np

from farm.proxies.context import ProxyContext
from farm.proxies.errors import ProxyUndefined, finite
from farm.proxies.correlation import row_correlation

NAME = "epe_nas"
VERSION = 1
#: The paper's stabiliser ``k``.
EPSILON = 1e-5


def score(context: ProxyContext) -> float:
    """``sum_{t,j} |E_t - E_j| / C`` over the batch's classes."""
    jacobian = context.gradients().jacobian
    labels = context.batch.labels.numpy()
    energies = []
    for label in np.unique(labels):
        rows = jacobian[labels == label]
        if len(rows) >= 2:
            energies.append(float(np.log(np.abs(row_correlation(rows, NAME)) + EPSILON).sum()))
    if not energies:
        raise ProxyUndefined(f"{NAME}: no class of the batch has two samples; use a spec with label_classes <= batch/2")
    values = np.array(energies)
    return finite(float(np.abs(values[:, None] - values[None, :]).sum()) / len(values), NAME)
