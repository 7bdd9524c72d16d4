"""farm.intervals: the burst-bootstrap interval of a quantile and the trimmed-mean interval, on synthetic samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from farm.intervals import CI_LEVEL, quantile_interval, relative_half_width, trimmed_mean_interval

RUNS_PER_BURST = 10


def drifting_bursts(rng: np.random.Generator, bursts: int) -> np.ndarray:
    """Simulation of a shared CPU: each burst runs at its own speed (lognormal, 10%), runs inside it within 1%."""
    levels = 10.0 * np.exp(rng.normal(0.0, 0.1, bursts))
    return (levels[:, None] * (1.0 + rng.normal(0.0, 0.01, (bursts, RUNS_PER_BURST)))).ravel()


@pytest.fixture(scope="module")
def true_lower_decile() -> float:
    return float(np.quantile(drifting_bursts(np.random.default_rng(0), 200_000), 0.1))


def coverage_and_width(truth: float, bursts: int, seeds: int = 200) -> tuple[float, float]:
    hits, widths = [], []
    for seed in range(1, seeds + 1):
        samples = drifting_bursts(np.random.default_rng(seed), bursts)
        low, high = quantile_interval(samples, RUNS_PER_BURST, 0.1)
        hits.append(low <= truth <= high)
        widths.append(relative_half_width(low, high, float(np.quantile(samples, 0.1))))
    return float(np.mean(hits)), float(np.median(widths))


def test_quantile_interval_covers_the_true_lower_decile_at_about_the_nominal_rate(true_lower_decile: float) -> None:
    coverage, _ = coverage_and_width(true_lower_decile, bursts=20)
    assert abs(coverage - CI_LEVEL) <= 0.07, coverage


def test_quantile_interval_narrows_and_covers_better_with_more_bursts(true_lower_decile: float) -> None:
    few = coverage_and_width(true_lower_decile, bursts=5, seeds=120)
    many = coverage_and_width(true_lower_decile, bursts=20, seeds=120)
    assert many[1] < few[1]
    assert few[0] >= 0.65 and many[0] >= few[0] - 0.05  # few bursts: below nominal, documented in the README


def test_runs_treated_as_independent_would_be_far_too_narrow() -> None:
    samples = drifting_bursts(np.random.default_rng(3), 5)
    burst_low, burst_high = quantile_interval(samples, RUNS_PER_BURST, 0.1)
    run_low, run_high = quantile_interval(samples, 1, 0.1)
    assert (burst_high - burst_low) > 2 * (run_high - run_low)


def test_quantile_interval_is_deterministic_and_handles_partial_and_single_bursts() -> None:
    samples = drifting_bursts(np.random.default_rng(4), 5)
    assert quantile_interval(samples, RUNS_PER_BURST, 0.1) == quantile_interval(samples.copy(), RUNS_PER_BURST, 0.1)
    low, high = quantile_interval(samples[:-3], RUNS_PER_BURST, 0.1)
    assert low <= np.quantile(samples[:-3], 0.1) <= high
    assert all(math.isnan(v) for v in quantile_interval(samples[:10], RUNS_PER_BURST, 0.1))
    assert quantile_interval(np.full(50, 3.0), RUNS_PER_BURST, 0.1) == (3.0, 3.0)


def test_trimmed_mean_interval_matches_the_standard_error_and_covers_the_centre() -> None:
    hits, half_widths, means = [], [], []
    for seed in range(300):
        values = np.random.default_rng(seed).normal(10.0, 1.0, 50)
        low, high = trimmed_mean_interval(values, 0.1)
        hits.append(low <= 10.0 <= high)
        half_widths.append((high - low) / 2)
        means.append(float(np.mean(np.sort(values)[5:45])))
    assert abs(np.mean(hits) - CI_LEVEL) <= 0.05
    # the half-width is t * SE, and SE must match the spread of the trimmed mean over the seeds
    t = (np.median(half_widths)) / np.std(means, ddof=1)
    assert 1.45 <= t <= 1.9  # t(39) at 95% is 1.68


def test_trimmed_mean_interval_edge_cases() -> None:
    assert trimmed_mean_interval([5.0] * 10, 0.1) == (5.0, 5.0)
    assert all(math.isnan(v) for v in trimmed_mean_interval([5.0], 0.1))
    assert all(math.isnan(v) for v in trimmed_mean_interval([1.0, 2.0, 3.0], 0.34))  # no degree of freedom left
    low, high = trimmed_mean_interval([1.0, 2.0, 3.0, 4.0, 100.0], 0.2)  # the outlier is winsorized, not averaged
    assert high < 10.0


def test_relative_half_width() -> None:
    assert relative_half_width(9.0, 11.0, 10.0) == pytest.approx(0.1)
    assert math.isnan(relative_half_width(math.nan, 11.0, 10.0)) and math.isnan(relative_half_width(9.0, 11.0, 0.0))
