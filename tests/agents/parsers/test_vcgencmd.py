"""vcgencmd parser against every Raspberry Pi output in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.vcgencmd import Clock, decode_throttled, parse

TOOL_DIR = "rpi_vcgencmd"
# file -> (temperatures, clocks, throttled raw or None, firmware version or None)
PARSED = {
    "rpi3_temp_throttled_0x50000.txt": ([39.2, 38.6], [], 0x50000, None),
    "rpi3bplus_clock45_temp_throttled_trailing_spaces.txt": ([62.3], [Clock(45, 1_400_000_000)], 0x0, None),
    "rpi4_temp_clock48.txt": ([34.0], [Clock(48, 2_000_478_464)], None, None),
    "rpi4_throttled_0x80008_and_version.txt": ([], [], 0x80008, "e5a963efa66a1974127860b42e913d2374139ff5"),
    "rpi5_measure_clock_v3d_zero.txt": ([], [Clock(0, 0)], None, None),
}


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / TOOL_DIR).iterdir()} == set(PARSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_parses_the_published_readings(fixtures_dir: Path, name: str) -> None:
    temperatures, clocks, throttled, version = PARSED[name]
    readings = parse((fixtures_dir / TOOL_DIR / name).read_text(), source=name)
    assert readings.temperatures_c == temperatures
    assert readings.clocks == clocks
    assert (readings.throttled.raw if readings.throttled else None) == throttled
    assert readings.firmware_version == version


def test_throttled_bits_are_decoded(fixtures_dir: Path) -> None:
    pi3 = parse((fixtures_dir / TOOL_DIR / "rpi3_temp_throttled_0x50000.txt").read_text())
    assert pi3.throttled is not None
    assert pi3.throttled.conditions == ["under-voltage has occurred", "throttling has occurred"]
    assert not pi3.throttled.degraded_now
    assert pi3.temperature_c == 38.6  # the last reading
    pi4 = parse((fixtures_dir / TOOL_DIR / "rpi4_throttled_0x80008_and_version.txt").read_text())
    assert pi4.throttled is not None and pi4.throttled.soft_temp_limit_now and pi4.throttled.degraded_now
    assert pi4.firmware_date == "Mar 24 2022 13:19:26"
    assert decode_throttled(0x50005).under_voltage_now and decode_throttled(0x50005).throttled_now


def test_text_without_vcgencmd_lines_is_refused() -> None:
    with pytest.raises(UnparsableOutput, match="VCHI initialization failed"):
        parse("VCHI initialization failed\n", source="pi4 output")


# --- issue 13, class 3. SYNTHETIC lines in the published format with figures no firmware prints.
@pytest.mark.parametrize("text", ["temp=" + "9" * 400 + "'C", "frequency(48)=" + "9" * 5000,
                                  "frequency(" + "9" * 5000 + ")=1"])
def test_figures_no_firmware_prints_are_refused_typed(text: str) -> None:
    with pytest.raises(UnparsableOutput, match="not a reading"):
        parse(text)
