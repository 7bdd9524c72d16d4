"""FLOPs proxy: affine in MACs, least squares on the target samples only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farm import spaces
from farm.errors import UserError
from trainer import encodings
from trainer.evaluate import clone
from trainer.models.flops import FlopsProxy

SPACE = "nasbench201"


@pytest.fixture(scope="module")
def archs() -> list[str]:
    return spaces.get(SPACE).sample(60, seed=11)


def test_recovers_an_affine_function_of_macs(archs):
    macs = encodings.flops(SPACE, archs)
    latency = pd.Series(3e-6 * macs + 0.4, index=archs)
    predictor = FlopsProxy(SPACE)
    predictor.transfer("dev", latency.iloc[:10])
    assert predictor.parameters["dev"]["slope_ms_per_mmac"] == pytest.approx(3.0)
    assert predictor.parameters["dev"]["intercept_ms"] == pytest.approx(0.4)
    np.testing.assert_allclose(predictor.predict(archs[10:], "dev"), latency.iloc[10:].to_numpy(), rtol=1e-9)


def test_a_non_positive_slope_keeps_the_flops_ranking(archs):
    macs = encodings.flops(SPACE, archs[:10])
    predictor = FlopsProxy(SPACE)
    predictor.transfer("dev", pd.Series(10.0 - 1e-7 * macs, index=archs[:10]))  # anti-correlated samples
    predicted = predictor.predict(archs, "dev")
    assert predictor.parameters["dev"]["intercept_ms"] == 0.0
    assert (np.argsort(predicted, kind="stable") == np.argsort(encodings.flops(SPACE, archs), kind="stable")).all()


def test_state_round_trip_predicts_identically(archs):
    predictor = FlopsProxy(SPACE)
    predictor.pretrain({"a": pd.Series(np.linspace(1, 2, 10), index=archs[:10])})
    np.testing.assert_array_equal(clone(predictor).predict(archs, "a"), predictor.predict(archs, "a"))


def test_bad_use_is_a_user_error(archs):
    with pytest.raises(UserError, match="no hyper-parameter 'epochs'"):
        FlopsProxy(SPACE, epochs=3)
    predictor = FlopsProxy(SPACE)
    with pytest.raises(UserError, match="needs at least 2"):
        predictor.transfer("dev", pd.Series([1.0], index=archs[:1]))
    with pytest.raises(UserError, match="unknown to this flops predictor"):
        predictor.predict(archs, "dev")
