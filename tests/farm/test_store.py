"""farm.store: real Parquet files, hive partitions, append-only writes, filters and resume keys."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from farm.store import RESUME_KEY, SCHEMA, Store, StoreError

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "campaign_id": "c1",
        "measured_at": NOW,
        "source": "farm",
        "device": "cpu-local",
        "device_kind": "cpu",
        "runtime": "torch",
        "search_space": "nasbench201",
        "arch": "a1",
        "batch_size": 1,
        "input_size": 32,
        "threads": 1,
        "protocol": "interleaved",
        "warmup_runs": 10,
        "runs": 50,
        "trim": 0.1,
        "latency_ms": 1.5,
        "samples_ms": [1.0, 1.5, 2.0],
        "status": "ok",
        "host": "vm",
        "farm_version": "0.1.0",
    }
    values.update(overrides)
    return values


def snapshot(store: Store) -> dict[Path, tuple[int, int, bytes]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in store.files()}


def test_round_trip_keeps_schema_values_and_partitions(tmp_path: Path) -> None:
    store = Store(tmp_path / "m")
    written = store.append([row(), row(arch="a2", device="pi4-a", device_kind="ssh", platform="raspberrypi4")])
    assert sorted(p.relative_to(store.root).parts[:2] for p in written) == [
        ("search_space=nasbench201", "device=cpu-local"),
        ("search_space=nasbench201", "device=pi4-a"),
    ]
    frame = store.read()
    assert list(frame.columns) == SCHEMA.names
    first = frame.set_index("arch").loc["a1"]
    assert first["device"] == "cpu-local" and first["latency_ms"] == 1.5
    assert list(first["samples_ms"]) == [1.0, 1.5, 2.0]
    assert first["measured_at"] == pd.Timestamp(NOW)
    assert pd.isna(first["platform"]) and pd.isna(first["error"])
    assert frame["measurement_id"].nunique() == 2
    # every file is plain Parquet, readable without the store, without the partition columns
    for path in written:
        names = pq.read_table(path).schema.names
        assert "device" not in names and "search_space" not in names and "latency_ms" in names


def test_append_never_rewrites_existing_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([row()])
    before = snapshot(store)
    store.append([row(arch="a2")])
    store.append(pd.DataFrame([row(arch="a3")]))
    after = snapshot(store)
    assert {p: after[p] for p in before} == before
    assert len(after) == 3 and len(store.read()) == 3


def test_leftover_temporary_files_are_invisible(tmp_path: Path) -> None:
    """A crash between write and rename leaves a dot-file; readers must not see it."""
    store = Store(tmp_path)
    (path,) = store.append([row()])
    (path.parent / ".tmp-part-crashed.parquet").write_bytes(path.read_bytes()[:40])
    assert len(store.files()) == 1
    assert len(store.read()) == 1


def test_bad_row_writes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(StoreError, match="batch_size"):
        store.append([row(device="aaa"), row(device="zzz", batch_size="x")])
    assert store.files() == []


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"colour": "red"}, "unknown column"),
        ({"arch": None}, "column 'arch' is empty"),
        ({"device": "bad/name"}, "not slug-like"),
        ({"search_space": "../up"}, "not slug-like"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"samples_ms": "1,2,3"}, "samples_ms"),
    ],
)
def test_rows_that_do_not_fit_the_schema_are_refused(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Store(tmp_path).append([row(**bad)])


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    values = row()
    del values["host"]
    with pytest.raises(StoreError, match="missing column 'host'"):
        Store(tmp_path).append([values])


def test_nullable_columns_may_be_left_out_and_mixed_with_values(tmp_path: Path) -> None:
    store = Store(tmp_path)
    failed = row(arch="a2", status="failed", error="RunFailed: boom", latency_ms=None, samples_ms=None, threads=None)
    store.append([row(), failed])
    frame = store.read().set_index("arch")
    assert frame.loc["a2", "error"] == "RunFailed: boom" and pd.isna(frame.loc["a2", "latency_ms"])
    assert frame.loc["a1", "threads"] == 1 and pd.isna(frame.loc["a2", "threads"])


def test_filters(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append(
        [
            row(arch="a1"),
            row(arch="a2", batch_size=8),
            row(arch="f1", search_space="fbnet", device="pi4-a", status="failed"),
        ]
    )
    assert set(store.read(search_space="fbnet")["arch"]) == {"f1"}
    assert set(store.read(device=["cpu-local", "pi4-a"])["arch"]) == {"a1", "a2", "f1"}
    assert set(store.read(status="ok")["arch"]) == {"a1", "a2"}
    assert set(store.read(where={"batch_size": np.int64(8)})["arch"]) == {"a2"}
    assert set(store.read(where={"arch": ["a1", "f1"]}, status="ok")["arch"]) == {"a1"}
    assert list(store.read(columns=["arch", "latency_ms"], device="pi4-a").columns) == ["arch", "latency_ms"]
    assert store.read(device="nowhere").empty
    with pytest.raises(StoreError, match="unknown column 'colour'"):
        store.read(where={"colour": "red"})


def test_empty_or_missing_store_reads_as_empty_frame_with_schema(tmp_path: Path) -> None:
    frame = Store(tmp_path / "absent").read(status="ok")
    assert frame.empty and list(frame.columns) == SCHEMA.names
    assert Store(tmp_path).done_keys() == set()
    assert Store(tmp_path).append([]) == []


def test_done_keys_are_ok_rows_only_so_failed_and_unstable_are_retried(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([row(arch="a1"), row(arch="a2", status="failed", error="x"), row(arch="a3", status="unstable")])
    store.append([row(arch="a1", protocol="help")])
    keys = store.done_keys()
    assert keys == {
        ("cpu-local", "torch", 1, 32, "nasbench201", "a1", "interleaved"),
        ("cpu-local", "torch", 1, 32, "nasbench201", "a1", "help"),
    }
    assert len(RESUME_KEY) == 7
    assert store.done_keys(where={"protocol": "help"}) == {("cpu-local", "torch", 1, 32, "nasbench201", "a1", "help")}


def test_corrupt_file_is_reported_with_the_store_path(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (path,) = store.append([row()])
    (path.parent / "part-foreign.parquet").write_bytes(b"")
    with pytest.raises(StoreError, match=str(tmp_path)):
        store.read()


def test_naive_timestamps_are_taken_as_utc(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([row(measured_at=dt.datetime(2025, 1, 1, 12)), row(arch="a2", measured_at="2025-01-01T13:00:00Z")])
    stamps = store.read().set_index("arch")["measured_at"]
    assert stamps["a1"] == pd.Timestamp("2025-01-01T12:00:00Z")
    assert stamps["a2"] == pd.Timestamp("2025-01-01T13:00:00Z")


def test_temporary_file_is_renamed_not_left_behind(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([row()])
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []
    assert all(os.access(p, os.R_OK) for p in store.files())


def test_done_keys_hold_plain_python_values(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([row()])
    (key,) = store.done_keys()
    assert [type(v) for v in key] == [str, str, int, int, str, str, str]


#: The schema of the part files written before the confidence interval, telemetry and anchor columns.
OLD_COLUMNS_ABSENT = ("ci_low_ms", "ci_high_ms", "cpu_freq_start_mhz", "cpu_freq_end_mhz", "governor", "job_id", "anchor_ms")


def test_old_part_files_without_the_new_columns_still_read(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (new_file,) = store.append([row(arch="new", ci_low_ms=1.4, ci_high_ms=1.6, governor="performance", job_id="j1")])
    old_table = pq.read_table(new_file).drop_columns(list(OLD_COLUMNS_ABSENT))
    old_table = old_table.set_column(old_table.schema.get_field_index("arch"), "arch", [["old"]])
    pq.write_table(old_table, new_file.parent / "part-old-schema.parquet")
    assert list(store.read().columns) == SCHEMA.names
    frame = store.read().set_index("arch")
    assert frame.loc["old", "latency_ms"] == 1.5
    assert all(pd.isna(frame.loc["old", column]) for column in OLD_COLUMNS_ABSENT)
    assert frame.loc["new", "ci_low_ms"] == 1.4 and frame.loc["new", "governor"] == "performance"
    assert set(store.read(where={"job_id": "j1"})["arch"]) == {"new"}
    assert store.done_keys() == {("cpu-local", "torch", 1, 32, "nasbench201", a, "interleaved") for a in ("old", "new")}
