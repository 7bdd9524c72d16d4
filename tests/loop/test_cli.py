"""loop.cli is the farm console script: farm's subcommands plus add-device and report; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loop.cli import build_parser, main
from tests.loop.help_subset import write_subset


def subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)


def test_farm_subcommands_and_the_loop_ones() -> None:
    assert {"status", "measure", "devices", "import", "add-device", "report"} <= subcommands()


def test_farm_verbs_still_work_through_it(tmp_path: Path, help_table_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = write_subset(help_table_path, tmp_path / "t.parquet", ["pixel2"], archs=None)
    assert main(["import", str(table), "--store", str(tmp_path / "store")]) == 0
    capsys.readouterr()
    assert main(["status", "--store", str(tmp_path / "store"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["measurements"]
    assert rows[0]["device"] == "pixel2" and rows[0]["archs_ok"] == 15625


def test_unknown_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-verb"])
    assert exit_.value.code == 2
