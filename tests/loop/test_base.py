"""loop.base: a public table's space imported once, a base pre-trained without the held-out slice and registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loop.base import BaseOptions, import_space, main, pretrain_base
from tests.loop.help_subset import SPACE, subset_archs, write_subset
from trainer import holdout, registry
from trainer.versions import BASE, PredictorRegistry

SOURCES = ["pixel2", "1080ti_1", "gold_6226"]


@pytest.fixture()
def table(tmp_path: Path, help_table_path: Path) -> Path:
    return write_subset(help_table_path, tmp_path / "help-subset.parquet", SOURCES, subset_archs(40, n_held_out=6))


def test_import_once_then_nothing(tmp_path: Path, table: Path) -> None:
    assert import_space(table, tmp_path / "store", SPACE) == 3 * 46
    assert import_space(table, tmp_path / "store", SPACE) == 0
    assert import_space(table, tmp_path / "store", SPACE, devices=["pixel2"]) == 46  # another slice: its own copy
    assert import_space(table, tmp_path / "store", SPACE, devices=["pixel2"]) == 0


def test_base_is_registered_without_held_out_archs_and_promoted_only_first(tmp_path: Path, table: Path) -> None:
    import_space(table, tmp_path / "store", SPACE)
    options = BaseOptions(tmp_path / "store", tmp_path / "registry", sources=SOURCES, source_samples=None,
                          method="multipredict", hyper={"epochs": 2})
    first, promoted = pretrain_base(options, say=lambda _: None)
    assert first.number == 1 and promoted
    manifest = registry.read_manifest(first.path)
    assert manifest["samples"]["sources"] == {name: 40 for name in SOURCES}  # the 6 held-out archs dropped
    assert holdout.unmarked_reason(manifest) is None
    second, promoted = pretrain_base(options, say=lambda _: None)
    assert second.number == 2 and not promoted
    assert PredictorRegistry(tmp_path / "registry").current(SPACE, BASE).number == 1


def test_command_line(tmp_path: Path, table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--store", str(tmp_path / "store"), "--registry", str(tmp_path / "registry"), "--table", str(table),
            "--sources", ",".join(SOURCES), "--source-samples", "30", "--method", "layerwise", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["promoted"] and out["imported"] == 3 * 46
    with pytest.raises(SystemExit) as exit_:
        main([*argv[:-1], "--sources", "pixel2,nowhere"])
    assert exit_.value.code == 2 and "nowhere" in capsys.readouterr().err
