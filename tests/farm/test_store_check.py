"""farm.store_check (``farm check``): real damaged files in a real store; list, quarantine, clean again.

Issue 13, class 14: one damaged part file must not make the store unusable, and nothing is deleted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from farm.cli import main
from farm.store import Store
from farm.store_check import LEFTOVER_MIN_AGE_S, quarantine, repair, scan_store
from farm.summary import CampaignSummary, save_record
from tests.farm.test_store import damage, row
from trainer.data import load_table


def damaged_store(root: Path) -> dict[str, Path]:
    """:func:`tests.farm.test_store.damage`, aged as a crash an hour ago, plus an unreadable campaign record."""
    store = Store(root)
    damaged = damage(store)
    hour_ago = time.time() - 3600
    os.utime(damaged["leftover"], (hour_ago, hour_ago))
    save_record(CampaignSummary("c1", "nasbench201", str(root), status="finished", started_at="2026-01-01T00:00:00"))
    broken = root / "_campaigns" / "c2.json"
    broken.write_text('{"campaign_id": "c2", "search_sp')
    damaged["record"] = broken
    return damaged


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def test_check_lists_every_kind_of_damage_and_changes_nothing(tmp_path: Path) -> None:
    damaged = damaged_store(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = scan_store(tmp_path)
    kinds = {p.path: p.kind for p in result.problems}
    assert kinds == {
        relative(tmp_path, damaged["truncated"]): "corrupt",
        relative(tmp_path, damaged["empty"]): "corrupt",
        relative(tmp_path, damaged["foreign"]): "foreign",
        relative(tmp_path, damaged["wrong_type"]): "foreign",
        relative(tmp_path, damaged["text"]): "foreign",
        relative(tmp_path, damaged["leftover"]): "leftover",
        relative(tmp_path, damaged["record"]): "record",
    }
    assert result.part_files == 6 and result.records == 2 and result.exit_code == 1
    assert sorted(p for p in tmp_path.rglob("*")) == before  # a check alone moves nothing


def test_repair_quarantines_then_a_second_check_is_clean_and_nothing_is_lost(tmp_path: Path, capsys) -> None:
    damaged = damaged_store(tmp_path)
    contents = {name: path.read_bytes() for name, path in damaged.items() if name != "quarantined"}
    assert main(["check", "--store", str(tmp_path)]) == 1
    listing = capsys.readouterr().out
    assert f"farm check --store {tmp_path} --repair" in listing and "7 problem(s)" in listing
    assert main(["check", "--store", str(tmp_path), "--repair"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nmoved ") == 7 and "nothing deleted" in out
    for name, data in contents.items():
        moved = tmp_path / "_quarantine" / relative(tmp_path, damaged[name])
        if name == "good":  # a good file stays where it is
            assert damaged[name].read_bytes() == data
        else:  # every damaged file is in _quarantine/ under its own path, byte for byte
            assert not damaged[name].exists() and moved.read_bytes() == data, name
    assert damaged["quarantined"].read_bytes() == contents["good"]  # what was quarantined before is untouched
    assert main(["check", "--store", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["clean"] and payload["problems"] == [] and payload["part_files"] == 2
    assert sorted(Store(tmp_path).read()["arch"]) == ["a1", "a2"]


def test_a_quarantined_file_is_never_overwritten(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (path,) = store.append([row()])
    first, second = b"first damaged copy", b"second damaged copy"
    bad = path.parent / "part-bad.parquet"
    bad.write_bytes(first)
    target = quarantine(tmp_path, bad.relative_to(tmp_path))
    bad.write_bytes(second)
    again = quarantine(tmp_path, bad.relative_to(tmp_path))
    assert target.read_bytes() == first and again.read_bytes() == second
    assert again.name == "part-bad.parquet.1" and not bad.exists()


def test_a_young_temporary_file_is_left_alone(tmp_path: Path) -> None:
    """A .tmp-part- file younger than LEFTOVER_MIN_AGE_S may be a write under way: never moved."""
    store = Store(tmp_path)
    (path,) = store.append([row()])
    writing = path.parent / ".tmp-part-now.parquet"
    writing.write_bytes(b"PAR1")
    result = repair(scan_store(tmp_path))
    assert result.problems == [] and result.left_alone == [relative(tmp_path, writing)] and result.exit_code == 0
    assert writing.exists()
    later = scan_store(tmp_path, now=time.time() + LEFTOVER_MIN_AGE_S + 1)
    assert [p.kind for p in later.problems] == ["leftover"]


@pytest.mark.parametrize("setup, fragment", [
    (lambda root: None, "no such folder"),
    (lambda root: root.write_text("x"), "is a file"),
    (lambda root: (root.mkdir(), (root / "holiday.jpg").write_bytes(b"x")), "not a farm store"),
])
def test_not_a_store_is_one_line_and_exit_2(tmp_path: Path, capsys, setup, fragment: str) -> None:
    root = tmp_path / "x"
    setup(root)
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--store", str(root), "--repair"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and fragment in err and "Traceback" not in err
    assert not (root / "_quarantine").exists()


def test_status_import_and_the_trainer_read_a_damaged_store(tmp_path: Path, capsys, caplog,
                                                               help_table_path: Path) -> None:
    """Before any repair, the store's readers go on with the good rows and one warning naming farm check."""
    damaged_store(tmp_path)
    with caplog.at_level("WARNING", logger="farm.store"):
        assert main(["status", "--store", str(tmp_path)]) == 0
    assert f"store {tmp_path}: 2 rows" in capsys.readouterr().out
    assert len(caplog.records) == 1 and f"farm check --store {tmp_path} --repair" in caplog.records[0].getMessage()
    table = load_table(tmp_path, "nasbench201")
    assert table.archs() == ["a1", "a2"]
    import pandas as pd

    small = tmp_path.parent / "small.parquet"
    pd.read_parquet(help_table_path).head(3).to_parquet(small)
    assert main(["import", str(small), "--store", str(tmp_path)]) == 0
    assert "imported 3 rows" in capsys.readouterr().out
    assert len(Store(tmp_path).read()) == 5


@pytest.mark.parametrize("leftover", [".lock", ".merge.lock"])
def test_a_store_whose_first_writer_was_killed_holds_only_its_lock_and_is_clean(tmp_path, leftover):
    store = tmp_path / "store"
    store.mkdir()
    (store / leftover).write_text("")
    assert scan_store(store).problems == []
