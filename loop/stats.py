"""Spearman's rho with a bootstrap confidence interval: how every rank correlation in ``loop`` is reported.

A rank correlation on 20 or 100 archs is itself a measurement; it is given
with a percentile bootstrap interval (pairs resampled with replacement,
seeded, so a report is reproducible).

Example:
    >>> estimate = spearman_with_interval([1, 2, 3, 4, 5, 6], [1.1, 2.3, 2.9, 4.2, 5.5, 5.9])
    >>> estimate.rho, estimate.n
    (1.0, 6)
    >>> estimate.low <= estimate.rho <= estimate.high
    True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

#: Bootstrap resamples per interval: enough for a stable 95% percentile interval, ~10 ms for n = 100.
RESAMPLES = 2000


@dataclass(frozen=True)
class SpearmanEstimate:
    """Spearman's rho of ``n`` pairs with its ``level`` bootstrap interval [low, high]."""

    rho: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.rho:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def spearman_with_interval(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> SpearmanEstimate:
    """Spearman's rho of ``a`` against ``b`` and its percentile bootstrap interval.

    Fewer than 3 pairs give NaN throughout (a rank correlation of two points says nothing).
    """
    x = np.asarray(a, dtype="float64")
    y = np.asarray(b, dtype="float64")
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two equal-length vectors, got shapes {x.shape} and {y.shape}")
    n = int(x.size)
    if n < 3:
        return SpearmanEstimate(math.nan, math.nan, math.nan, n, level)
    rho = _rowwise_spearman(x[None, :], y[None, :])[0]
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    boot = _rowwise_spearman(x[picks], y[picks])
    boot = boot[np.isfinite(boot)]
    tail = (1 - level) / 2
    low, high = (np.quantile(boot, [tail, 1 - tail]) if boot.size else (math.nan, math.nan))
    return SpearmanEstimate(float(rho), float(low), float(high), n, level)


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``x`` with the same row of ``y`` (ties get average ranks)."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return (rx * ry).sum(axis=1) / np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))


__all__ = ["RESAMPLES", "SpearmanEstimate", "spearman_with_interval"]
