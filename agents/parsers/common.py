"""What every parser of on-device tool output shares: typed refusals and small text helpers.

A parser either returns the figures a tool printed or raises an :class:`OutputError`
whose one-line message names the source (a file or ``"<device> output"``), the tool and
what is wrong. Three kinds tell the farm what to do next:

- :class:`UnparsableOutput`: the text holds none of the expected figures (truncated,
  wrong tool, new format). Mapped to :class:`agents.base.RunFailed` (retryable).
- :class:`ModelRejected`: the tool said it cannot load or prepare the model (bad file,
  unsupported op, delegate failure). Mapped to :class:`agents.base.ArtifactRejected`.
- :class:`ToolCrashed`: the tool died (segmentation fault, abort). Mapped to
  :class:`agents.base.RunFailed`; figures printed before the crash are not trusted.

Example:
    >>> try:
    ...     raise UnparsableOutput("benchmark_model", "no `count=` line", source="pixel7 output")
    ... except OutputError as error:
    ...     print(error)
    pixel7 output: benchmark_model: no `count=` line
"""

from __future__ import annotations

import math
import re
from typing import Iterable

from agents.base import AgentError, ArtifactRejected, RunFailed

__all__ = [
    "ModelRejected",
    "OutputError",
    "ToolCrashed",
    "UnparsableOutput",
    "MAX_COUNT",
    "MAX_DURATION_US",
    "checked_number",
    "crash_line",
    "key_values",
    "log_lines",
    "to_int",
    "to_number",
]

#: The longest duration a benchmark figure may state: one day, in microseconds.
MAX_DURATION_US = 86_400e6
#: The most runs, executions or iterations a tool may report for one invocation.
MAX_COUNT = 10**9
#: More digits than any figure a tool prints; longer runs of digits are refused, not converted.
_MAX_DIGITS = 30
_MAX_MAGNITUDE = 1e18

#: Log-level prefixes newer TFLite / glog builds put before every line.
_LEVEL_PREFIX = re.compile(r"^(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG):\s?")
#: ``adb logcat`` prefixes: threadtime (``05-30 15:16:45.362  3380  3380 I tflite  : ``, the
#: default since Android 7) and brief (``I/tflite  ( 3380): ``, ``I/tflite: ``).
_LOGCAT_PREFIX = re.compile(
    r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+ +\d+ +\d+ +[VDIWEFA]|[VDIWEFA]/)[^:]*: ?"
)
#: The look-behind keeps a long word without ``=`` from being rescanned at every offset.
_KEY_VALUE = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)=(\S+)")
#: What a shell, the C++ runtime (libstdc++, Android's libc++) or Android's debuggerd prints
#: when a process dies (exit status 134 / 137 / 139 / 136), with or without a prefix.
_CRASH = re.compile(
    r"^(?:.*:\s+)?(?:\d+\s+)?(Segmentation fault|Aborted|Illegal instruction|Bus error|Floating point exception"
    r"|Killed)\b"
    r"|\bterminate called (?:after throwing|without an active exception)"
    r"|\bterminating (?:with|due to) uncaught exception\b"
    r"|^libc\+\+abi: terminating\b"
    r"|\bFatal signal \d+"
)


class OutputError(ValueError):
    """Tool output that yields no measurement. ``str(error)`` is one line."""

    def __init__(self, tool: str, reason: str, *, source: str = "output", line: str | None = None) -> None:
        self.tool = tool
        self.reason = reason
        self.source = source
        self.line = line
        text = f"{source}: {tool}: {reason}"
        if line is not None:
            text += f" (line: {line.strip()[:200]!r})"
        super().__init__(text)

    def agent_error(self) -> AgentError:
        """The :mod:`agents.base` error the farm should see for this output."""
        return RunFailed(str(self))


class UnparsableOutput(OutputError):
    """The expected figures are not in the text (truncated, unknown format, wrong tool)."""


class ModelRejected(OutputError):
    """The tool refused the model: it failed to load, verify or prepare it. Permanent."""

    def agent_error(self) -> AgentError:
        return ArtifactRejected(str(self))


class ToolCrashed(OutputError):
    """The tool process died (signal, uncaught exception); whatever it printed is not trusted."""


def log_lines(text: str) -> list[str]:
    """Lines of ``text`` without trailing blanks, ``adb logcat`` prefixes or ``INFO:``/``ERROR:`` levels.

    Example:
        >>> log_lines("05-30 15:16:45.362  3380  3380 I tflite  : count=50 curr=9\\nINFO: STARTING!")
        ['count=50 curr=9', 'STARTING!']
    """
    return [_LEVEL_PREFIX.sub("", _LOGCAT_PREFIX.sub("", line.rstrip())) for line in text.splitlines()]


def to_number(text: str) -> float:
    """A finite decimal or scientific-notation number (``2.95034e+06``); raises ``ValueError`` otherwise.

    ``inf``, ``nan``, values that overflow to them (``1e999``) and magnitudes above 1e18,
    which no tool prints (a day is 8.64e10 us), are not numbers here.

    Example:
        >>> to_number("2.95034e+06,")
        2950340.0
    """
    stripped = text.rstrip(".,;")
    if len(stripped) > _MAX_DIGITS + 10:
        raise ValueError(f"{stripped[:20]}...: too long for a number a tool prints")
    value = float(stripped)
    if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
        raise ValueError(f"{stripped!r} is not a finite number of at most 1e18")
    return value


def to_int(text: str) -> int:
    """A non-negative decimal integer of at most 30 digits; raises ``ValueError`` otherwise.

    Example:
        >>> to_int("1800000")
        1800000
    """
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or len(stripped) > _MAX_DIGITS:
        raise ValueError(f"{stripped[:40]!r} is not an integer of at most {_MAX_DIGITS} digits")
    return int(stripped)


def checked_number(value: float, what: str, *, tool: str, source: str, line: str | None = None,
                   minimum: float = 0.0, maximum: float = MAX_DURATION_US, above_minimum: bool = False) -> float:
    """``value`` if it lies in ``[minimum, maximum]`` (``(minimum, maximum]`` with ``above_minimum``).

    Otherwise :class:`UnparsableOutput` naming ``what``: a figure outside the range a tool
    can print is a garbled or foreign output, never a measurement.

    Example:
        >>> checked_number(0.0, "avg", tool="benchmark_model", source="pixel7 output", above_minimum=True)
        Traceback (most recent call last):
        ...
        agents.parsers.common.UnparsableOutput: pixel7 output: benchmark_model: avg is 0, outside (0, 8.64e+10]
    """
    low_ok = value > minimum if above_minimum else value >= minimum
    if math.isfinite(value) and low_ok and value <= maximum:
        return value
    bracket = "(" if above_minimum else "["
    raise UnparsableOutput(tool, f"{what} is {value:g}, outside {bracket}{minimum:g}, {maximum:g}]",
                           source=source, line=line)


def key_values(line: str, *, skipped: list[str] | None = None) -> dict[str, float]:
    """All ``key=number`` pairs of a line: ``count=50 avg=2.95e+06`` -> ``{"count": 50.0, ...}``.

    Pairs whose value is not a finite number are skipped; their keys are appended to
    ``skipped`` where given, so a caller can refuse a line whose figure is garbled.

    Example:
        >>> garbled: list[str] = []
        >>> key_values("count=50 avg=inf std=3", skipped=garbled), garbled
        ({'count': 50.0, 'std': 3.0}, ['avg'])
    """
    pairs: dict[str, float] = {}
    for key, value in _KEY_VALUE.findall(line):
        try:
            pairs[key] = to_number(value)
        except ValueError:
            if skipped is not None:
                skipped.append(key)
    return pairs


def crash_line(lines: Iterable[str]) -> str | None:
    """The first line announcing that the process died, or ``None``."""
    for line in lines:
        if _CRASH.search(line.strip()):
            return line
    return None
