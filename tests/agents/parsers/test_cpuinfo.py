"""/proc/cpuinfo parser against tests/fixtures/android (tab- and space-separated)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.parsers.common import UnparsableOutput
from agents.parsers.cpuinfo import MAX_CPUS, parse, parse_cpu_list, parse_online


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


# --- issue 13, class 2: a hostile phone's counts are bounded before anything is allocated.
@pytest.mark.parametrize("text", ["0-20000000", "0-99999999999999999999", "0-3,4096", "5-2", "0-4095,0",
                                  ",".join(["0"] * 5000), "0-7\n0", "٠-٣", ""])
def test_hostile_cpu_lists_are_refused_without_allocating(text: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(UnparsableOutput, match="CPU"):
            parse_online(text, source="pixel-sim output")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the old parser allocated ~800 MB for 0-20000000


def test_the_largest_allowed_list_still_parses() -> None:
    assert parse_cpu_list(f"0-{MAX_CPUS - 1}") == list(range(MAX_CPUS))
    assert parse_cpu_list("0-3,8-11\n", source="x") == [0, 1, 2, 3, 8, 9, 10, 11]


def test_more_processor_blocks_than_any_cpu_is_refused() -> None:
    with pytest.raises(UnparsableOutput, match=f"more than {MAX_CPUS}"):
        parse("".join(f"processor\t: {n}\n\n" for n in range(MAX_CPUS + 1)))
    assert parse("".join(f"processor\t: {n}\n\n" for n in range(MAX_CPUS))).cores == MAX_CPUS


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.from_regex(r"[0-9]{1,22}(-[0-9]{1,22})?(,[0-9]{1,6}(-[0-9]{1,6})?){0,4}\s?",
                                                     fullmatch=True)))
def test_any_text_is_a_bounded_cpu_list_or_a_typed_refusal(text: str) -> None:
    try:
        cpus = parse_online(text)
    except UnparsableOutput:
        return
    assert len(cpus) <= MAX_CPUS and all(0 <= cpu < MAX_CPUS for cpu in cpus)
