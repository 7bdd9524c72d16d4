"""Ridge regression of a log latency on log-latency features, its penalty chosen by leave-one-out.

The closed-form pieces of :mod:`trainer.models.stack`: a target's log latency as
a linear function of a few standardised feature columns (each the log latency
some other model predicts for the same archs),

.. math::
    \\log \\hat y = b + \\sum_j w_j \\, \\frac{x_j - \\mu_j}{\\sigma_j}, \\qquad
    w = \\arg\\min \\lVert y_c - X_s w \\rVert^2 + \\lambda \\lVert w \\rVert^2

with the intercept ``b = mean(log y)`` unpenalised and ``lambda`` picked from a
grid by the exact leave-one-out error of ridge, ``e_i = r_i / (1 - H_ii)`` with
``H = 1/n + X_s (X_s^T X_s + lambda I)^{-1} X_s^T``. Parameters are plain floats,
so a fitted model lives in a predictor's JSON config.

Example:
    >>> import numpy as np
    >>> x = np.log(np.array([[1.0, 3.0], [2.0, 1.0], [4.0, 2.0], [8.0, 5.0]]))
    >>> fitted = fit_log_ridge(x, 2 * x[:, 0] + 0.5, ridges=(1e-6,))
    >>> np.allclose(apply_log_ridge(fitted, x), 2 * x[:, 0] + 0.5, atol=1e-4)
    True
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

#: Penalties tried by leave-one-out when none is fixed.
RIDGE_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_log_ridge(features: np.ndarray, target: np.ndarray, ridges: Sequence[float] = RIDGE_GRID) -> dict[str, Any]:
    """Fit ``target`` (log latency, ``[n]``) on ``features`` (``[n, p]``); the penalty with least LOO error wins.

    Constant columns get weight 0. Returns JSON-serialisable parameters for :func:`apply_log_ridge`.
    """
    x = np.asarray(features, dtype="float64")
    y = np.asarray(target, dtype="float64")
    if x.ndim != 2 or len(x) != len(y) or len(y) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"fit_log_ridge: need finite [n, p] features and [n] targets with n >= 2, got {x.shape} and {y.shape}")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    usable = scale > 1e-12
    standardised = np.where(usable, (x - mean) / np.where(usable, scale, 1.0), 0.0)
    intercept = float(y.mean())
    centred = y - intercept
    u, singular, vt = np.linalg.svd(standardised, full_matrices=False)
    projected = u.T @ centred
    best: tuple[float, float, np.ndarray] | None = None
    for ridge in ridges:
        shrink = singular / (singular**2 + ridge)
        weights = vt.T @ (shrink * projected)
        leverage = 1.0 / len(y) + ((u * (singular * shrink)) * u).sum(axis=1)
        residual = (centred - standardised @ weights) / np.maximum(1.0 - leverage, 1e-9)
        error = float(np.mean(residual**2))
        if best is None or error < best[0] - 1e-15:
            best = (error, float(ridge), weights)
    assert best is not None
    return {
        "mean": mean.tolist(), "scale": np.where(usable, scale, 0.0).tolist(), "weights": best[2].tolist(),
        "intercept": intercept, "ridge": best[1], "loo_mse": best[0],
    }


def apply_log_ridge(parameters: Mapping[str, Any], features: np.ndarray) -> np.ndarray:
    """Predicted log latency ``[n]`` of feature rows ``[n, p]`` under :func:`fit_log_ridge` parameters."""
    x = np.asarray(features, dtype="float64")
    mean, scale = np.asarray(parameters["mean"]), np.asarray(parameters["scale"])
    usable = scale > 0
    standardised = np.where(usable, (x - mean) / np.where(usable, scale, 1.0), 0.0)
    return standardised @ np.asarray(parameters["weights"]) + float(parameters["intercept"])
