"""cpufreq governor parsers against tests/fixtures/android."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.governor import CpuFreq, parse_governor, parse_table, parse_tables


def test_iree_script_before_and_after(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "android" / "scaling_governor_pixel6_iree_script_table.txt").read_text()
    before, after = parse_tables(text)
    assert before["cpu0"] == CpuFreq("sched_pixel", 1098000, 300000, 1803000)
    assert before["cpu7"] == CpuFreq("sched_pixel", 500000, 500000, 2802000)
    assert {row.governor for row in after.values()} == {"performance"}
    assert all(row.cur_khz == row.max_khz for row in after.values())
    assert parse_table(text) == after and len(after) == 8


def test_single_governor_and_refusals() -> None:
    assert parse_governor("schedutil\n") == "schedutil"
    with pytest.raises(UnparsableOutput, match="governor"):
        parse_governor("cat: scaling_governor: No such file or directory")
    with pytest.raises(UnparsableOutput, match="cpuN"):
        parse_tables("no cpufreq here\n")


def test_a_frequency_no_kernel_prints_is_refused_typed() -> None:
    """Issue 13, class 3 (SYNTHETIC row in the published format): 5000 digits used to raise a bare ValueError."""
    with pytest.raises(UnparsableOutput, match="kHz"):
        parse_table("cpu0 schedutil " + "9" * 5000 + " 300000 1800000")
