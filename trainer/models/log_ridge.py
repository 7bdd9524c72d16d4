"""Ridge regression of a log latency on log-latency features, its penalty chosen by leave-one-out.

The closed-form pieces of :mod:`trainer.models.stack`: a target's log latency as
a linear function of a few standardised feature columns (each the log latency
some other model predicts for the same archs),

.. math::
    \\log \\hat y = b + \\sum_j w_j \\, \\frac{x_j - \\mu_j}{\\sigma_j}, \\qquad
    w = \\arg\\min \\lVert y_c - X_s w \\rVert^2 + \\lambda \\lVert w \\rVert^2

with the intercept ``b = mean(log y)`` unpenalised and ``lambda`` picked from a
grid by the exact leave-one-out error of ridge, ``e_i = r_i / (1 - H_ii)`` with
``H = 1/n + X_s (X_s^T X_s + lambda I)^{-1} X_s^T``. With ``nonnegative`` the
weights are constrained ``w >= 0`` (Breiman's stacked regressions: a target is
slower where the devices it resembles are slower, never faster), solved by
NNLS on the penalised system, and ``lambda`` by refitting without each sample.
Parameters are plain floats, so a fitted model lives in a predictor's JSON config.

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
from scipy.optimize import nnls

#: Penalties tried by leave-one-out when none is fixed.
RIDGE_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_log_ridge(
    features: np.ndarray, target: np.ndarray, ridges: Sequence[float] = RIDGE_GRID, nonnegative: bool = False,
) -> dict[str, Any]:
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
    errors = _nonnegative_loo_errors(standardised, y, ridges) if nonnegative else _loo_errors(standardised, y - intercept, ridges)
    best = int(np.argmin(np.round(errors, 15)))
    ridge = float(ridges[best])
    weights = _nonnegative_ridge(standardised, y - intercept, ridge) if nonnegative else _ridge(standardised, y - intercept, ridge)
    return {
        "mean": mean.tolist(), "scale": np.where(usable, scale, 0.0).tolist(), "weights": weights.tolist(),
        "intercept": intercept, "ridge": ridge, "loo_mse": float(errors[best]), "nonnegative": nonnegative,
    }


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)


def _nonnegative_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    p = x.shape[1]
    weights, _ = nnls(np.vstack([x, np.sqrt(ridge) * np.eye(p)]), np.concatenate([y, np.zeros(p)]))
    return weights


def _loo_errors(x: np.ndarray, centred: np.ndarray, ridges: Sequence[float]) -> np.ndarray:
    """Mean squared leave-one-out error of each penalty, in closed form from the hat matrix."""
    u, singular, vt = np.linalg.svd(x, full_matrices=False)
    projected = u.T @ centred
    errors = []
    for ridge in ridges:
        shrink = singular / (singular**2 + ridge)
        leverage = 1.0 / len(centred) + ((u * (singular * shrink)) * u).sum(axis=1)
        residual = (centred - x @ (vt.T @ (shrink * projected))) / np.maximum(1.0 - leverage, 1e-9)
        errors.append(float(np.mean(residual**2)))
    return np.asarray(errors)


def _nonnegative_loo_errors(x: np.ndarray, y: np.ndarray, ridges: Sequence[float]) -> np.ndarray:
    """Mean squared leave-one-out error of each penalty, by refitting without each sample (no closed form)."""
    errors = np.zeros(len(ridges))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        x_mean, y_mean = x[keep].mean(axis=0), y[keep].mean()
        for k, ridge in enumerate(ridges):
            weights = _nonnegative_ridge(x[keep] - x_mean, y[keep] - y_mean, ridge)
            errors[k] += (y[i] - y_mean - (x[i] - x_mean) @ weights) ** 2
    return errors / len(y)


def apply_log_ridge(parameters: Mapping[str, Any], features: np.ndarray) -> np.ndarray:
    """Predicted log latency ``[n]`` of feature rows ``[n, p]`` under :func:`fit_log_ridge` parameters."""
    x = np.asarray(features, dtype="float64")
    mean, scale = np.asarray(parameters["mean"]), np.asarray(parameters["scale"])
    usable = scale > 0
    standardised = np.where(usable, (x - mean) / np.where(usable, scale, 1.0), 0.0)
    return standardised @ np.asarray(parameters["weights"]) + float(parameters["intercept"])
