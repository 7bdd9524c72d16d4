"""Android ``dumpsys battery``.

``Current Battery Service state:`` then indented ``key: value`` lines. ``temperature`` is
in tenths of a degree Celsius (``275`` = 27.5 °C), ``voltage`` in mV. Vendor builds add
their own lines: Samsung prints unindented keys (``USE_FAKE_BATTERY: false``), keys with
no value (``LLB MAN:``), bare section headers (``BatteryInfoBackUp``) and the same key
twice in different case (``Charge counter`` / ``charge counter``); every such line is kept
in ``fields`` under its exact spelling (first occurrence wins).

A battery HAL without a sensor (emulators, some boards) reports ``temperature: 0``
together with ``voltage: 0``; that pair gives ``temperature_c = None``, not 0 °C.

Example:
    >>> state = parse("Current Battery Service state:\\n  level: 19\\n  scale: 100\\n"
    ...               "  voltage: 3764\\n  temperature: 275")
    >>> state.temperature_c, state.level_percent
    (27.5, 19.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.parsers.common import UnparsableOutput

__all__ = ["BatteryState", "parse"]

TOOL = "dumpsys battery"
_HEADER = "Current Battery Service state:"
_INTEGER = re.compile(r"-?[0-9]{1,18}")
#: ``status`` codes of android.os.BatteryManager.
STATUS = {1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"}


@dataclass(frozen=True)
class BatteryState:
    """Battery figures; ``fields`` has every ``key: value`` line verbatim."""

    temperature_c: float | None
    level: int | None
    scale: int | None
    voltage_mv: int | None
    status: str | None
    plugged: list[str]
    technology: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def level_percent(self) -> float | None:
        if self.level is None:
            return None
        return 100.0 * self.level / (self.scale or 100)


def parse(text: str, *, source: str = "output") -> BatteryState:
    """Parse ``dumpsys battery``; refuse text without the service header or a temperature."""
    lines = text.splitlines()
    if not any(line.strip() == _HEADER for line in lines):
        raise UnparsableOutput(TOOL, f"no `{_HEADER}` header", source=source,
                               line=next((line for line in lines if line.strip()), None))
    fields: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.strip().partition(":")
        if colon and key and line.strip() != _HEADER:
            fields.setdefault(key.strip(), value.strip())
    if "temperature" not in fields:
        raise UnparsableOutput(TOOL, "no `temperature:` field", source=source)
    tenths = _int(fields, "temperature", source)
    voltage = _int(fields, "voltage", source)
    no_sensor = tenths == 0 and voltage in (0, None)
    status = _int(fields, "status", source)
    return BatteryState(
        temperature_c=None if no_sensor or tenths is None else tenths / 10.0,
        level=_int(fields, "level", source),
        scale=_int(fields, "scale", source),
        voltage_mv=voltage,
        status=STATUS.get(status, str(status)) if status is not None else None,
        plugged=[kind for kind in ("AC", "USB", "Wireless") if fields.get(f"{kind} powered") == "true"],
        technology=fields.get("technology"),
        fields=fields,
    )


def _int(fields: dict[str, str], key: str, source: str) -> int | None:
    """The field as an integer of at most 18 digits (no figure of this service is longer)."""
    if key not in fields:
        return None
    if not _INTEGER.fullmatch(fields[key]):
        raise UnparsableOutput(TOOL, f"field {key!r} is {fields[key][:40]!r}, not an integer", source=source)
    return int(fields[key])
