"""farm.merge: one real Parquet store into another by measurement_id, idempotent, append-only, untrusted input refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from farm import spaces
from farm.device_records import DeviceRecord, read_records, write_record
from farm.errors import UserError
from farm.merge import is_store_folder, merge_stores
from farm.store import Store
from farm.summary import CampaignSummary, DeviceSummary, load_records, save_record
from tests.farm.test_store import row, snapshot

ARCHS = spaces.get("nasbench201").sample(12, seed=5)


def farm_rows(campaign: str, devices: tuple[str, ...] = ("cpu-local", "pi4-a"), archs: list[str] = ARCHS) -> list[dict]:
    """Rows as the farm writes them: raw runs, telemetry, a failed row among them."""
    rows = []
    for d, device in enumerate(devices):
        for a, arch in enumerate(archs):
            failed = a == len(archs) - 1
            rows.append(row(
                campaign_id=campaign, measurement_id=f"{campaign}-{device}-{a}", device=device, arch=arch,
                latency_ms=None if failed else 1.0 + a + d / 10, samples_ms=None if failed else [1.0 + a, 1.1 + a],
                status="failed" if failed else ("unstable" if a == 0 else "ok"), error="RunFailed: boom" if failed else None,
                temperature_start_c=41.5, governor="ondemand", telemetry_dropped=None if a else "cpu_freq",
            ))
    return rows


def head_store(root: Path, campaign: str = "c-head", finished: bool = True) -> Path:
    """A head's store: rows of one campaign, its record, and the devices' records."""
    Store(root).append(farm_rows(campaign))
    summary = CampaignSummary(campaign, "nasbench201", str(root), status="finished" if finished else "running",
                              started_at="2026-01-02T03:00:00+00:00",
                              finished_at="2026-01-02T04:00:00+00:00" if finished else None,
                              devices=[DeviceSummary("cpu-local", "cpu", requested=12, measured=11, failed=1)])
    save_record(summary)
    for device in ("cpu-local", "pi4-a"):
        write_record(root, DeviceRecord(device, "cpu", None, ("torch",), (1,), 1, None, "2026-01-02T03:00:00+00:00"))
    return root


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("measurement_id").reset_index(drop=True)


def test_merge_copies_every_row_and_value_and_a_second_merge_adds_nothing(tmp_path):
    source, home = head_store(tmp_path / "head"), tmp_path / "home"
    result = merge_stores(source, home)
    assert (result.added, result.already, result.campaigns_copied, result.devices_copied) == (24, 0, 1, 2)
    pd.testing.assert_frame_equal(by_id(Store(home).read()), by_id(Store(source).read()))
    assert [r.campaign_id for r in load_records(home)] == ["c-head"] and set(read_records(home)) == {"cpu-local", "pi4-a"}
    files = snapshot(Store(home))
    again = merge_stores(source, home)
    assert (again.added, again.already, again.campaigns_copied, again.devices_copied) == (0, 24, 0, 0)
    assert snapshot(Store(home)) == files  # nothing rewritten, nothing added


def test_overlapping_stores_merge_to_their_union_without_duplicates(tmp_path):
    home = head_store(tmp_path / "home", campaign="c-local")
    source = head_store(tmp_path / "head", campaign="c-head")
    Store(source).append(Store(home).read(device="pi4-a"))  # the head also holds some of the local rows
    before = len(Store(home).read())
    result = merge_stores(source, home)
    merged = Store(home).read()
    assert (result.added, result.already) == (24, 12)
    assert merged["measurement_id"].is_unique and len(merged) == before + 24
    assert set(merged["measurement_id"]) == set(Store(source).read()["measurement_id"]) | set(
        Store(tmp_path / "home").read()["measurement_id"])


def test_an_interrupted_merge_is_completed_by_merging_again(tmp_path):
    source, home = head_store(tmp_path / "head"), tmp_path / "home"
    merge_stores(source, home)
    lost = next(p for p in Store(home).files() if "device=pi4-a" in str(p))
    lost.unlink()  # as if the merge stopped before writing this partition
    assert merge_stores(source, home).added == 12
    assert len(Store(home).read()) == 24


def test_a_campaign_record_finished_on_the_head_replaces_the_running_copy(tmp_path):
    home = tmp_path / "home"
    merge_stores(head_store(tmp_path / "early", finished=False), home)
    assert load_records(home)[0].finished_at is None
    result = merge_stores(head_store(tmp_path / "late", finished=True), home)
    assert result.campaigns_copied == 1 and load_records(home)[0].finished_at is not None
    # ... and a finished local record is never replaced by an unfinished one
    assert merge_stores(tmp_path / "early", home).campaigns_copied == 0
    assert load_records(home)[0].finished_at is not None


def test_newer_device_records_win_and_bad_records_are_skipped_by_name(tmp_path):
    source, home = head_store(tmp_path / "head"), tmp_path / "home"
    write_record(home, DeviceRecord("cpu-local", "cpu", None, ("torchscript",), (8,), 1, None, "2027-01-01T00:00:00+00:00"))
    (source / "_campaigns" / "broken.json").write_text("{not json")
    result = merge_stores(source, home)
    assert result.devices_copied == 1  # pi4-a only: the local cpu-local record is newer
    assert read_records(home)["cpu-local"].runtimes == ("torchscript",)
    assert len(result.skipped_records) == 1 and "broken.json" in result.skipped_records[0]
    assert not (home / "_campaigns" / "broken.json").exists()


def test_an_empty_store_with_records_only_merges_its_records(tmp_path):
    source = tmp_path / "head"
    write_record(source, DeviceRecord("pixel7", "adb", "pixel7", ("tflite",), (1,), 4, None))
    assert is_store_folder(source)
    result = merge_stores(source, tmp_path / "home")
    assert (result.added, result.devices_copied) == (0, 1)


def _bad_value(source: Path, **overrides) -> None:
    Store(source).append([row(**{"measurement_id": "bad-1", "arch": ARCHS[0], **overrides})])


def _unknown_column(source: Path) -> None:
    folder = source / "search_space=nasbench201" / "device=cpu-local"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"measurement_id": ["x"], "sneaky": [1]}), folder / "part-x.parquet")


def _stray_file(source: Path) -> None:
    Store(source).append([row(measurement_id="fine", arch=ARCHS[0])])
    (source / "stray.parquet").write_bytes(next(iter(Store(source).files())).read_bytes())


def _symlink(source: Path) -> None:
    Store(source).append([row(measurement_id="fine", arch=ARCHS[0])])
    part = Store(source).files()[0]
    os.symlink(part, part.parent / "part-link.parquet")


def _duplicate(source: Path) -> None:
    Store(source).append([row(measurement_id="twice", arch=ARCHS[0])])
    Store(source).append([row(measurement_id="twice", arch=ARCHS[1])])


def _unknown_space(source: Path) -> None:
    Store(source).append([row(measurement_id="m", search_space="darts", arch="x")])


def _not_parquet(source: Path) -> None:
    folder = source / "search_space=nasbench201" / "device=cpu-local"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-x.parquet").write_text("not parquet")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: _bad_value(s, latency_ms=float("inf")), "column 'latency_ms' in row 0 is inf"),
        (lambda s: _bad_value(s, latency_ms=-2.0), "a measured row's latency is positive ms"),
        (lambda s: _bad_value(s, status="great"), "column 'status' in row 0 is 'great'"),
        (lambda s: _bad_value(s, std_ms=float("-inf")), "column 'std_ms' in row 0 is -inf"),
        (lambda s: _bad_value(s, samples_ms=[1.0, float("nan")]), "column 'samples_ms' in row 0"),
        (lambda s: _bad_value(s, batch_size=0), "column 'batch_size' in row 0 is 0"),
        (lambda s: _bad_value(s, measurement_id="has space"), "column 'measurement_id' in row 0 is 'has space'"),
        (lambda s: Store(s).append([row(measurement_id="m", arch="|bad~0|")]), "column 'arch' in row 0"),
        (_unknown_column, "column 'sneaky' is unknown to this latfarm version"),
        (_stray_file, "outside the store layout"),
        (_symlink, "a symlink or special file"),
        (_duplicate, "measurement_id 'twice' is on 2 rows"),
        (_unknown_space, "search space 'darts' is unknown"),
        (_not_parquet, "not a store part file"),
    ],
)
def test_bad_sources_are_refused_in_one_line_and_nothing_is_written(tmp_path, make, message):
    source, home = tmp_path / "head", tmp_path / "home"
    head_store(source)  # good rows and records beside the bad one: none of them may land either
    make(source)
    with pytest.raises(UserError, match=message) as error:
        merge_stores(source, home)
    assert "\n" not in str(error.value)
    assert not home.exists()


def test_folders_that_are_not_stores_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for path, message in ((tmp_path / "empty", "not a farm store"), (tmp_path / "missing", "no such folder"),
                          (tmp_path / "file", "no such folder")):
        with pytest.raises(UserError, match=message):
            merge_stores(path, tmp_path / "home")
    store = head_store(tmp_path / "store")
    with pytest.raises(UserError, match="is the store being merged"):
        merge_stores(store, store)
    (tmp_path / "home-file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        merge_stores(store, tmp_path / "home-file")


def test_arch_strings_are_stored_canonical_and_numbers_unchanged(tmp_path):
    source, home = tmp_path / "head", tmp_path / "home"
    Store(source).append([row(measurement_id="m", arch=f" {ARCHS[3]} ", latency_ms=2.25, samples_ms=[2.0, 2.5])])
    merge_stores(source, home)
    stored = Store(home).read().iloc[0]
    assert stored["arch"] == ARCHS[3] and stored["latency_ms"] == 2.25
    assert np.array_equal(stored["samples_ms"], np.array([2.0, 2.5], dtype="float32"))
    assert json.loads(json.dumps(stored["measured_at"].isoformat())) == "2026-01-02T03:04:05+00:00"


def test_merges_into_one_store_at_once_take_turns_and_store_each_row_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    source, home = head_store(tmp_path / "head"), tmp_path / "home"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: merge_stores(source, home), range(4)))
    assert sorted(r.added for r in results) == [0, 0, 0, 24]
    assert len(Store(home).read()) == 24
