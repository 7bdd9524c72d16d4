"""StoreWriter: rows appended in a background thread, in order, errors raised in the caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import Artifact
from farm import protocol as protocols
from farm.inventory import Device
from farm.jobs import failed_row
from farm.store import Store, StoreError
from farm.writer import StoreWriter

PROTOCOL = protocols.make("interleaved")
DEVICE = Device(name="dev", kind="cpu")


def rows(*archs: str) -> list[dict]:
    return [failed_row(DEVICE, "c", Artifact("nasbench201", arch), PROTOCOL, "x") for arch in archs]


def test_every_batch_is_written_and_reported_once(tmp_path: Path) -> None:
    writer = StoreWriter(Store(tmp_path))
    for index in range(5):
        writer.submit(rows(f"a{index}", f"b{index}"), tag=index)
    done = writer.close()
    assert sorted(tag for tag, _ in done) == [0, 1, 2, 3, 4]
    assert [tag for tag, _ in done] == sorted(tag for tag, _ in done)  # in submission order
    assert sorted(Store(tmp_path).read()["arch"]) == sorted(f"{p}{i}" for i in range(5) for p in "ab")


def test_a_write_error_is_raised_in_the_callers_thread(tmp_path: Path) -> None:
    writer = StoreWriter(Store(tmp_path))
    bad = rows("a")
    bad[0]["device"] = "not a slug!"
    writer.submit(bad, tag="bad")
    with pytest.raises(StoreError, match="slug"):
        writer.close()
