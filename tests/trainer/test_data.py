"""trainer.data: store -> per-target table, naming, errors, deterministic choices, scalers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farm.store import Store
from trainer.data import DataError, TargetTable, choose, fit_scalers, load_table, snapshot_hash, split

ARCH_A = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ARCH_B = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _row(device: str, arch: str, latency: float, runtime: str = "torch", batch: int = 1, status: str = "ok") -> dict:
    return {
        "campaign_id": "c", "measured_at": pd.Timestamp("2026-01-01", tz="UTC"), "source": "farm", "device": device,
        "device_kind": "cpu", "runtime": runtime, "search_space": "nasbench201", "arch": arch, "batch_size": batch,
        "input_size": 32, "protocol": "interleaved", "latency_ms": latency, "status": status, "host": "h",
        "farm_version": "0",
    }


def test_imported_store_pivots_to_one_column_per_device(store_dir, nb201_slice):
    table = load_table(store_dir, "nasbench201")
    assert table.names() == ["1080ti_1", "gold_6226", "pixel2", "pixel3", "raspi4"]
    assert table.keys["1080ti_1"].batch_size == 1 and table.keys["1080ti_1"].runtime == "external"
    assert len(table.series("pixel2")) == 20 and len(table.series("raspi4")) == 300
    expected = nb201_slice[nb201_slice.device == "raspi4"].set_index("arch")["latency_ms"].sort_index()
    pd.testing.assert_series_equal(table.series("raspi4"), expected, check_names=False)


def test_several_configurations_of_a_device_are_separate_targets(tmp_path):
    store = Store(tmp_path)
    store.append([
        _row("cpu-a", ARCH_A, 1.0), _row("cpu-a", ARCH_A, 3.0), _row("cpu-a", ARCH_A, 2.0),  # repeated: median
        _row("cpu-a", ARCH_A, 5.0, runtime="tflite"), _row("cpu-a", ARCH_B, 9.0, batch=8),
        _row("cpu-a", ARCH_B, 99.0, status="failed"), _row("pi", ARCH_B, 4.0),
    ])
    table = load_table(tmp_path, "nasbench201")
    assert table.names() == ["cpu-a:tflite:b1", "cpu-a:torch:b1", "cpu-a:torch:b8", "pi"]
    assert table.series("cpu-a:torch:b1").to_dict() == {ARCH_A: 2.0}
    assert table.series("cpu-a:torch:b8").to_dict() == {ARCH_B: 9.0}  # the failed row is not read
    assert table.resolve("pi") == "pi"
    with pytest.raises(DataError, match="has 3 configurations"):
        table.resolve("cpu-a")
    assert table.without(["pi"]).names() == ["cpu-a:tflite:b1", "cpu-a:torch:b1", "cpu-a:torch:b8"]


def test_empty_missing_and_other_space_stores_are_user_errors(tmp_path, store_dir):
    with pytest.raises(DataError, match="no such store directory"):
        load_table(tmp_path / "nowhere", "nasbench201")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="the store is empty"):
        load_table(tmp_path / "empty", "nasbench201")
    with pytest.raises(DataError, match="holds nasbench201"):
        load_table(store_dir, "fbnet")


def test_choose_and_split_are_deterministic_and_order_free():
    archs = [f"a{i:03d}" for i in range(100)]
    assert choose(archs, 10, seed=4) == choose(list(reversed(archs)), 10, seed=4)
    assert choose(archs, 10, seed=4) != choose(archs, 10, seed=5)
    chosen, rest = split(archs, 10, seed=4)
    assert len(chosen) == 10 and set(chosen) | set(rest) == set(archs) and not set(chosen) & set(rest)
    with pytest.raises(ValueError):
        choose(archs, 101, seed=0)


def test_scalers_fit_only_what_they_are_given():
    train = pd.Series({"a": 2.0, "b": 4.0, "c": 8.0})
    scaler = fit_scalers({"t": train}, "minmax")["t"]
    assert scaler.transform(np.array([2.0, 8.0])).tolist() == [0.0, 1.0]
    np.testing.assert_allclose(scaler.inverse(scaler.transform(np.array([3.3]))), [3.3])


def test_snapshot_hash_tracks_values_and_archs():
    base = {"t": pd.Series({"a": 1.0, "b": 2.0})}
    assert snapshot_hash(base) == snapshot_hash({"t": pd.Series({"b": 2.0, "a": 1.0})})
    assert snapshot_hash(base) != snapshot_hash({"t": pd.Series({"a": 1.0, "b": 2.5})})
    assert snapshot_hash(base) != snapshot_hash({"u": pd.Series({"a": 1.0, "b": 2.0})})


def test_from_long_without_config_columns():
    frame = pd.DataFrame({"arch": [ARCH_A, ARCH_B], "device": ["d", "d"], "latency_ms": [1.0, 2.0]})
    table = TargetTable.from_long(frame, "nasbench201")
    assert table.archs("d") == sorted([ARCH_A, ARCH_B]) and table.common_archs(["d"]) == table.archs()
