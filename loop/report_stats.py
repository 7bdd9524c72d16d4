"""Spearman's rho with its 95% confidence interval, the one statistic every report figure quotes.

The interval is :func:`trainer.holdout.spearman_interval` (Fisher's z with the
Bonett & Wright variance, the one the registry's held-out scores use); it needs
at least 4 pairs.

Example:
    >>> c = spearman([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5])
    >>> round(c.rho, 3), c.n, c.low < c.rho < c.high
    (0.886, 6, True)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

from trainer.holdout import spearman_interval


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho over ``n`` pairs and its 95% interval (NaN where it cannot be computed)."""

    rho: float
    n: int
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": finite(self.rho), "n": self.n, "ci95": [finite(self.low), finite(self.high)]}

    def label(self) -> str:
        """``0.953 [0.941, 0.963], n=120`` for titles (four decimals at 0.995 and above, so 1.000 means 1).

        Example:
            >>> Correlation(0.9996, 1581, 0.9994, 0.9997).label()
            '0.9996 [0.9994, 0.9997], n=1581'
        """
        if math.isnan(self.rho):
            return f"n/a (n={self.n})"
        digits = 4 if abs(self.rho) >= 0.995 else 3
        interval = f" [{self.low:.{digits}f}, {self.high:.{digits}f}]" if not math.isnan(self.low) else ""
        return f"{self.rho:.{digits}f}{interval}, n={self.n}"


def interval(rho: float, n: int) -> tuple[float, float]:
    """95% interval of a Spearman ``rho`` over ``n`` pairs (NaN for n < 4 or NaN rho)."""
    if n < 4 or math.isnan(rho):
        return math.nan, math.nan
    return spearman_interval(rho, n)


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> Correlation:
    """Spearman's rho of two equal-length vectors, with its interval; rho is NaN for constant input."""
    a = np.asarray(x, dtype="float64")
    b = np.asarray(y, dtype="float64")
    if a.shape != b.shape:
        raise ValueError(f"spearman: vectors of different lengths {a.shape} and {b.shape}")
    if a.size < 2:
        return Correlation(math.nan, int(a.size), math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = float(stats.spearmanr(a, b).statistic)
    return Correlation(rho, int(a.size), *interval(rho, int(a.size)))


def finite(value: float) -> float | None:
    """``value`` for JSON: None where it is NaN."""
    return None if math.isnan(value) else float(value)


__all__ = ["Correlation", "finite", "interval", "spearman"]
