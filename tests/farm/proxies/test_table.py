"""The encodings table: real Parquet files under <store>/_encodings, append-only, invisible to the measurement reader."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from farm.proxies.table import ENCODINGS_DIR, EncodingsTable
from farm.store import Store, StoreError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def row(arch: str, proxy: str, status: str = "ok", value: float | None = 1.5, **fields: object) -> dict[str, object]:
    base = {
        "space": "nasbench201", "arch": arch, "proxy": proxy, "value": value, "status": status,
        "error": None if status == "ok" else f"{proxy}: why", "input_spec": "gaussian:b16:r16:c10:l4:s0",
        "version": 1, "computed_at": NOW, "host": "here", "torch_version": "2.x", "farm_version": "0.1.0",
    }
    return {**base, **fields}


def test_rows_round_trip_and_done_keys_skip_failed_rows(tmp_path: Path) -> None:
    table = EncodingsTable(tmp_path)
    written = table.append([
        row("a", "snip"), row("a", "jacov", "undefined", None), row("b", "snip", "failed", None),
        row("c", "snip", input_spec="gaussian:b8:r8:c10:l4:s0"),
    ])
    assert [p.parent.name for p in written] == ["space=nasbench201"]
    assert written[0].parent.parent == tmp_path / ENCODINGS_DIR
    frame = table.read("nasbench201")
    assert sorted(frame["arch"]) == ["a", "a", "b", "c"] and set(frame["space"]) == {"nasbench201"}
    assert frame.loc[frame["status"] == "ok", "value"].tolist() == [1.5, 1.5]
    assert table.done_keys("nasbench201", "gaussian:b16:r16:c10:l4:s0") == {("a", "snip", 1), ("a", "jacov", 1)}
    assert table.read("fbnet").empty


def test_appending_never_rewrites_a_file(tmp_path: Path) -> None:
    table = EncodingsTable(tmp_path)
    first = table.append([row("a", "snip")])[0]
    before = first.read_bytes()
    table.append([row("b", "snip")])
    assert first.read_bytes() == before and len(table.files()) == 2
    assert not [p for p in (tmp_path / ENCODINGS_DIR).rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize(
    "bad, message",
    [
        (row("a", "snip", value=None), "ok row needs a finite value"),
        (row("a", "snip", value=float("inf")), "ok row needs a finite value"),
        (row("a", "snip", "failed", 2.0), "only ok rows carry a value"),
        (row("a", "snip", "maybe", None), "status 'maybe'"),
        (row("a", "snip", space="nb201\n"), "not slug-like"),
        (row("a", "snip", weight=3), "unknown column"),
        ({k: v for k, v in row("a", "snip").items() if k != "host"}, "column 'host' is empty in 1 row"),
    ],
)
def test_a_bad_row_is_refused_and_nothing_is_written(tmp_path: Path, bad: dict[str, object], message: str) -> None:
    table = EncodingsTable(tmp_path)
    with pytest.raises(StoreError, match=message):
        table.append([row("ok", "snip"), bad])
    assert table.files() == []


def test_the_measurement_reader_does_not_see_the_encodings(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append([{
        "campaign_id": "c", "measured_at": NOW, "source": "farm", "device": "cpu-local", "device_kind": "cpu",
        "runtime": "torch", "search_space": "nasbench201", "arch": "a", "batch_size": 1, "input_size": 32,
        "protocol": "interleaved", "latency_ms": 1.0, "status": "ok", "host": "here", "farm_version": "0.1.0",
    }])
    EncodingsTable(tmp_path).append([row("a", "snip")])
    frame = store.read(columns=["arch", "status"])
    assert frame.to_dict("records") == [{"arch": "a", "status": "ok"}]


def test_a_damaged_file_is_a_store_error(tmp_path: Path) -> None:
    table = EncodingsTable(tmp_path)
    path = table.append([row("a", "snip")])[0]
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(StoreError, match="cannot read the encodings table"):
        table.read()
