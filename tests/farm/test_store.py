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

from farm.store import RESUME_KEY, SCHEMA, Store, StoreError, part_file_problem

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


def damage(store: Store) -> dict[str, Path]:
    """Real damage of every kind ``farm check`` knows, next to two good part files (arch a1, a2).

    ``good`` is the a1 file. A truncated part file (its rows are arch ``lost``), an empty one, a foreign Parquet table with
    other columns, one with the store's columns but a wrong type, a text file, a ``.tmp-part-``
    leftover of a crash, and a file already in ``_quarantine/``.
    """
    (good,) = store.append([row()])
    store.append([row(arch="a2")])
    (truncated,) = store.append([row(arch="lost")])
    truncated.write_bytes(truncated.read_bytes()[:100])
    partition = good.parent
    empty = partition / "part-empty.parquet"
    empty.write_bytes(b"")
    foreign = partition / "part-foreign.parquet"
    pd.DataFrame({"arch": ["x"], "latency_ms": [9.9], "colour": ["red"]}).to_parquet(foreign)
    wrong_type = partition / "part-wrong-type.parquet"
    pq.write_table(pq.read_table(good).set_column(pq.read_table(good).schema.get_field_index("latency_ms"),
                                                  "latency_ms", [["fast"]]), wrong_type)
    text = partition / "notes.txt"
    text.write_text("not a part file\n")
    leftover = partition / ".tmp-part-x.parquet"
    leftover.write_bytes(good.read_bytes()[:50])
    quarantined = store.root / "_quarantine" / good.relative_to(store.root)
    quarantined.parent.mkdir(parents=True)
    quarantined.write_bytes(good.read_bytes())
    return {"good": good, "truncated": truncated, "empty": empty, "foreign": foreign, "wrong_type": wrong_type, "text": text,
            "leftover": leftover, "quarantined": quarantined}


def test_a_damaged_store_reads_its_good_rows_with_one_warning(tmp_path: Path, caplog) -> None:
    store = Store(tmp_path)
    damaged = damage(store)
    with caplog.at_level("WARNING", logger="farm.store"):
        frame = store.read()
        again = store.read(columns=["arch"])  # a second read of the same damage does not warn again
    assert sorted(frame["arch"]) == ["a1", "a2"] and sorted(again["arch"]) == ["a1", "a2"]
    assert frame["measurement_id"].notna().all() and frame["latency_ms"].tolist() == [1.5, 1.5]
    (warning,) = caplog.records
    message = warning.getMessage()
    assert "left out 4 damaged or foreign part file(s)" in message and "\n" not in message
    assert f"`farm check --store {tmp_path} --repair`" in message
    assert damaged["empty"].name in message or damaged["truncated"].name in message or damaged["foreign"].name in message


def test_done_keys_and_filters_skip_damaged_files(tmp_path: Path, caplog) -> None:
    store = Store(tmp_path)
    damage(store)
    with caplog.at_level("WARNING", logger="farm.store"):
        keys = store.done_keys()
    assert {key[5] for key in keys} == {"a1", "a2"}
    assert set(store.read(status="ok", where={"arch": ["a1", "x"]})["arch"]) == {"a1"}
    assert len(caplog.records) >= 1


def test_files_are_the_partition_part_files_only(tmp_path: Path) -> None:
    store = Store(tmp_path)
    damaged = damage(store)
    (tmp_path / "stray.parquet").write_bytes(b"")
    names = {p.name for p in store.files()}
    assert damaged["leftover"].name not in names and damaged["text"].name not in names
    assert not any("_quarantine" in p.parts for p in store.files())
    assert "stray.parquet" not in names and len(names) == 6


def test_a_foreign_file_with_every_required_column_empty_is_left_out(tmp_path: Path, caplog) -> None:
    """A table of the store's columns minus farm_version would read as rows without a version."""
    store = Store(tmp_path)
    (good,) = store.append([row()])
    pq.write_table(pq.read_table(good).drop_columns(["farm_version"]), good.parent / "part-no-version.parquet")
    with caplog.at_level("WARNING", logger="farm.store"):
        frame = store.read(columns=["arch", "farm_version"])
    assert frame["farm_version"].tolist() == ["0.1.0"]
    assert "part-no-version.parquet" in caplog.records[0].getMessage()
    assert "required column 'farm_version' is missing" in caplog.records[0].getMessage()


@pytest.mark.parametrize("kind, expected", [
    ("truncated", "unreadable: "), ("empty", "unreadable: "), ("foreign", "foreign: column 'arch'"),
    ("wrong_type", "foreign: column 'latency_ms' is string"),
])
def test_part_file_problem_names_what_is_wrong(tmp_path: Path, kind: str, expected: str) -> None:
    damaged = damage(Store(tmp_path))
    problem = part_file_problem(damaged[kind])
    assert problem is not None and problem.startswith(expected), problem
    assert part_file_problem(damaged["good"]) is None and part_file_problem(damaged["quarantined"]) is None


@pytest.mark.parametrize("value", ["pi4\n", "pi4\nx", "\npi4", "pi4 "])
def test_a_partition_value_must_be_a_whole_slug(tmp_path: Path, value: str) -> None:
    """Issue 13, class 7: ``pi4\n`` matched ``^...$`` with ``re.match``; whole strings only."""
    with pytest.raises(StoreError, match="not slug-like"):
        Store(tmp_path).append([row(device=value)])
    with pytest.raises(StoreError, match="not slug-like"):
        Store(tmp_path).append([row(search_space=value)])
    assert Store(tmp_path).files() == []


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
