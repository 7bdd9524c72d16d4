"""Layer-wise lookup table: per-op latencies by non-negative least squares, one scale factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farm import spaces
from trainer.evaluate import Metrics, clone
from trainer.models.layerwise import LayerwiseTable, layer_counts

SPACE = "nasbench201"
# none, skip, conv1x1, conv3x3, avgpool: a made-up device.
TABLE_MS = np.array([0.01, 0.02, 0.5, 1.2, 0.3])
FIXED_MS = 1.0


@pytest.fixture(scope="module")
def archs() -> list[str]:
    return spaces.get(SPACE).sample(200, seed=5)


def test_nb201_keys_are_op_counts(archs):
    counts = layer_counts(SPACE, archs)
    assert counts.shape == (200, 5) and (counts.sum(axis=1) == 6).all()


def test_recovers_an_additive_device(archs):
    latency = pd.Series(FIXED_MS + layer_counts(SPACE, archs) @ TABLE_MS, index=archs)
    predictor = LayerwiseTable(SPACE, ridge=1e-8)
    predictor.transfer("dev", latency.iloc[:20])
    fitted = predictor.parameters["dev"]
    table = np.asarray(fitted["table_ms"]) * fitted["scale"]
    # Every NB201 cell has 6 ops, so only the differences between ops are identifiable.
    np.testing.assert_allclose(table - table[0], TABLE_MS - TABLE_MS[0], atol=1e-4)
    np.testing.assert_allclose(predictor.predict(archs[20:], "dev"), latency.iloc[20:].to_numpy(), rtol=1e-4)


def test_ridge_shrinkage_is_undone_by_the_scale_factor(archs):
    latency = pd.Series(FIXED_MS + layer_counts(SPACE, archs) @ TABLE_MS, index=archs)
    predictor = LayerwiseTable(SPACE, ridge=1.0)
    predictor.transfer("dev", latency.iloc[:20])
    assert predictor.parameters["dev"]["scale"] > 1.0  # heavy ridge shrinks the table; the scale restores it
    predicted = predictor.predict(archs[20:], "dev")
    assert Metrics.compute(predicted, latency.iloc[20:].to_numpy()).spearman > 0.95
    assert all(v >= 0 for v in predictor.parameters["dev"]["table_ms"])


def test_state_round_trip_predicts_identically(archs, store_dir):
    from trainer.data import load_table

    table = load_table(store_dir, SPACE)
    predictor = LayerwiseTable(SPACE)
    predictor.transfer("pixel2", table.series("pixel2"))
    archs = table.archs()
    np.testing.assert_array_equal(clone(predictor).predict(archs, "pixel2"), predictor.predict(archs, "pixel2"))
