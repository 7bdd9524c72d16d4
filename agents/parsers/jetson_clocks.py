"""Jetson ``jetson_clocks --show`` (and the L4T 28 ``jetson_clocks.sh --show``).

Both print the SoC, the online CPUs, one line per CPU with its governor and frequencies
(kHz), then GPU and EMC lines (Hz) and the fan. Differences handled:

- L4T 28 spells ``Gonvernor=`` and has no ``Online=`` / ``IdleStates``;
- newer releases put two spaces after ``cpuN:``, add ``Active GPU TPCs: N`` and
  ``FAN Dynamic Speed Control=... hwmon0_pwm1=88`` instead of ``Fan: speed=255``;
- lines the tool did not mean as output (``Failed to retrieve unit state: Access denied``
  from a snap sandbox) are kept in ``warnings``.

Example:
    >>> show = parse_show("cpu0: Online=1 Governor=schedutil MinFreq=1 MaxFreq=2 CurrentFreq=2")
    >>> show.cpus[0].governor, show.cpus[0].cur_khz
    ('schedutil', 2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from agents.parsers.common import UnparsableOutput, to_int
from agents.parsers.cpuinfo import parse_cpu_list, parse_online
from agents.parsers.governor import CpuFreq

__all__ = ["ClockRange", "JetsonClocks", "parse_cpu_list", "parse_show"]

TOOL = "jetson_clocks"
#: More CPUs than any board has; a larger CPU number is garbled output.
MAX_CPUS = 4096
T = TypeVar("T")

_SOC = re.compile(r"^SOC family:(?P<family>\S+)\s+Machine:(?P<machine>.+)$")
_CPU = re.compile(r"^cpu(?P<n>\d+):\s+(?P<rest>.*)$")
_PAIR = re.compile(r"(\w+)=(\S+)")
_BLOCK = re.compile(r"^(?P<name>GPU|EMC|DLA\d*|PVA\d*|CVNAS)\s+(?P<rest>MinFreq=.*)$")


@dataclass(frozen=True)
class ClockRange:
    """GPU / EMC clocks in Hz, as printed."""

    min_hz: int
    max_hz: int
    current_hz: int
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JetsonClocks:
    soc_family: str | None
    machine: str | None
    online_cpus: list[int]
    cpus: dict[int, CpuFreq]
    blocks: dict[str, ClockRange]
    fan: dict[str, str]
    active_gpu_tpcs: int | None
    warnings: list[str]


def parse_show(text: str, *, source: str = "output") -> JetsonClocks:
    """Parse ``jetson_clocks --show``; refuse text without any ``cpuN:`` line."""
    soc = machine = None
    online: list[int] = []
    cpus: dict[int, CpuFreq] = {}
    blocks: dict[str, ClockRange] = {}
    fan: dict[str, str] = {}
    tpcs: int | None = None
    warnings: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if not line:
            continue
        if match := _SOC.match(line):
            soc, machine = match.group("family"), match.group("machine").strip()
        elif line.startswith("Online CPUs:"):
            online = _online_cpus(line.split(":", 1)[1], source, line)
        elif match := _CPU.match(line):
            cpus[_read(to_int, match.group("n"), source, line)] = _cpu(match.group("rest"), source, line)
        elif match := _BLOCK.match(line):
            blocks[match.group("name")] = _read(_clock_range, match.group("rest"), source, line)
        elif line.startswith("Active GPU TPCs:"):
            tpcs = _read(to_int, line.split(":", 1)[1], source, line)
        elif line.upper().startswith("FAN"):
            fan.update(_PAIR.findall(line.replace("Dynamic Speed Control", "Dynamic_Speed_Control")))
        elif line.startswith("CPU Cluster Switching:"):
            continue
        else:
            warnings.append(line)
    if not cpus:
        raise UnparsableOutput(TOOL, "no `cpuN: ... Governor=` line", source=source)
    return JetsonClocks(soc, machine, online, cpus, blocks, fan, tpcs, warnings)


def _read(convert: Callable[[str], T], text: str, source: str, line: str) -> T:
    """``convert(text)``, a missing or garbled field (``KeyError``/``ValueError``) as :class:`UnparsableOutput`."""
    try:
        return convert(text)
    except (KeyError, ValueError) as error:
        raise UnparsableOutput(TOOL, f"line lacks or garbles {error}", source=source, line=line) from None


def _online_cpus(listed: str, source: str, line: str) -> list[int]:
    """The ``Online CPUs:`` list, its numbers bounded before a range like ``0-20000000`` is expanded."""
    if any(len(number) > 4 or int(number) >= MAX_CPUS for number in re.findall(r"\d+", listed)):
        raise UnparsableOutput(TOOL, f"a CPU number of {MAX_CPUS} or more in `Online CPUs:`", source=source, line=line)
    return parse_online(listed, source=source)


def _clock_range(rest: str) -> ClockRange:
    pairs = dict(_PAIR.findall(rest))
    return ClockRange(to_int(pairs.pop("MinFreq")), to_int(pairs.pop("MaxFreq")), to_int(pairs.pop("CurrentFreq")),
                      pairs)


def _cpu(rest: str, source: str, line: str) -> CpuFreq:
    head, _, idle = rest.partition("IdleStates:")
    pairs = dict(_PAIR.findall(head))
    governor = pairs.get("Governor", pairs.get("Gonvernor"))  # L4T 28 misspells it
    try:
        return CpuFreq(
            governor=governor or "",
            cur_khz=to_int(pairs["CurrentFreq"]),
            min_khz=to_int(pairs["MinFreq"]),
            max_khz=to_int(pairs["MaxFreq"]),
            online=pairs.get("Online", "1") == "1",
            idle_states={k: to_int(v) for k, v in _PAIR.findall(idle)},
        )
    except (KeyError, ValueError) as error:
        raise UnparsableOutput(TOOL, f"CPU line lacks or garbles {error}", source=source, line=line) from None
