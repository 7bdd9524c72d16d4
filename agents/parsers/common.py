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

import re
from typing import Iterable

from agents.base import AgentError, ArtifactRejected, RunFailed

__all__ = [
    "ModelRejected",
    "OutputError",
    "ToolCrashed",
    "UnparsableOutput",
    "crash_line",
    "key_values",
    "log_lines",
    "to_number",
]

#: Log-level prefixes newer TFLite / glog builds put before every line.
_LEVEL_PREFIX = re.compile(r"^(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG):\s?")
_KEY_VALUE = re.compile(r"([A-Za-z_][\w.]*)=(\S+)")
#: What a shell or the C++ runtime prints when a process dies (exit status 134 / 139 / 136).
_CRASH = re.compile(
    r"^(?:.*: )?(Segmentation fault|Aborted|Illegal instruction|Bus error|Floating point exception|Killed)\b"
    r"|^terminate called after throwing"
    r"|^Fatal signal \d+"
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
            text += f" (line: {line.strip()!r})"
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
    """Lines of ``text`` with trailing blanks and ``INFO:``/``ERROR:`` level prefixes removed."""
    return [_LEVEL_PREFIX.sub("", line.rstrip()) for line in text.splitlines()]


def to_number(text: str) -> float:
    """A decimal or scientific-notation number (``2.95034e+06``); raises ``ValueError`` otherwise."""
    return float(text.rstrip(".,;"))


def key_values(line: str) -> dict[str, float]:
    """All ``key=number`` pairs of a line: ``count=50 avg=2.95e+06`` -> ``{"count": 50.0, ...}``.

    Pairs whose value is not a number are skipped.
    """
    pairs: dict[str, float] = {}
    for key, value in _KEY_VALUE.findall(line):
        try:
            pairs[key] = to_number(value)
        except ValueError:
            continue
    return pairs


def crash_line(lines: Iterable[str]) -> str | None:
    """The first line announcing that the process died, or ``None``."""
    for line in lines:
        if _CRASH.search(line.strip()):
            return line
    return None
