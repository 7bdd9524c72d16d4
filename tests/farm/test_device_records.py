"""farm.device_records: each measured device's inventory entry in ``<store>/_devices/``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from farm.device_records import (
    DEVICES_DIR, DeviceRecord, DeviceRecordError, read_record, read_records, record_path, write_record,
)
from farm.inventory import Device
from farm.run import CampaignConfig, run_campaign
from farm.store import Store
from tests.farm.scripted_agent import local_ray, scripted_factory

pytestmark = pytest.mark.timeout(180)


def test_a_record_round_trips_and_replaces_the_previous_one_atomically(tmp_path):
    first = DeviceRecord("pi4-a", "ssh", "raspberrypi4", ("tflite", "torch"), (1, 8), 4, 224)
    path = write_record(tmp_path, first)
    assert path == tmp_path / DEVICES_DIR / "pi4-a.json" and read_record(tmp_path, "pi4-a") == first
    assert json.loads(path.read_text())["runtimes"] == ["tflite", "torch"]
    second = DeviceRecord("pi4-a", "ssh", "raspberrypi4", ("torch",), (1,), 4, None)
    write_record(tmp_path, second)
    assert read_records(tmp_path) == {"pi4-a": second} and second.default_configuration() == ("torch", 1)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pi4-a.json"]  # no temporary file left behind
    assert read_record(tmp_path, "nowhere") is None and read_records(tmp_path / "empty") == {}


def test_records_are_built_from_inventory_devices_in_inventory_order():
    device = Device(name="cpu-local", kind="cpu", runtimes=["torchscript", "torch"], batch_sizes=[8, 1], threads=2)
    record = DeviceRecord.of(device)
    assert (record.device, record.kind, record.threads, record.input_size) == ("cpu-local", "cpu", 2, None)
    assert record.configurations() == [("torchscript", 8), ("torchscript", 1), ("torch", 8), ("torch", 1)]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"device": "pi", "kind": "ssh", "runtimes": ["torch"], "batch_sizes": ["one"]}', "field 'batch_sizes'"),
        ('{"device": "other", "kind": "ssh", "runtimes": ["torch"], "batch_sizes": [1]}', "does not match the file name"),
    ],
)
def test_a_bad_record_names_the_file_and_field(tmp_path, content, expected):
    path = tmp_path / DEVICES_DIR / "pi.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(DeviceRecordError, match=expected) as error:
        read_record(tmp_path, "pi")
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path):
    with pytest.raises(DeviceRecordError, match="not a plain name"):
        record_path(tmp_path, "../escape")


def test_a_campaign_records_its_devices_and_the_store_reader_ignores_them(tmp_path: Path):
    device = Device(name="dev", kind="adb", adb={"serial": "dev"}, runtimes=["torch"], batch_sizes=[4, 1],
                    protocol={"max_ci": 10.0})
    archs = ["arch-00", "arch-01"]
    config = CampaignConfig("nasbench201", archs, [device], tmp_path, job_size=2, backoff_s=0.01,
                            progress=False, warmup=0, runs=2, rounds=1)
    with contextlib.contextmanager(local_ray)():
        run_campaign(config, agent_factory=scripted_factory())
    record = read_record(tmp_path, "dev")
    assert record is not None and record.configurations() == [("torch", 4), ("torch", 1)]
    assert record.default_configuration() == ("torch", 4) and record.kind == "adb"
    rows = Store(tmp_path).read(columns=["arch", "batch_size"])
    rows = rows[rows["arch"].isin(archs)]  # a job may add drift anchors of its own
    assert len(rows) == 4 and set(rows["batch_size"]) == {1, 4}
