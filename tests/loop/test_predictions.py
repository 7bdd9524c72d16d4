"""loop.predictions: the predictions table layout, metadata and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds

from loop.predictions import PredictionInfo, folder_of, latest, read_predictions, write_predictions


def test_write_read_latest(tmp_path: Path) -> None:
    info = PredictionInfo("nasbench201", "cpu-local:torch:b1", 3, "multipredict", "registry/v3")
    first = write_predictions(tmp_path, info, ["a", "b"], [1.0, 2.0])
    second = write_predictions(tmp_path, PredictionInfo("nasbench201", "cpu-local:torch:b1", 4, "multipredict", "v4"),
                               ["a", "b", "c"], [1.5, 2.5, 3.5])
    assert first.parent == second.parent == folder_of(tmp_path, "nasbench201", "cpu-local:torch:b1")
    assert first.parent.name == "target=cpu-local:torch:b1" and first.name.endswith("-v3.parquet")
    assert latest(tmp_path, "nasbench201", "cpu-local:torch:b1") == second
    frame, metadata = read_predictions(second)
    assert frame["arch"].tolist() == ["a", "b", "c"] and frame["predicted_ms"].tolist() == [1.5, 2.5, 3.5]
    assert metadata["version"] == "4" and metadata["method"] == "multipredict" and metadata["target"] == "cpu-local:torch:b1"
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    # hive layout: the whole folder reads as one table with space/target columns
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 5 and set(table.column("space").to_pylist()) == {"nasbench201"}


def test_latest_of_an_unknown_target_is_none(tmp_path: Path) -> None:
    assert latest(tmp_path, "nasbench201", "nothing") is None
