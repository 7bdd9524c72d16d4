"""Telemetry: the device's thermal and clock state at one moment, as stored next to each row.

The farm reads it before and after each job (``Agent.telemetry``) and stores
``temperature_start_c``/``temperature_end_c``, ``cpu_freq_start_mhz``/``cpu_freq_end_mhz``
and ``governor``. Readings outside the physically possible range (a sensor that
reports -273 C or 0 kHz, a frequency above 10 GHz, NaN) are dropped, never stored.

Example:
    >>> reading = from_cores({"cpu0": "performance", "cpu1": "performance"},
    ...                      {"cpu0": 1_800_000, "cpu1": 1_600_000}, {"t": 48.5}, cores={0, 1})
    >>> reading.cpu_freq_mhz, reading.governor, reading.temperature_c
    (1700.0, 'performance', 48.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = [
    "TEMPERATURE_RANGE_C",
    "FREQUENCY_RANGE_MHZ",
    "Telemetry",
    "from_cores",
    "hottest",
    "sane_frequency",
    "sane_temperature",
]

TEMPERATURE_RANGE_C = (-40.0, 150.0)
"""Plausible die/battery temperatures; a reading outside is a broken sensor."""

FREQUENCY_RANGE_MHZ = (0.0, 10_000.0)
"""Plausible CPU clocks (exclusive lower bound): 0 kHz or above 10 GHz is a broken reading."""


@dataclass(frozen=True)
class Telemetry:
    """Hottest sensor (C), mean current clock of the cores the job runs on (MHz), their governor.

    ``None`` where the device does not expose the value (most VMs have no cpufreq, servers no
    thermal zones). ``governor`` is the one governor those cores share, or the distinct ones
    joined with ``,`` (sorted) when they differ.
    """

    temperature_c: float | None = None
    cpu_freq_mhz: float | None = None
    governor: str | None = None
    dropped: tuple[str, ...] = ()
    """Readings left out as not finite or physically impossible, as ``name=value`` (e.g. ``zone:cpu=nan``)."""


def sane_temperature(value: float | None) -> float | None:
    """``value`` if it is a finite temperature in :data:`TEMPERATURE_RANGE_C`, else ``None``.

    Example:
        >>> sane_temperature(45.0), sane_temperature(-273.0), sane_temperature(float("nan"))
        (45.0, None, None)
    """
    low, high = TEMPERATURE_RANGE_C
    return float(value) if _finite(value) and low <= float(value) <= high else None  # type: ignore[arg-type]


def sane_frequency(value_mhz: float | None) -> float | None:
    """``value_mhz`` if it is a finite clock in (0, 10 000] MHz, else ``None``.

    Example:
        >>> sane_frequency(1800.0), sane_frequency(0.0), sane_frequency(2e6)
        (1800.0, None, None)
    """
    low, high = FREQUENCY_RANGE_MHZ
    return float(value_mhz) if _finite(value_mhz) and low < float(value_mhz) <= high else None  # type: ignore[arg-type]


def from_cores(
    governors: Mapping[str, str],
    frequencies_khz: Mapping[str, int | float],
    temperatures_c: Mapping[str, float],
    *,
    cores: Iterable[int] | None = None,
) -> Telemetry:
    """Telemetry from per-core cpufreq readings (keys ``cpuN`` or ``N``) and named temperature sensors.

    Only the cores in ``cores`` count (``None``: all reported). Absurd readings are dropped
    before the mean and the maximum are taken.
    """
    wanted = None if cores is None else {int(core) for core in cores}
    dropped: list[str] = []
    clocks: list[float] = []
    for key, khz in frequencies_khz.items():
        if not _selected(key, wanted):
            continue
        mhz = sane_frequency(float(khz) / 1000.0) if _finite(khz) else None
        if mhz is None:
            dropped.append(f"{key}_khz={_shown(khz)}")
        else:
            clocks.append(mhz)
    names = sorted({name.strip() for key, name in governors.items() if _selected(key, wanted) and name and name.strip()})
    temperatures: list[float] = []
    for sensor, value in temperatures_c.items():
        celsius = sane_temperature(value)
        if celsius is None:
            dropped.append(f"{sensor}={_shown(value)}")
        else:
            temperatures.append(celsius)
    return Telemetry(
        temperature_c=max(temperatures) if temperatures else None,
        cpu_freq_mhz=sum(clocks) / len(clocks) if clocks else None,
        governor=",".join(names) if names else None,
        dropped=tuple(dropped),
    )


def hottest(temperatures_c: Mapping[str, float] | None) -> float | None:
    """The hottest sane reading of ``temperatures_c`` (``None`` when none is sane).

    A broken sensor (NaN, -273 C) never hides a hot one: ``max`` over NaN would.

    Example:
        >>> hottest({"a": float("nan"), "b": 95.0, "c": -9999.9})
        95.0
    """
    sane = [t for value in (temperatures_c or {}).values() if (t := sane_temperature(value)) is not None]
    return max(sane) if sane else None


def _shown(value: object) -> str:
    return str(value)[:24]


def _selected(key: str, wanted: set[int] | None) -> bool:
    if wanted is None:
        return True
    digits = str(key).removeprefix("cpu")
    return digits.isdigit() and int(digits) in wanted


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
