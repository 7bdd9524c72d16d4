"""cpufreq state: ``scaling_governor`` files and per-CPU governor/frequency tables.

The agents read every core at once with :data:`CPUFREQ_READ_COMMAND`, which prints
``cpuN governor cur min max`` per core (frequencies in kHz), the same columns as IREE's
``set_android_scaling_governor.sh`` table. :func:`parse_tables` reads both; the IREE
script prints a table before and one after changing the governor.

Example:
    >>> table = parse_table("cpu0 schedutil 1800000 300000 1800000")
    >>> table["cpu0"].governor, table["cpu0"].cur_khz
    ('schedutil', 1800000)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.parsers.common import UnparsableOutput, to_int

__all__ = ["CPUFREQ_READ_COMMAND", "CpuFreq", "parse_governor", "parse_table", "parse_tables"]

TOOL = "cpufreq"

CPUFREQ_READ_COMMAND = (
    "for c in /sys/devices/system/cpu/cpu[0-9]*; do f=$c/cpufreq; [ -d $f ] || continue; "
    'echo "${c##*/} $(cat $f/scaling_governor) $(cat $f/scaling_cur_freq) '
    '$(cat $f/scaling_min_freq) $(cat $f/scaling_max_freq)"; done'
)

_ROW = re.compile(r"^(?P<cpu>cpu\d+)\s+(?P<gov>[\w-]+)\s+(?P<cur>\d+)\s+(?P<min>\d+)\s+(?P<max>\d+)$")
_GOVERNOR = re.compile(r"^[a-z][\w-]*$")


@dataclass(frozen=True)
class CpuFreq:
    """One core's governor and frequencies (kHz): from cpufreq sysfs or Jetson's ``jetson_clocks --show``.

    ``online`` and ``idle_states`` (state name -> enabled) are only reported by ``jetson_clocks``.
    """

    governor: str
    cur_khz: int
    min_khz: int
    max_khz: int
    online: bool = True
    idle_states: dict[str, int] = field(default_factory=dict)

    @property
    def pinned_to_max(self) -> bool:
        """The governor holds the core at its maximum (what ``jetson_clocks`` / a performance lock does)."""
        return self.min_khz == self.max_khz == self.cur_khz


def parse_governor(text: str, *, source: str = "output") -> str:
    """The content of one ``scaling_governor`` file.

    Example:
        >>> parse_governor("performance\\n")
        'performance'
    """
    value = text.strip()
    if not _GOVERNOR.match(value):
        raise UnparsableOutput(TOOL, "not a governor name", source=source, line=value or "<empty>")
    return value


def parse_tables(text: str, *, source: str = "output") -> list[dict[str, CpuFreq]]:
    """Every run of ``cpuN governor cur min max`` rows, as one table each; other lines separate tables."""
    tables: list[dict[str, CpuFreq]] = []
    current: dict[str, CpuFreq] = {}
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match:
            current[match.group("cpu")] = _row(match, source)
        elif current:
            tables.append(current)
            current = {}
    if current:
        tables.append(current)
    if not tables:
        raise UnparsableOutput(TOOL, "no `cpuN governor cur min max` row", source=source)
    return tables


def _row(match: re.Match[str], source: str) -> CpuFreq:
    try:
        cur, low, high = (to_int(match.group(name)) for name in ("cur", "min", "max"))
    except ValueError as error:
        raise UnparsableOutput(TOOL, f"a frequency is not a kHz figure ({error})", source=source,
                               line=match.group(0)) from None
    return CpuFreq(match.group("gov"), cur, low, high)


def parse_table(text: str, *, source: str = "output") -> dict[str, CpuFreq]:
    """The last table in ``text`` (the current state)."""
    return parse_tables(text, source=source)[-1]
