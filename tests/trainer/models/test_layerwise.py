"""Layer-wise lookup table: per-op latencies by non-negative least squares, one scale factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farm import spaces
from trainer.evaluate import Metrics, clone
from trainer.models.layerwise import LayerwiseTable, layer_features, op_macs

SPACE = "nasbench201"
# A made-up device: ms per occurrence of none, skip, avg_pool; ms per million MACs of conv1x1, conv3x3.
TABLE_MS = np.array([0.01, 0.02, 0.5, 1.2, 0.3])
FIXED_MS = 1.0


@pytest.fixture(scope="module")
def archs() -> list[str]:
    return spaces.get(SPACE).sample(200, seed=5)


def test_nb201_keys_are_op_types(archs):
    features = layer_features(SPACE, archs)
    assert features.shape == (200, 5)
    parsed = [spaces.get(SPACE).parse(a) for a in archs]
    # none, skip, avg_pool execute no MACs: counted; the convolutions: their MACs, proportional to their count.
    for column, op in ((0, "none"), (1, "skip_connect"), (4, "avg_pool_3x3")):
        assert features[:, column].tolist() == [p.count(op) for p in parsed]
    conv3 = np.array([p.count("nor_conv_3x3") for p in parsed])
    ratio = features[conv3 > 0, 3] / conv3[conv3 > 0]
    assert np.allclose(ratio, ratio[0]) and ratio[0] > 0


def test_fbnet_macs_table_reproduces_flops():
    space = spaces.get("fbnet")
    table = op_macs("fbnet")
    assert table.shape == (22, 9) and (table >= 0).all()
    a, b = space.sample(2, seed=9)
    from farm.spaces.fbnet import BLOCKS

    cost = lambda arch: sum(table[p, BLOCKS.index(op)] for p, op in enumerate(space.parse(arch)))  # noqa: E731
    assert cost(a) - cost(b) == pytest.approx(space.flops(a) - space.flops(b))
    assert op_macs("ofa") is None


def test_recovers_an_additive_device(archs):
    latency = pd.Series(FIXED_MS + layer_features(SPACE, archs) @ TABLE_MS, index=archs)
    predictor = LayerwiseTable(SPACE, ridge=1e-8)
    predictor.transfer("dev", latency.iloc[:20])
    np.testing.assert_allclose(predictor.predict(archs[20:], "dev"), latency.iloc[20:].to_numpy(), rtol=1e-4)


def test_ridge_shrinkage_is_undone_by_the_scale_factor(archs):
    latency = pd.Series(FIXED_MS + layer_features(SPACE, archs) @ TABLE_MS, index=archs)
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
