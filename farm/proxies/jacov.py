"""jacov: the Jacobian covariance score of "Neural Architecture Search without Training" (v1).

Reference: Mellor, Turner, Storkey & Crowley, "Neural Architecture Search
without Training", ICML 2021 (the score of the paper's first version,
arXiv:2006.04647v1).

Definition: with ``J_n = d(sum_k f(x_n)_k)/dx_n`` the input Jacobian of each
sample of the fixed batch (training-mode batch norm), ``Sigma_J`` the
correlation matrix of the ``J_n`` and ``lambda_1..lambda_B`` its eigenvalues,
``jacov = -sum_i [log(lambda_i + k) + 1 / (lambda_i + k)]`` with
``k = 1e-5``, in float64. Eigenvalues below zero are round-off (a
correlation matrix is positive semi-definite) and are taken as 0. A constant
Jacobian (an arch whose output does not depend on its input) has no
correlation: :class:`~farm.proxies.errors.ProxyUndefined`. Reads the shared
gradient pass.

Example:
    >>> from farm.proxies.examples import tiny_context
    >>> score(tiny_context("conv")) < 0
    True
"""

from __future__ import annotations

import numpy as np

from farm.proxies.context import ProxyContext
from farm.proxies.errors import finite
from farm.proxies.correlation import row_correlation

NAME = "jacov"
VERSION = 1
#: The paper's stabiliser ``k``.
EPSILON = 1e-5


def score(context: ProxyContext) -> float:
    """``-sum(log(lambda + k) + 1/(lambda + k))`` over the eigenvalues of the Jacobians' correlation matrix."""
    correlation = row_correlation(context.gradients().jacobian, NAME)
    eigenvalues = np.clip(np.linalg.eigvalsh(correlation), 0.0, None)
    return finite(-float(np.sum(np.log(eigenvalues + EPSILON) + 1.0 / (eigenvalues + EPSILON))), NAME)
