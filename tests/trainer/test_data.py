"""trainer.data: store -> per-target table, naming, errors, deterministic choices, scalers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farm.device_records import DeviceRecord, DeviceRecordError, write_record
from farm.store import Store
from trainer.data import DataError, TargetTable, choose, fit_scalers, load_table, snapshot_hash, split
from trainer.targets import RULE_INVENTORY, RULE_MOST_ROWS

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
    assert table.resolve("pi") == "pi" and table.resolve("pi:torch:b1") == "pi"
    # No device record: the default is the configuration with the most rows of any status (torch:b1, 4 rows).
    assert table.resolve("cpu-a") == "cpu-a:torch:b1"
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


def _flip_store(folder: Path) -> Path:
    """The issue-10 case: ``cpu-local`` has ok torchscript rows and, so far, only unstable eager-torch rows."""
    Store(folder).append([
        _row("cpu-local", ARCH_A, 1.0, runtime="torchscript"), _row("cpu-local", ARCH_B, 2.0, runtime="torchscript"),
        _row("cpu-local", ARCH_A, 1.5, status="unstable"), _row("cpu-local", ARCH_B, 2.5, status="unstable"),
        _row("cpu-local", ARCH_B, 2.4, status="unstable"), _row("cpu-local", ARCH_A, 9.0, runtime="torchscript", status="failed"),
    ])
    return folder


@pytest.mark.parametrize("with_record", [True, False])
def test_target_names_and_defaults_do_not_flip_when_unstable_rows_are_loaded(tmp_path, with_record):
    store = _flip_store(tmp_path)
    if with_record:  # the inventory lists eager torch first: that is the default target, measured or not
        write_record(store, DeviceRecord("cpu-local", "cpu", None, ("torch", "torchscript"), (1,), 1, None))
    ok_only = load_table(store, "nasbench201")
    with_unstable = load_table(store, "nasbench201", statuses=("ok", "unstable"))
    assert ok_only.keys == with_unstable.keys
    assert sorted(ok_only.keys) == ["cpu-local:torch:b1", "cpu-local:torchscript:b1"]
    expected = "cpu-local:torch:b1"  # record: inventory first; no record: most rows of any status (3 against 3, torch < torchscript)
    assert ok_only.resolve("cpu-local") == with_unstable.resolve("cpu-local") == expected
    rule = RULE_INVENTORY if with_record else RULE_MOST_ROWS
    first, second = ok_only.choice("cpu-local"), with_unstable.choice("cpu-local")
    assert (first.target, first.rule) == (second.target, second.rule) == (expected, rule)
    # ok only: the default has no usable row yet (transfer then says how many it needs), and says why.
    assert (first.used_rows, first.skipped, first.other_configurations) == (0, {"unstable": 3}, {"cpu-local:torchscript:b1": 3})
    assert (second.used_rows, second.used_archs, second.skipped) == (3, 2, {})
    assert first.line() == (f"target cpu-local -> cpu-local:torch:b1 ({rule}): 0 rows used (0 archs); "
                            "skipped 3 unstable, 3 of other configurations (cpu-local:torchscript:b1)")
    assert ok_only.series("cpu-local").empty and with_unstable.series("cpu-local").to_dict() == {ARCH_A: 1.5, ARCH_B: 2.45}


def test_the_explicit_form_names_any_configuration(tmp_path):
    store = _flip_store(tmp_path)
    write_record(store, DeviceRecord("cpu-local", "cpu", None, ("torchscript", "torch"), (1, 8), 1, None))
    table = load_table(store, "nasbench201")
    assert table.resolve("cpu-local") == "cpu-local:torchscript:b1"
    assert table.resolve("cpu-local:torch:b1") == "cpu-local:torch:b1"
    assert table.resolve("cpu-local:torchscript:b1:in32") == "cpu-local:torchscript:b1"
    choice = table.choice("cpu-local:torchscript:b1")
    assert (choice.rule, choice.used_rows, choice.skipped) == ("named explicitly", 2, {"failed": 1})
    # The inventory's batch size 8 was never measured: it is a known target, with nothing to learn from yet.
    assert "cpu-local:torch:b8" in table.keys and table.series("cpu-local:torch:b8").empty
    assert "cpu-local:torch:b8" not in table.names()
    with pytest.raises(DataError, match="unknown device or target 'cpu-local:tflite:b1'"):
        table.resolve("cpu-local:tflite:b1")


def test_a_device_with_one_configuration_keeps_its_plain_name_and_records_of_other_spaces_are_ignored(tmp_path):
    Store(tmp_path).append([_row("pi", ARCH_A, 1.0), _row("pi", ARCH_B, 2.0, status="unstable")])
    write_record(tmp_path, DeviceRecord("pi", "ssh", "raspberrypi4", ("torch",), (1,), 4, None))
    write_record(tmp_path, DeviceRecord("jetson", "ssh", None, ("torch", "tflite"), (1,), 4, None))
    table = load_table(tmp_path, "nasbench201")
    assert list(table.keys) == ["pi"] and table.resolve("pi:torch:b1") == "pi"
    assert table.choice("pi").line() == "target pi (the device's only configuration): 1 rows used (1 archs); skipped 1 unstable"


def test_a_corrupt_device_record_is_a_one_line_user_error(tmp_path):
    Store(tmp_path).append([_row("pi", ARCH_A, 1.0)])
    (tmp_path / "_devices").mkdir()
    (tmp_path / "_devices" / "pi.json").write_text('{"device": "pi", "kind": "ssh", "runtimes": [], "batch_sizes": [1]}')
    with pytest.raises(DeviceRecordError, match=r"pi.json: field 'runtimes': expected a non-empty list"):
        load_table(tmp_path, "nasbench201")


def test_several_stores_read_as_their_union_each_measurement_once(tmp_path, store_dir):
    """Issue 12: the local store and one pulled from a head, overlapping, read as one; a duplicate counts once."""
    rows = Store(store_dir).read()
    local, pulled = Store(tmp_path / "local"), Store(tmp_path / "pulled")
    local.append(rows[rows["device"] != "pixel2"])
    pulled.append(rows[rows["device"].isin(["pixel2", "raspi4"])])  # raspi4's rows are in both
    alone = load_table(local.root, "nasbench201")
    both = load_table([local.root, pulled.root, local.root], "nasbench201")
    assert "pixel2" not in alone.names()
    expected = load_table(store_dir, "nasbench201")
    pd.testing.assert_frame_equal(both.latencies, expected.latencies)
    assert both.choice("raspi4").used_rows == expected.choice("raspi4").used_rows == len(expected.series("raspi4"))
    assert both.origin == f"{local.root} + {pulled.root}"


def test_several_stores_join_device_records_newest_first_and_name_a_missing_one(tmp_path):
    first, second = Store(tmp_path / "a"), Store(tmp_path / "b")
    first.append([_row("pi", ARCH_A, 1.0, runtime="torch"), _row("pi", ARCH_A, 2.0, runtime="tflite")])
    second.append([_row("pi", ARCH_B, 1.5, runtime="torch")])
    write_record(first.root, DeviceRecord("pi", "ssh", None, ("torch", "tflite"), (1,), 4, None, "2026-01-01T00:00:00+00:00"))
    write_record(second.root, DeviceRecord("pi", "ssh", None, ("tflite", "torch"), (1,), 4, None, "2026-03-01T00:00:00+00:00"))
    table = load_table([first.root, second.root], "nasbench201")
    assert table.resolve("pi") == "pi:tflite:b1"  # the newer record's first runtime is the default target
    assert sorted(table.series("pi:torch:b1").index) == sorted([ARCH_A, ARCH_B])
    with pytest.raises(DataError, match=f"{tmp_path / 'missing'}: no such store directory"):
        load_table([first.root, tmp_path / "missing"], "nasbench201")
