"""nvpmodel -q parser against tests/fixtures/jetson."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.nvpmodel import parse


def test_every_nvpmodel_fixture_is_covered(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "jetson").glob("nvpmodel*")} == {
        "nvpmodel_q_nano_5w_nonroot_errors.txt", "nvpmodel_q_orin_nano_15w.txt"}


def test_orin_nano_mode(fixtures_dir: Path) -> None:
    mode = parse((fixtures_dir / "jetson" / "nvpmodel_q_orin_nano_15w.txt").read_text())
    assert (mode.name, mode.mode_id, mode.errors) == ("15W", 0, [])


def test_nonroot_errors_are_kept_beside_a_valid_mode(fixtures_dir: Path) -> None:
    mode = parse((fixtures_dir / "jetson" / "nvpmodel_q_nano_5w_nonroot_errors.txt").read_text())
    assert (mode.name, mode.mode_id) == ("5W", 1)
    assert len(mode.errors) == 2 and mode.errors[0].startswith("Error opening /sys/kernel/nvpmodel_emc_cap")


def test_errors_without_a_mode_are_refused() -> None:
    with pytest.raises(UnparsableOutput, match="Error opening /etc/nvpmodel.conf"):
        parse("NVPM ERROR: Error opening /etc/nvpmodel.conf: 2\n")
