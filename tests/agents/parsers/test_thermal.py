"""Thermal parsers: dumpsys thermalservice and /sys thermal zones, against tests/fixtures/android."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.thermal import (
    parse_thermalservice,
    parse_zone_readings,
    parse_zone_types,
    thermalservice_temperatures,
    zone_celsius,
)

THERMALSERVICE = "dumpsys_thermalservice_samsung_a52_android12_truncated.txt"
ZONE_TYPES = "thermal_zone_types_xperia_xz_premium_msm8998_truncated.txt"


def test_thermalservice_records_and_sections(fixtures_dir: Path) -> None:
    readings = parse_thermalservice((fixtures_dir / "android" / THERMALSERVICE).read_text())
    assert len(readings) == 18
    assert [r.section for r in readings].count("hal") == 9
    ap = next(r for r in readings if r.name == "AP" and r.section == "hal")
    assert (ap.value_c, ap.type_name, ap.status) == (25.6, "cpu", 0)
    temperatures = thermalservice_temperatures((fixtures_dir / "android" / THERMALSERVICE).read_text())
    assert temperatures["BAT"] == 23.8 and temperatures["PA"] == 25.7 and len(temperatures) == 9


def test_zone_types_in_zone_order(fixtures_dir: Path) -> None:
    types = parse_zone_types((fixtures_dir / "android" / ZONE_TYPES).read_text())
    assert len(types) == 20
    assert (types[0], types[11], types[19]) == ("battery", "tsens_tz_sensor0", "tsens_tz_sensor10")


def test_zone_readings_millidegrees_and_degrees() -> None:
    text = "0\tbattery\t31000\n1\ttsens_tz_sensor0\t45\n2\ttsens_tz_sensor0\t46500\n3\txo_therm\tN/A\n"
    assert parse_zone_readings(text) == {"battery": 31.0, "tsens_tz_sensor0": 45.0, "tsens_tz_sensor0-2": 46.5}
    assert zone_celsius("-5000") == -5.0
    with pytest.raises(UnparsableOutput):
        parse_zone_readings("cat: /sys/class/thermal: Permission denied\n")


def test_refusals() -> None:
    with pytest.raises(UnparsableOutput, match="Temperature"):
        parse_thermalservice("Can't find service: thermalservice\n")
    with pytest.raises(UnparsableOutput):
        parse_zone_types("cat: thermal_zone0/type: No such file or directory\n")


# --- issue 13, classes 3 and 4 (parser side). SYNTHETIC zone lines in ZONE_READ_COMMAND's format.
def test_non_finite_zone_readings_are_left_out_and_reported() -> None:
    readings = parse_zone_readings("0\tbattery\t31000\n1\tcpu-0-0\tnan\n2\tskin\tinf\n3\tgpu\t1e999\n")
    assert readings == {"battery": 31.0}
    assert readings.dropped == {"cpu-0-0": "nan", "skin": "inf", "gpu": "1e999"}
    assert parse_zone_readings("0\tcpu\tnan\n").dropped == {"cpu": "nan"}
    for raw in ("nan", "inf", "-inf", "9" * 400):
        with pytest.raises(ValueError):
            zone_celsius(raw)


def test_thermalservice_records_that_overflow_are_left_out() -> None:
    text = ("Current temperatures from HAL:\n"
            "  Temperature{mValue=1e999, mType=0, mName=AP, mStatus=0}\n"
            "  Temperature{mValue=31.5, mType=" + "9" * 40 + ", mName=BAT, mStatus=0}\n"
            "  Temperature{mValue=25.6, mType=3, mName=skin, mStatus=0}\n")
    assert thermalservice_temperatures(text) == {"skin": 25.6}
