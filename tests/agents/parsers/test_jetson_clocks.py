"""jetson_clocks --show parser against tests/fixtures/jetson."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.jetson_clocks import parse_cpu_list, parse_show


def test_every_jetson_clocks_fixture_is_covered(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "jetson").glob("jetson_clocks*")} == {
        "jetson_clocks_sh_show_tx1_l4t28.1.txt", "jetson_clocks_show_orin_nano_tegra234.txt"}


def test_tx1_old_script_with_misspelled_governor(fixtures_dir: Path) -> None:
    show = parse_show((fixtures_dir / "jetson" / "jetson_clocks_sh_show_tx1_l4t28.1.txt").read_text())
    assert (show.soc_family, show.machine, show.online_cpus) == ("tegra210", "jetson_tx1", [0, 1, 2, 3])
    assert {cpu.governor for cpu in show.cpus.values()} == {"interactive"}
    assert all(cpu.pinned_to_max and cpu.cur_khz == 1734000 for cpu in show.cpus.values())
    assert show.blocks["GPU"].current_hz == 998400000
    assert show.blocks["EMC"].extra == {"FreqOverride": "1"} and show.blocks["EMC"].min_hz == 12750000
    assert show.fan == {"speed": "255"} and show.warnings == []


def test_orin_nano_with_idle_states_tpcs_and_sandbox_warnings(fixtures_dir: Path) -> None:
    show = parse_show((fixtures_dir / "jetson" / "jetson_clocks_show_orin_nano_tegra234.txt").read_text())
    assert show.machine == "NVIDIA Jetson Orin Nano Developer Kit" and show.online_cpus == [0, 1, 2, 3, 4, 5]
    cpu0 = show.cpus[0]
    assert (cpu0.governor, cpu0.min_khz, cpu0.max_khz, cpu0.cur_khz) == ("ondemand", 729600, 1510400, 960000)
    assert cpu0.idle_states == {"WFI": 1, "c7": 1} and not cpu0.pinned_to_max
    assert show.active_gpu_tpcs == 4 and show.blocks["EMC"].max_hz == 2133000000
    assert show.fan == {"Dynamic_Speed_Control": "kernel", "hwmon0_pwm1": "88"}
    assert show.warnings == ["Failed to retrieve unit state: Access denied"] * 2


def test_cpu_list_and_refusal() -> None:
    assert parse_cpu_list("0-3,6,8-9") == [0, 1, 2, 3, 6, 8, 9]
    with pytest.raises(UnparsableOutput, match="cpuN"):
        parse_show("jetson_clocks: command not found\n")


# --- issue 13, classes 2 and 3. SYNTHETIC lines in the published format.
@pytest.mark.parametrize("text", [
    "Online CPUs: 0-20000000\ncpu0: Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2",
    "Online CPUs: 0-x\ncpu0: Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2",
    "cpu0: Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2\nGPU MinFreq=1 MaxFreq=2",
    "cpu0: Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2\nActive GPU TPCs: many",
    "cpu" + "9" * 5000 + ": Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2",
])
def test_hostile_counts_and_garbled_lines_are_refused_typed(text: str) -> None:
    with pytest.raises(UnparsableOutput):
        parse_show(text)
