"""Raspberry Pi ``vcgencmd`` output: ``measure_temp``, ``measure_clock``, ``get_throttled``, ``version``.

One text may hold the output of several commands in a row (as a probe script prints
them). Formats:

- ``temp=39.2'C`` (degrees Celsius; some firmwares add a trailing space);
- ``frequency(48)=2000478464`` (Hz; the number in brackets is the firmware's clock id,
  45 on older firmware for ``arm``, 48 on newer; a Pi 5 answers ``frequency(0)=0`` for a
  clock block that is idle or not reported, e.g. ``v3d``);
- ``throttled=0x50000``: a bit field decoded by :func:`decode_throttled`;
- ``version``: a date line, a copyright line and ``version <hash> (...)``.

Example:
    >>> readings = parse("temp=62.3'C \\nthrottled=0x50005")
    >>> readings.temperature_c, readings.throttled.under_voltage_now, readings.throttled.throttled_since_boot
    (62.3, True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from agents.parsers.common import UnparsableOutput, to_int, to_number

__all__ = ["Clock", "Throttled", "VcgencmdReadings", "decode_throttled", "parse"]

TOOL = "vcgencmd"
T = TypeVar("T")

_TEMP = re.compile(r"^temp=(?P<c>-?\d+(?:\.\d+)?)'C$")
_CLOCK = re.compile(r"^frequency\((?P<id>\d+)\)=(?P<hz>\d+)$")
_THROTTLED = re.compile(r"^throttled=(?P<bits>0x[0-9a-fA-F]+)$")
_VERSION = re.compile(r"^version (?P<hash>[0-9a-f]+)\b")

#: Bit -> meaning, from the Raspberry Pi documentation of ``vcgencmd get_throttled``.
THROTTLED_BITS: dict[int, str] = {
    0: "under-voltage detected",
    1: "arm frequency capped",
    2: "currently throttled",
    3: "soft temperature limit active",
    16: "under-voltage has occurred",
    17: "arm frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


@dataclass(frozen=True)
class Throttled:
    """The decoded ``get_throttled`` bit field. ``*_now`` bits are live, ``*_since_boot`` sticky."""

    raw: int
    under_voltage_now: bool
    frequency_capped_now: bool
    throttled_now: bool
    soft_temp_limit_now: bool
    under_voltage_since_boot: bool
    frequency_capped_since_boot: bool
    throttled_since_boot: bool
    soft_temp_limit_since_boot: bool

    @property
    def conditions(self) -> list[str]:
        """Human-readable names of the bits that are set, in bit order."""
        return [name for bit, name in THROTTLED_BITS.items() if self.raw >> bit & 1]

    @property
    def degraded_now(self) -> bool:
        """True while any live condition holds: a measurement taken now is not trustworthy."""
        return bool(self.raw & 0xF)


@dataclass(frozen=True)
class Clock:
    """One ``measure_clock`` answer. ``hz == 0`` means the block is idle or not reported."""

    clock_id: int
    hz: int


@dataclass(frozen=True)
class VcgencmdReadings:
    """Everything recognised in a text; lists keep the order of the commands."""

    temperatures_c: list[float] = field(default_factory=list)
    clocks: list[Clock] = field(default_factory=list)
    throttled: Throttled | None = None
    firmware_version: str | None = None
    firmware_date: str | None = None

    @property
    def temperature_c(self) -> float | None:
        """The last temperature read, or ``None``."""
        return self.temperatures_c[-1] if self.temperatures_c else None


def decode_throttled(value: int) -> Throttled:
    """Decode the ``get_throttled`` bit field.

    Example:
        >>> decode_throttled(0x80008).conditions
        ['soft temperature limit active', 'soft temperature limit has occurred']
    """
    bit = lambda n: bool(value >> n & 1)  # noqa: E731
    return Throttled(value, bit(0), bit(1), bit(2), bit(3), bit(16), bit(17), bit(18), bit(19))


def parse(text: str, *, source: str = "output") -> VcgencmdReadings:
    """Parse the output of one or more ``vcgencmd`` commands; refuse text with none of them."""
    temperatures: list[float] = []
    clocks: list[Clock] = []
    throttled: Throttled | None = None
    version = date = None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if match := _TEMP.match(line):
            temperatures.append(_figure(to_number, match.group("c"), line, source))
        elif match := _CLOCK.match(line):
            clocks.append(Clock(_figure(to_int, match.group("id"), line, source),
                                _figure(to_int, match.group("hz"), line, source)))
        elif match := _THROTTLED.match(line):
            if len(match.group("bits")) > 10:  # 0x + 8 hex digits: the field is 32 bits wide
                raise UnparsableOutput(TOOL, "not a reading (a get_throttled field wider than 32 bits)",
                                       source=source, line=line)
            throttled = decode_throttled(int(match.group("bits"), 16))
        elif match := _VERSION.match(line):
            version = match.group("hash")
            date = _version_date(lines[:index])
    if not (temperatures or clocks or throttled or version):
        first = lines[0] if lines else None
        raise UnparsableOutput(TOOL, "no temp=, frequency(N)=, throttled= or version line", source=source, line=first)
    return VcgencmdReadings(temperatures, clocks, throttled, version, date)


def _figure(convert: Callable[[str], T], text: str, line: str, source: str) -> T:
    """``convert(text)``, or :class:`UnparsableOutput` for a figure no firmware prints (``inf``, 40 digits)."""
    try:
        return convert(text)
    except ValueError as error:
        raise UnparsableOutput(TOOL, f"not a reading ({error})", source=source, line=line) from None


def _version_date(previous: list[str]) -> str | None:
    """``vcgencmd version`` prints the build date two lines above ``version``."""
    candidates = [line for line in previous[-2:] if not line.startswith("Copyright")]
    return candidates[-1] if candidates and re.match(r"^[A-Z][a-z]{2} +\d", candidates[-1]) else None
