"""Temperatures: Android ``dumpsys thermalservice`` and Linux ``/sys/class/thermal`` zones.

``dumpsys thermalservice`` lists ``Temperature{mValue=25.6, mType=0, mName=AP, mStatus=0}``
records (°C) under ``Cached temperatures:`` and ``Current temperatures from HAL:``; the HAL
list is the live one and wins where both name a sensor.

Thermal zones: ``thermal_zoneN/type`` holds a name, ``thermal_zoneN/temp`` millidegrees
Celsius. A few vendor kernels write whole degrees instead; :func:`zone_celsius` treats
values with magnitude below 1000 as degrees (no phone or board runs at 1 °C = 1000 m°C).
The agents read both files at once with :data:`ZONE_READ_COMMAND`, which prints one
``N<TAB>type<TAB>temp`` line per zone, parsed by :func:`parse_zone_readings`.

Example:
    >>> parse_zone_readings("0\\tbattery\\t31000\\n1\\tcpu-0-0\\t45\\n")
    {'battery': 31.0, 'cpu-0-0': 45.0}
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.parsers.common import UnparsableOutput, to_number

__all__ = [
    "ThermalReading",
    "ZoneReadings",
    "ZONE_READ_COMMAND",
    "parse_thermalservice",
    "parse_zone_readings",
    "parse_zone_types",
    "thermalservice_temperatures",
    "zone_celsius",
]

TOOL = "thermal"

#: Prints ``N<TAB>type<TAB>temp`` per zone; unreadable files print nothing for that zone.
ZONE_READ_COMMAND = (
    "for z in /sys/class/thermal/thermal_zone*; do "
    't=$(cat $z/type 2>/dev/null) && v=$(cat $z/temp 2>/dev/null) && '
    'printf "%s\\t%s\\t%s\\n" "${z##*thermal_zone}" "$t" "$v"; done'
)

_RECORD = re.compile(
    r"Temperature\{mValue=(?P<value>-?[\d.]+(?:[eE][-+]?\d+)?), mType=(?P<type>-?\d+), "
    r"mName=(?P<name>[^,]+), mStatus=(?P<status>-?\d+)\}"
)
_SECTIONS = {"Cached temperatures:": "cached", "Current temperatures from HAL:": "hal"}
#: android.os.Temperature TYPE_* constants.
TEMPERATURE_TYPES = {
    -1: "unknown", 0: "cpu", 1: "gpu", 2: "battery", 3: "skin", 4: "usb_port", 5: "power_amplifier",
    6: "bcl_voltage", 7: "bcl_current", 8: "bcl_percentage", 9: "npu", 10: "tpu", 11: "display",
    12: "modem", 13: "soc", 14: "wifi", 15: "camera", 16: "flashlight", 17: "speaker",
    18: "ambient", 19: "pogo",
}


@dataclass(frozen=True)
class ThermalReading:
    """One ``Temperature{...}`` record; ``section`` is ``cached`` or ``hal``."""

    name: str
    value_c: float
    type_code: int
    status: int
    section: str

    @property
    def type_name(self) -> str:
        return TEMPERATURE_TYPES.get(self.type_code, f"type{self.type_code}")


def parse_thermalservice(text: str, *, source: str = "output") -> list[ThermalReading]:
    """Every ``Temperature{...}`` record, tagged with its section; refuse text with none."""
    readings: list[ThermalReading] = []
    section = "other"
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in _SECTIONS:
            section = _SECTIONS[stripped]
        elif stripped.endswith(":") and not line.startswith((" ", "\t")):
            section = "other"
        for match in _RECORD.finditer(line):
            try:
                value, type_code, status = (to_number(match.group("value")), _small_int(match.group("type")),
                                            _small_int(match.group("status")))
            except ValueError:
                continue  # a record no HAL writes (``mValue=1e999``, 40-digit codes) is left out, not guessed
            readings.append(ThermalReading(match.group("name"), value, type_code, status, section))
    if not readings:
        raise UnparsableOutput(TOOL, "no `Temperature{mValue=...}` record in `dumpsys thermalservice`",
                               source=source)
    return readings


def thermalservice_temperatures(text: str, *, source: str = "output") -> dict[str, float]:
    """Sensor name -> °C, the HAL's current values overriding the cached ones.

    Example:
        >>> thermalservice_temperatures("Current temperatures from HAL:\\n"
        ...     "  Temperature{mValue=25.6, mType=0, mName=AP, mStatus=0}")
        {'AP': 25.6}
    """
    rank = {"other": 0, "cached": 1, "hal": 2}
    best: dict[str, ThermalReading] = {}
    for reading in parse_thermalservice(text, source=source):
        if reading.name not in best or rank[reading.section] >= rank[best[reading.name].section]:
            best[reading.name] = reading
    return {name: reading.value_c for name, reading in best.items()}


def parse_zone_types(text: str, *, source: str = "output") -> list[str]:
    """``cat thermal_zone{0..N}/type`` in zone order -> the type names, index = zone number."""
    types = [line.strip() for line in text.splitlines() if line.strip()]
    bad = next((t for t in types if not re.fullmatch(r"[\w.\-]+", t)), None)
    if not types or bad is not None:
        raise UnparsableOutput(TOOL, "not a list of thermal zone type names", source=source, line=bad)
    return types


def _small_int(text: str) -> int:
    """``int(text)`` for the ``-?\\d+`` codes of a record; more than 9 digits is no code (``ValueError``)."""
    if len(text.lstrip("-")) > 9:
        raise ValueError(f"{text[:20]}...: not a type or status code")
    return int(text)


def zone_celsius(raw: str) -> float:
    """A ``thermal_zoneN/temp`` value in °C (millidegrees, or whole degrees on some kernels).

    ``ValueError`` for text that is not a finite number (``nan``, ``inf``, ``1e999``).

    Example:
        >>> zone_celsius("45500"), zone_celsius("38")
        (45.5, 38.0)
    """
    value = to_number(raw.strip())
    return value / 1000.0 if abs(value) >= 1000 else value


class ZoneReadings(dict[str, float]):
    """Zone type -> °C, plus ``dropped``: zones whose reading was not a finite number -> raw text."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: dict[str, str] = {}


def parse_zone_readings(text: str, *, source: str = "output") -> ZoneReadings:
    """Parse :data:`ZONE_READ_COMMAND` output: zone type -> °C (a repeated type gets ``-N``).

    Zones whose ``temp`` is not a finite number (garbled, ``nan``, ``inf``) are left out
    rather than guessed; the result's ``dropped`` maps each such zone to its raw text, so a
    caller can say in the row what it did not trust.
    """
    temperatures = ZoneReadings()
    for line in text.splitlines():
        parts = line.strip().split("\t")
        if len(parts) != 3:
            continue
        zone, name, raw = parts
        try:
            value = zone_celsius(raw)
        except ValueError:
            temperatures.dropped[name if name not in temperatures.dropped else f"{name}-{zone}"] = raw[:40]
            continue
        key = name if name not in temperatures else f"{name}-{zone}"
        temperatures[key] = value
    if not temperatures and not temperatures.dropped and text.strip():
        raise UnparsableOutput(TOOL, "no `N<TAB>type<TAB>millidegrees` line", source=source,
                               line=text.strip().splitlines()[0])
    return temperatures
