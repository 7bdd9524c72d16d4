"""agents.telemetry: per-core readings reduced to one row's telemetry; absurd readings dropped."""

from __future__ import annotations

import math

import pytest

from agents.base import DeviceFacts
from agents.telemetry import Telemetry, from_cores, hottest, sane_frequency, sane_temperature
from farm.jobs import telemetry_fields


@pytest.mark.parametrize("value, kept", [(45.0, 45.0), (-40.0, -40.0), (150.0, 150.0), (-41.0, None), (151.0, None),
                                          (math.nan, None), (math.inf, None), (None, None), (True, None)])
def test_sane_temperature(value: float | None, kept: float | None) -> None:
    assert sane_temperature(value) == kept


@pytest.mark.parametrize("value, kept", [(1800.0, 1800.0), (10_000.0, 10_000.0), (0.0, None), (-5.0, None),
                                          (10_001.0, None), (math.nan, None)])
def test_sane_frequency(value: float, kept: float | None) -> None:
    assert sane_frequency(value) == kept


def test_mean_clock_over_the_selected_cores_and_their_governor() -> None:
    governors = {"cpu0": "schedutil", "cpu1": "schedutil", "cpu4": "performance", "cpu5": "performance"}
    clocks = {"cpu0": 1_000_000, "cpu1": 1_200_000, "cpu4": 2_400_000, "cpu5": 0}
    big = from_cores(governors, clocks, {}, cores=[4, 5])
    assert big == Telemetry(temperature_c=None, cpu_freq_mhz=2400.0, governor="performance", dropped=("cpu5_khz=0",))
    little = from_cores(governors, clocks, {"a": 40.0, "b": 200.0, "c": 38.5}, cores={0, 1})
    assert little == Telemetry(temperature_c=40.0, cpu_freq_mhz=1100.0, governor="schedutil", dropped=("b=200.0",))
    everything = from_cores(governors, clocks, {})
    assert everything.governor == "performance,schedutil"
    assert everything.cpu_freq_mhz == pytest.approx((1000 + 1200 + 2400) / 3)


def test_runner_style_core_keys_and_device_facts() -> None:
    assert from_cores({"0": "ondemand"}, {"0": 600_000}, {}, cores={0}).cpu_freq_mhz == 600.0
    facts = DeviceFacts(governor={"cpu0": "ondemand"}, frequencies_khz={"cpu0": 1_500_000},
                        temperatures_c={"zone": 51.0, "broken": -273.0})
    assert facts.telemetry() == Telemetry(temperature_c=51.0, cpu_freq_mhz=1500.0, governor="ondemand",
                                          dropped=("broken=-273.0",))
    assert DeviceFacts().telemetry() == Telemetry()


def test_a_nan_sensor_never_hides_a_hot_one_and_the_dropped_readings_are_named() -> None:
    reading = from_cores({}, {"cpu0": float("inf")}, {"zone:a": float("nan"), "zone:b": 95.0, "battery": -9999.9})
    assert reading.temperature_c == 95.0 and reading.cpu_freq_mhz is None
    assert reading.dropped == ("cpu0_khz=inf", "zone:a=nan", "battery=-9999.9")
    assert hottest({"zone:a": float("nan"), "zone:b": 95.0}) == 95.0
    assert hottest({"zone:a": float("nan")}) is None


def test_the_row_says_which_readings_it_dropped() -> None:
    start = from_cores({}, {}, {"zone:a": float("nan"), "zone:b": 40.0})
    end = from_cores({}, {}, {"zone:b": 41.0})
    fields = telemetry_fields(start, end)
    assert fields["temperature_start_c"] == 40.0 and fields["temperature_end_c"] == 41.0
    assert fields["telemetry_dropped"] == "start: zone:a=nan"
    assert telemetry_fields(end, end)["telemetry_dropped"] is None


def test_device_facts_hottest_sensor_ignores_broken_ones() -> None:
    facts = DeviceFacts(temperatures_c={"zone:a": float("nan"), "zone:b": 95.0, "broken": -273.0})
    assert facts.max_temperature_c() == 95.0
    assert DeviceFacts(temperatures_c={"zone:a": float("nan")}).max_temperature_c() is None
