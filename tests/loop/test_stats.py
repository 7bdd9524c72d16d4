"""loop.stats: Spearman with a bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from loop.stats import spearman_with_interval


def test_rho_is_scipys_and_the_interval_brackets_it() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    y = x + rng.normal(scale=0.8, size=60)
    estimate = spearman_with_interval(x, y, seed=2)
    assert math.isclose(estimate.rho, stats.spearmanr(x, y).statistic, abs_tol=1e-12)
    assert estimate.low < estimate.rho < estimate.high and estimate.n == 60
    assert spearman_with_interval(x, y, seed=2) == estimate  # seeded: reproducible


def test_interval_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 400):
        x = rng.normal(size=n)
        estimate = spearman_with_interval(x, x + rng.normal(size=n))
        widths.append(estimate.high - estimate.low)
    assert widths[1] < widths[0] / 2


def test_fewer_than_three_pairs_give_nan() -> None:
    estimate = spearman_with_interval([1.0, 2.0], [2.0, 1.0])
    assert estimate.n == 2 and all(math.isnan(v) for v in (estimate.rho, estimate.low, estimate.high))
