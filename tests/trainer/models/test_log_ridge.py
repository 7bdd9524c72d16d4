"""trainer.models.log_ridge: leave-one-out ridge on log-latency features."""

import json

import numpy as np
import pytest

from trainer.models.log_ridge import apply_log_ridge, fit_log_ridge


def test_recovers_a_noiseless_linear_map_with_the_smallest_penalty():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = x @ np.array([1.5, -0.5, 0.0]) + 2.0
    fitted = fit_log_ridge(x, y, ridges=(1e-8, 1.0, 100.0))
    assert fitted["ridge"] == 1e-8
    np.testing.assert_allclose(apply_log_ridge(json.loads(json.dumps(fitted)), x), y, atol=1e-6)


def test_pure_noise_features_choose_a_large_penalty_and_predict_near_the_mean():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=20)
    fitted = fit_log_ridge(x, y)
    assert fitted["ridge"] >= 10.0
    assert np.abs(apply_log_ridge(fitted, x) - y.mean()).max() < 0.5


def test_loo_error_matches_refitting_without_each_row():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 2))
    y = x[:, 0] + 0.3 * rng.normal(size=12)
    fitted = fit_log_ridge(x, y, ridges=(1.0,))
    # The closed form holds the standardisation fixed, so refit with the full data's, intercept unpenalised.
    mean, scale = x.mean(axis=0), x.std(axis=0)
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        z = (x[keep] - mean) / scale
        design = np.column_stack([np.ones(keep.sum()), z])
        penalty = np.diag([0.0, 1.0, 1.0])
        coef = np.linalg.solve(design.T @ design + penalty, design.T @ y[keep])
        errors.append((y[i] - np.r_[1.0, (x[i] - mean) / scale] @ coef) ** 2)
    assert fitted["loo_mse"] == pytest.approx(np.mean(errors), rel=1e-6)


def test_constant_columns_get_no_weight_and_bad_input_is_refused():
    x = np.column_stack([np.ones(5), np.arange(5.0)])
    fitted = fit_log_ridge(x, np.arange(5.0), ridges=(1e-6,))
    assert fitted["weights"][0] == 0.0 and fitted["scale"][0] == 0.0
    with pytest.raises(ValueError):
        fit_log_ridge(np.array([[np.nan], [1.0]]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        fit_log_ridge(np.ones((3, 1)), np.ones(2))


def test_nonnegative_weights_stay_nonnegative_and_match_the_free_fit_when_it_is_nonnegative():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 3))
    y = x @ np.array([1.0, 0.5, -0.7]) + 0.05 * rng.normal(size=25)
    constrained = fit_log_ridge(x, y, nonnegative=True)
    assert min(constrained["weights"]) >= 0.0 and constrained["weights"][2] == 0.0
    positive = x[:, :2] @ np.array([1.0, 0.5]) + 0.05 * rng.normal(size=25)
    free, nonneg = fit_log_ridge(x[:, :2], positive, ridges=(0.1,)), fit_log_ridge(x[:, :2], positive, ridges=(0.1,), nonnegative=True)
    np.testing.assert_allclose(nonneg["weights"], free["weights"], rtol=1e-8)
    assert nonneg["loo_mse"] == pytest.approx(free["loo_mse"], rel=1e-6)  # refitted LOO = the closed form
