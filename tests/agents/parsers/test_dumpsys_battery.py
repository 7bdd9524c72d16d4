"""dumpsys battery parser against tests/fixtures/android."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.dumpsys_battery import parse

# file -> (temperature C, level, voltage mV, status, plugged)
PARSED = {
    "dumpsys_battery_2016_minimal_fields.txt": (None, 89, 0, "charging", ["AC"]),
    "dumpsys_battery_pixel_c_dragon_2016.txt": (27.5, 19, 3764, "charging", ["AC"]),
    "dumpsys_battery_samsung_2023_vendor_fields.txt": (30.9, 100, 4312, "full", ["USB"]),
}


def test_every_battery_fixture_is_covered(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "android").glob("dumpsys_battery*")} == set(PARSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_temperature_is_tenths_of_a_degree(fixtures_dir: Path, name: str) -> None:
    temperature, level, voltage, status, plugged = PARSED[name]
    state = parse((fixtures_dir / "android" / name).read_text(), source=name)
    assert state.temperature_c == temperature
    assert (state.level, state.voltage_mv, state.status, state.plugged) == (level, voltage, status, plugged)
    assert state.technology == "Li-ion"


def test_samsung_vendor_lines_are_kept_verbatim(fixtures_dir: Path) -> None:
    state = parse((fixtures_dir / "android" / "dumpsys_battery_samsung_2023_vendor_fields.txt").read_text())
    assert state.fields["USE_FAKE_BATTERY"] == "false"
    assert state.fields["LLB MAN"] == ""
    assert state.fields["Charge counter"] == state.fields["charge counter"] == "2967000"
    assert state.fields["mSavedBatteryMaxTemp"] == "534"
    assert "BatteryInfoBackUp" not in state.fields
    assert state.level_percent == 100.0


def test_non_battery_text_is_refused() -> None:
    with pytest.raises(UnparsableOutput, match="Current Battery Service state"):
        parse("Can't find service: battery\n", source="pixel7 output")
    with pytest.raises(UnparsableOutput, match="not an integer"):
        parse("Current Battery Service state:\n  temperature: hot\n")


@pytest.mark.parametrize("value", ["9" * 4000, "27.5", "nan", "0x1f"])
def test_a_temperature_that_is_no_integer_is_refused_typed(value: str) -> None:
    """Issue 13, class 3 (SYNTHETIC): 4000 digits used to raise OverflowError when divided by 10."""
    with pytest.raises(UnparsableOutput, match="not an integer"):
        parse(f"Current Battery Service state:\n  temperature: {value}\n")
