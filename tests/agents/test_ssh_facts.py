"""agents.ssh_facts: a board's DeviceFacts from the runner's probe facts (recorded real Pi and Jetson tool output).

Property: any facts object that passes the runner-result schema becomes DeviceFacts without an exception,
with every frequency a plain bounded integer and telemetry that holds only sane readings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import RunFailed
from agents.runner_result import parse_runner_result
from agents.ssh_facts import board_tool_readings, facts_from_runner
from agents.telemetry import TEMPERATURE_RANGE_C


def tool(stdout: str) -> dict[str, Any]:
    return {"command": ["tool"], "returncode": 0, "stdout": stdout, "stderr": ""}


def test_recorded_pi_and_jetson_tool_output_is_decoded(fixtures_dir: Path) -> None:
    throttled = (fixtures_dir / "rpi_vcgencmd" / "rpi4_throttled_0x80008_and_version.txt").read_text()
    power = (fixtures_dir / "jetson" / "nvpmodel_q_orin_nano_15w.txt").read_text()
    facts = facts_from_runner(
        {"hostname": "pi4", "online_cores": [0, 1, 2, 3], "thermal_c": {"cpu-thermal": 51.0},
         "tools": {"vcgencmd_get_throttled": tool(throttled), "nvpmodel_q": tool(power)}},
        {"torch": "2.5.0"}, taskset=False,
    )
    assert facts.extra["throttled"]["raw"] == "0x80008" and facts.extra["power_mode"]["name"] == "15W"
    assert facts.cores == 4 and facts.extra["taskset"] is False and facts.runtime_versions == {"torch": "2.5.0"}


def test_tool_output_that_does_not_parse_is_kept_as_an_error_never_fatal() -> None:
    temperatures: dict[str, float] = {}
    readings = board_tool_readings({"vcgencmd_measure_temp": tool("temp=nan'C\n"), "nvpmodel_q": tool("")},
                                   temperatures, source="pi4 output")
    assert "vcgencmd_measure_temp" in readings["tool_errors"] and temperatures == {}


def test_clocks_that_are_no_plain_number_are_left_out() -> None:
    cpufreq = {str(core): {"governor": "performance", "cur_freq": text}
               for core, text in enumerate(["1800000", "9" * 5000, "²", "-5", "1e6", " 42", None])}
    facts = facts_from_runner({"cpufreq": cpufreq}, {})
    assert facts.frequencies_khz == {"0": 1_800_000} and len(facts.governor) == 7


TEXT = st.text(max_size=30) | st.sampled_from(["1800000", "9" * 40, "temp=48.3'C", "throttled=0x50005", "NaN"])
NUMBER = st.floats() | st.integers(-10**6, 10**6)
FACTS = st.fixed_dictionaries({}, optional={
    "hostname": TEXT,
    "cpu_model": TEXT,
    "online_cores": st.lists(st.integers(0, 1 << 20), max_size=8),
    "affinity": st.none() | st.lists(st.integers(0, 1 << 20), max_size=8),
    "cpufreq": st.dictionaries(TEXT, st.fixed_dictionaries({}, optional={
        name: st.none() | TEXT for name in ("governor", "cur_freq", "min_freq", "max_freq")}), max_size=4),
    "thermal_c": st.dictionaries(TEXT, NUMBER, max_size=4),
    "free_memory_mb": st.none() | st.floats(0, 1e9),
    "tools": st.dictionaries(st.sampled_from(["vcgencmd_get_throttled", "vcgencmd_measure_temp", "nvpmodel_q"]),
                             st.fixed_dictionaries({"stdout": TEXT, "stderr": TEXT}), max_size=3),
})


@settings(max_examples=300, deadline=None, database=None)
@given(facts=FACTS, versions=st.dictionaries(TEXT, TEXT, max_size=3))
def test_any_facts_the_schema_accepts_become_device_facts_with_sane_telemetry(facts: dict, versions: dict) -> None:
    try:
        checked = parse_runner_result({"ok": True, "mode": "probe", "facts": facts, "runtime_versions": versions},
                                      device="pi4", mode="probe")
    except RunFailed:
        return
    device = facts_from_runner(checked["facts"], checked["runtime_versions"], taskset=True)
    assert all(isinstance(khz, int) and 0 <= khz < 10**12 for khz in device.frequencies_khz.values())
    telemetry = device.telemetry()
    low, high = TEMPERATURE_RANGE_C
    assert telemetry.temperature_c is None or (math.isfinite(telemetry.temperature_c) and low <= telemetry.temperature_c <= high)
    assert telemetry.cpu_freq_mhz is None or math.isfinite(telemetry.cpu_freq_mhz)
