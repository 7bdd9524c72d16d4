"""The Pearson correlation matrix of the rows of a matrix, as jacov and epe_nas need it.

Computed in float64 from centred, normalised rows and clipped to [-1, 1]. A
row without variance (a constant input Jacobian) has no correlation, which
makes the proxy undefined for that arch: :class:`~farm.proxies.errors.ProxyUndefined`.

Example:
    >>> import numpy as np
    >>> row_correlation(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])).round(6).tolist()
    [[1.0, -1.0], [-1.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from farm.proxies.errors import ProxyUndefined

__all__ = ["row_correlation"]


def row_correlation(matrix: np.ndarray, proxy: str = "correlation") -> np.ndarray:
    """Pearson correlation of the rows of ``matrix`` (float64 ``[n, n]``); :class:`ProxyUndefined` for a constant row."""
    rows = np.asarray(matrix, dtype=np.float64)
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    if not np.all(norms > 0):
        constant = int(np.sum(~(norms > 0)))
        raise ProxyUndefined(f"{proxy}: {constant} of {len(norms)} input Jacobians are constant; no correlation")
    unit = centred / norms[:, None]
    return np.clip(unit @ unit.T, -1.0, 1.0)
