"""farm add-device: every bad input is one line and exit 2, checked before Ray starts.

(The whole command against a replay device runs in tests/e2e/test_add_device.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from loop.base import BaseOptions, import_space, pretrain_base
from loop.cli import main
from tests.loop.help_subset import SPACE, subset_archs, write_subset

SOURCES = ["pixel2", "1080ti_1"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, help_table_path: Path) -> Path:
    """A store of two HELP devices, a registered layerwise base, an inventory with one replay device."""
    work = tmp_path_factory.mktemp("add_device_input")
    table = write_subset(help_table_path, work / "t.parquet", SOURCES, subset_archs(30))
    import_space(table, work / "store", SPACE)
    pretrain_base(BaseOptions(work / "store", work / "registry", sources=SOURCES, source_samples=None, method="layerwise"),
                  say=lambda _: None)
    (work / "inventory.yaml").write_text(
        f"devices:\n  - name: replay-pixel3-simulation\n    kind: replay\n    replay: {{table: {help_table_path}, device: pixel3}}\n"
    )
    return work


def run(work: Path, *extra: str, device: str = "replay-pixel3-simulation") -> int:
    return main(["add-device", device, "--inventory", str(work / "inventory.yaml"), "--store", str(work / "store"),
                 "--registry", str(work / "registry"), "--predictions", str(work / "predictions"),
                 "--reports", str(work / "reports"), *extra])


@pytest.mark.parametrize(
    ("device", "extra", "expected"),
    [
        ("pixel9", (), "unknown device 'pixel9'; known devices: replay-pixel3-simulation"),
        ("replay-pixel3-simulation", ("--space", "darts"), "--space: unknown search space 'darts'"),
        ("replay-pixel3-simulation", ("--space", "fbnet"), "no pre-trained base predictor for fbnet"),
        ("replay-pixel3-simulation", ("--pool", "missing.txt"), "missing.txt: no such file"),
        ("replay-pixel3-simulation", ("--samples", "0"), "--samples must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_ray_starts(
    work: Path, capsys: pytest.CaptureFixture[str], device: str, extra: tuple[str, ...], expected: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(work, *extra, device=device)
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and expected in error and len(error.splitlines()) == 1
    assert not ray.is_initialized()


def test_missing_base_names_the_ways_to_make_one(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["add-device", "replay-pixel3-simulation", "--inventory", str(work / "inventory.yaml"),
              "--registry", str(work / "empty-registry")])
    error = capsys.readouterr().err
    assert "make pretrain" in error and "trainer nightly" in error


def test_unwritable_output_folder(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = work / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        run(work, "--reports", str(blocker / "reports"))
    assert exit_.value.code == 2 and "--reports" in capsys.readouterr().err
