import numpy as np
import pytest

from trainer.models.target_scaler import TargetScaler


@pytest.mark.parametrize("kind", ["minmax", "zscore", "log_zscore"])
def test_roundtrip_and_json(kind):
    y = np.array([0.5, 2.0, 8.0, 3.0])
    scaler = TargetScaler.fit(y, kind)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(y)), y)
    assert TargetScaler.from_json(scaler.to_json()) == scaler


def test_kinds():
    y = np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(TargetScaler.fit(y, "minmax").transform(y), [0.0, 0.0909090909, 1.0])
    log = TargetScaler.fit(y, "log_zscore").transform(y)
    np.testing.assert_allclose(log, [-np.sqrt(1.5), 0.0, np.sqrt(1.5)])
    assert TargetScaler.fit(np.array([4.0, 4.0]), "zscore").scale == 1.0  # constant: no division by zero


def test_bad_input():
    with pytest.raises(ValueError, match="unknown scaler kind"):
        TargetScaler.fit(np.array([1.0]), "rank")
    with pytest.raises(ValueError, match="finite"):
        TargetScaler.fit(np.array([]), "zscore")
