"""/proc/cpuinfo parser against tests/fixtures/android (tab- and space-separated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.cpuinfo import parse, parse_online


def test_every_cpuinfo_fixture_is_covered(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "android").glob("proc_cpuinfo*")} == {
        "proc_cpuinfo_xiaomi_mi10_sd865_spaces_truncated.txt", "proc_cpuinfo_xiaomi_mi8_sd845_tabs_truncated.txt"}


def test_space_aligned_sd865(fixtures_dir: Path) -> None:
    info = parse((fixtures_dir / "android" / "proc_cpuinfo_xiaomi_mi10_sd865_spaces_truncated.txt").read_text())
    assert info.cores == 4
    assert info.system == {"Processor": "AArch64 Processor rev 14 (aarch64)"}
    assert info.processors[3]["CPU part"] == "0x805" and info.processors[0]["BogoMIPS"] == "38.40"
    assert info.core_names() == ["Kryo 4xx Silver"] * 4


def test_tab_separated_sd845_two_clusters(fixtures_dir: Path) -> None:
    info = parse((fixtures_dir / "android" / "proc_cpuinfo_xiaomi_mi8_sd845_tabs_truncated.txt").read_text())
    assert info.cores == 5
    assert info.processors[0]["CPU architecture"] == "8"  # no tab before the colon
    assert info.core_names() == ["Kryo 3xx Silver"] * 4 + ["Kryo 3xx Gold"]
    assert info.model == "AArch64 Processor rev 12 (aarch64) (4x Kryo 3xx Silver, 1x Kryo 3xx Gold)"


def test_x86_and_pi_style_and_refusal() -> None:
    pi = parse("processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nCPU implementer\t: 0x41\n"
               "CPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.5\n")
    assert pi.model == "Raspberry Pi 4 Model B Rev 1.5 (1x Cortex-A72)"
    x86 = parse("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\n")
    assert x86.core_names() == ["Intel(R) Xeon(R) CPU"]
    with pytest.raises(UnparsableOutput, match="processor"):
        parse("cat: /proc/cpuinfo: Permission denied\n")


def test_online_cpu_list() -> None:
    assert parse_online("0-7\n") == list(range(8))
    assert parse_online("0,2-3") == [0, 2, 3]
    with pytest.raises(UnparsableOutput, match="CPU list"):
        parse_online("cat: /sys/devices/system/cpu/online: No such file or directory")
