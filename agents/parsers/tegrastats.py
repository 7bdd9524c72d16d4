"""NVIDIA Jetson ``tegrastats`` lines, four generations of the format.

- L4T 28 (TX1): ``cpu [17%,13%,29%,5%]@408 EMC 1%@408 APE 25 GR3D 3%@76``: one frequency
  for all cores, no temperatures or power;
- 2019 (TX2): ``CPU [9%@345,...] EMC_FREQ 0% GR3D_FREQ 0% PLL@42.5C ... VDD_IN 3140/3208``:
  per-core frequency, rails ``current/average`` without a unit (mW);
- JetPack 6 (AGX Orin): a leading ``MM-DD-YYYY HH:MM:SS`` timestamp, ``GR3D_FREQ 0%@[0,0]``
  (one frequency per GPC), sensors at ``-256C`` when disabled, rails ``2340mW/2340mW``;
- Orin with media engines: ``NVENC 1%@115 NVDEC 40%@115 NVJPG off``, lower-case sensors.

Frequencies are MHz, power mW, temperatures °C. Disabled sensors (``-256C``) and the
TX2's placeholder ``PMIC@100C`` go to ``disabled_sensors``, not to ``temperatures_c``. A core
shown as ``off`` has ``load_pct None``.

Example:
    >>> sample = parse_line("RAM 2020/7852MB CPU [9%@345,off] GR3D_FREQ 0% GPU@41C VDD_IN 3140/3208")
    >>> sample.ram_used_mb, sample.cpus[0].freq_mhz, sample.temperatures_c, sample.power_mw["VDD_IN"]
    (2020, 345, {'GPU': 41.0}, (3140, 3208))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from agents.parsers.common import UnparsableOutput, to_int, to_number

__all__ = ["CpuCore", "Engine", "TegrastatsSample", "parse", "parse_line"]

TOOL = "tegrastats"

_TIMESTAMP = re.compile(r"^(?P<ts>\d\d-\d\d-\d{4} \d\d:\d\d:\d\d) ")
_RAM = re.compile(r"\bRAM (?P<used>\d+)/(?P<total>\d+)MB")
_SWAP = re.compile(r"\bSWAP (?P<used>\d+)/(?P<total>\d+)MB")
_CPU = re.compile(r"\b(?:CPU|cpu) \[(?P<cores>[^\]]*)\](?:@(?P<freq>\d+))?")
_CORE = re.compile(r"^(?P<load>\d+)%(?:@(?P<freq>\d+))?$")
_TEMPERATURE = re.compile(r"(?<![\w\[])(?P<name>[A-Za-z][\w]*)@(?P<c>-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b(?P<name>[A-Z][A-Z0-9_]*) (?P<cur>\d+)(?:mW)?/(?P<avg>\d+)(?:mW)?(?=\s|$)")
_ENGINE = re.compile(
    r"\b(?P<name>[A-Z][A-Z0-9_]*) (?:(?P<off>off)|(?P<load>\d+)%(?:@(?P<freq>\[[\d,]*\]|\d+))?)(?=\s|$)"
)
_PLAIN_FREQ = re.compile(r"\b(?P<name>[A-Z][A-Z0-9_]*) (?P<mhz>\d+)(?=\s|$)")
DISABLED_SENSOR_C = -256.0
#: Sensors some modules report with a fixed placeholder (TX2's PMIC always reads 100C).
PLACEHOLDER_READINGS = {("PMIC", 100.0)}


@dataclass(frozen=True)
class CpuCore:
    """One core: load in percent (``None`` when the core is off) and frequency in MHz."""

    load_pct: int | None
    freq_mhz: int | None


@dataclass(frozen=True)
class Engine:
    """An accelerator or memory controller: load percent and frequency(ies) in MHz; off = both None."""

    load_pct: int | None
    freq_mhz: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TegrastatsSample:
    """One ``tegrastats`` line."""

    timestamp: datetime | None
    ram_used_mb: int
    ram_total_mb: int
    swap_used_mb: int | None
    swap_total_mb: int | None
    cpus: list[CpuCore]
    engines: dict[str, Engine]
    frequencies_mhz: dict[str, int]
    temperatures_c: dict[str, float]
    disabled_sensors: list[str]
    power_mw: dict[str, tuple[int, int]]

    def max_temperature_c(self) -> float | None:
        return max(self.temperatures_c.values()) if self.temperatures_c else None


def parse(text: str, *, source: str = "output") -> list[TegrastatsSample]:
    """Parse every non-empty line; refuse text that holds no ``tegrastats`` line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UnparsableOutput(TOOL, "empty output", source=source)
    return [parse_line(line, source=source) for line in lines]


def parse_line(line: str, *, source: str = "output") -> TegrastatsSample:
    """Parse one line (any of the four formats); a garbled figure or timestamp is :class:`UnparsableOutput`."""
    line = line.strip()
    try:
        return _sample(line, source)
    except ValueError as error:
        if isinstance(error, UnparsableOutput):
            raise
        raise UnparsableOutput(TOOL, f"a garbled figure ({error})", source=source, line=line) from None


def _sample(line: str, source: str) -> TegrastatsSample:
    ram = _RAM.search(line)
    if ram is None:
        raise UnparsableOutput(TOOL, "no `RAM used/totalMB` field: not a tegrastats line", source=source, line=line)
    stamp = _TIMESTAMP.match(line)
    swap = _SWAP.search(line)
    temperatures: dict[str, float] = {}
    disabled: list[str] = []
    for match in _TEMPERATURE.finditer(line):
        value = _celsius(match.group("c"))
        if value is None or value <= DISABLED_SENSOR_C or (match.group("name"), value) in PLACEHOLDER_READINGS:
            disabled.append(match.group("name"))
        else:
            temperatures[match.group("name")] = value
    rest = _RAIL.sub(" ", _CPU.sub(" ", _RAM.sub(" ", _SWAP.sub(" ", line))))
    engines = {m.group("name"): _engine(m) for m in _ENGINE.finditer(rest)}
    return TegrastatsSample(
        timestamp=datetime.strptime(stamp.group("ts"), "%m-%d-%Y %H:%M:%S") if stamp else None,
        ram_used_mb=to_int(ram.group("used")),
        ram_total_mb=to_int(ram.group("total")),
        swap_used_mb=to_int(swap.group("used")) if swap else None,
        swap_total_mb=to_int(swap.group("total")) if swap else None,
        cpus=_cpus(line, source),
        engines=engines,
        frequencies_mhz={m.group("name"): to_int(m.group("mhz")) for m in _PLAIN_FREQ.finditer(_ENGINE.sub(" ", rest))},
        temperatures_c=temperatures,
        disabled_sensors=disabled,
        power_mw={m.group("name"): (to_int(m.group("cur")), to_int(m.group("avg"))) for m in _RAIL.finditer(line)},
    )


def _celsius(text: str) -> float | None:
    """A sensor reading, or ``None`` for one no sensor gives (``1e400`` digits overflow to ``inf``)."""
    try:
        return to_number(text)
    except ValueError:
        return None


def _cpus(line: str, source: str) -> list[CpuCore]:
    match = _CPU.search(line)
    if match is None:
        return []
    shared = to_int(match.group("freq")) if match.group("freq") else None
    cores: list[CpuCore] = []
    for cell in match.group("cores").split(","):
        cell = cell.strip()
        if cell == "off":
            cores.append(CpuCore(None, None))
            continue
        core = _CORE.match(cell)
        if core is None:
            raise UnparsableOutput(TOOL, f"CPU entry {cell!r} is neither `N%`, `N%@MHz` nor `off`", source=source,
                                   line=line)
        freq = core.group("freq")
        cores.append(CpuCore(to_int(core.group("load")), to_int(freq) if freq else shared))
    return cores


def _engine(match: re.Match[str]) -> Engine:
    if match.group("off"):
        return Engine(None, [])
    freq = match.group("freq")
    if freq is None:
        return Engine(to_int(match.group("load")), [])
    return Engine(to_int(match.group("load")), [to_int(f) for f in freq.strip("[]").split(",") if f])
