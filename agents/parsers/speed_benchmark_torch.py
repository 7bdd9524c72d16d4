"""PyTorch Mobile ``speed_benchmark_torch`` output.

With ``--report_pep true`` the tool prints one line per timed iteration::

    PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "599746"}

(the value is microseconds, *as a string*), and always the summary::

    Main run finished. Microseconds per iter: 584558. Iters per second: 1.71069

Warm-up iterations print no observer line. A process that dies (``Segmentation fault``,
an uncaught ``c10::Error``, Android's ``libc++abi: terminating with uncaught exception of
type ...``) is refused even where the summary was printed before the crash; a model the
runtime cannot open is refused as :class:`ModelRejected`. An observer record that is not
a flat JSON object (deeply nested, truncated) and any latency that is not a positive,
finite figure of at most a day are refused as :class:`UnparsableOutput`.

Example:
    >>> result = parse('PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "1500"}\\n'
    ...                'Main run finished. Microseconds per iter: 1500. Iters per second: 666.7')
    >>> result.per_iteration_ms, result.summary_us_per_iter
    ([1.5], 1500.0)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from agents.parsers.common import (
    ModelRejected,
    ToolCrashed,
    UnparsableOutput,
    checked_number,
    crash_line,
    log_lines,
    to_number,
)

__all__ = ["SpeedBenchmarkTorchResult", "parse"]

TOOL = "speed_benchmark_torch"

_OBSERVER = "PyTorchObserver "
_SUMMARY = re.compile(
    r"Main run finished\. Microseconds per iter: (?P<us>[-+0-9.eE]+)\. Iters per second: (?P<ips>[-+0-9.eE]+)"
)
#: What the lite interpreter says when the file is not a loadable model.
_LOAD_FAILURES = (
    "PytorchStreamReader failed",
    "open file failed",
    "failed finding central directory",
    "Unknown builtin op",
    "Could not run",
    "isn't a valid",
)


@dataclass(frozen=True)
class SpeedBenchmarkTorchResult:
    """Per-iteration latencies (``--report_pep``) and the summary's mean, microseconds."""

    per_iteration_us: list[float] = field(default_factory=list)
    summary_us_per_iter: float | None = None
    iters_per_second: float | None = None

    @property
    def per_iteration_ms(self) -> list[float]:
        return [value / 1000.0 for value in self.per_iteration_us]


def parse(text: str, *, source: str = "output") -> SpeedBenchmarkTorchResult:
    """Parse one invocation; raise an :class:`~agents.parsers.common.OutputError` when it holds no timing."""
    lines = log_lines(text)
    _raise_for_load_failure(lines, source)
    crashed = crash_line(lines)
    if crashed is not None:
        raise ToolCrashed(TOOL, "the benchmark process died; its figures are not trusted", source=source, line=crashed)
    per_iteration = [_observer_value(line, source) for line in lines if line.startswith(_OBSERVER)]
    summary = next((m for m in map(_SUMMARY.search, lines) if m), None)
    if summary is None and not per_iteration:
        raise UnparsableOutput(
            TOOL, "no `PyTorchObserver {...}` line and no `Main run finished. Microseconds per iter:` summary",
            source=source)
    return SpeedBenchmarkTorchResult(
        per_iteration_us=[value for value in per_iteration if value is not None],
        summary_us_per_iter=_summary_figure(summary, "us", source) if summary else None,
        iters_per_second=_summary_figure(summary, "ips", source) if summary else None,
    )


def _summary_figure(summary: re.Match[str], group: str, source: str) -> float:
    what = "Microseconds per iter" if group == "us" else "Iters per second"
    try:
        value = to_number(summary.group(group))
    except ValueError:
        raise UnparsableOutput(TOOL, f"`{what}` is {summary.group(group)!r}, not a number", source=source,
                               line=summary.group(0)) from None
    return checked_number(value, what, tool=TOOL, source=source, line=summary.group(0), above_minimum=True)


def _observer_value(line: str, source: str) -> float | None:
    """The latency of one observer line in microseconds; other metrics give ``None``."""
    try:
        record = json.loads(line[len(_OBSERVER):])
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError; nesting can recurse
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise UnparsableOutput(TOOL, f"malformed observer record ({reason})", source=source, line=line[:200]) from None
    if not isinstance(record, dict):
        raise UnparsableOutput(TOOL, f"observer record is a JSON {type(record).__name__}, not an object",
                               source=source, line=line[:200])
    metric, kind, unit, value = record.get("metric"), record.get("type"), record.get("unit"), record.get("value")
    if metric != "latency" or kind != "NET":
        return None
    if unit != "us":
        raise UnparsableOutput(TOOL, f"unit {unit!r}, expected 'us'", source=source, line=line)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise UnparsableOutput(TOOL, f"latency value {value!r} is not a number", source=source, line=line[:200])
    try:
        latency = to_number(str(value))
    except ValueError:
        raise UnparsableOutput(TOOL, f"latency value {value!r} is not a number", source=source, line=line) from None
    return checked_number(latency, "an observer latency", tool=TOOL, source=source, line=line, above_minimum=True)


def _raise_for_load_failure(lines: list[str], source: str) -> None:
    for line in lines:
        if any(marker in line for marker in _LOAD_FAILURES):
            raise ModelRejected(TOOL, "the runtime could not load the model", source=source, line=line)
