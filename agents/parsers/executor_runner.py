"""ExecuTorch ``executor_runner`` (and ``qnn_executor_runner``) output.

Current runners print the total time of all executions::

    I 00:00:00.043703 executorch:executor_runner.cpp:379] Model executed successfully 1 time(s) in 15.013292 ms.

Early runners (2023) and the Qualcomm runner print only ``Model executed successfully.``
*Choice made here:* the time is then derived from the runner's own log timestamps, from
``Inputs prepared.`` to ``Model executed successfully.``. In both runners' sources only
``method->execute()`` runs between those two log calls, and the timestamps have
microsecond resolution, so the interval is the execution time of that one run plus two
log calls. The result records ``timing="log_timestamps"`` so nobody mistakes it for the
runner's own figure; without both timestamps the output is refused.

Current runners also log each execution (``Iteration 3 of 20: 15.1 ms``); those times are
kept in ``per_iteration_ms``.

Error lines (``E HH:MM:SS ...``) that mention loading or parsing the program raise
:class:`ModelRejected`; other error lines and crashes raise :class:`ToolCrashed`.

Every one of those lines is an ``ET_LOG`` call, and a runner built with
``-DCMAKE_BUILD_TYPE=Release`` compiles ``ET_LOG`` out (``EXECUTORCH_ENABLE_LOGGING``
defaults to off there): it prints its outputs and no timing at all. Such output is refused
with the fix in the message (:data:`RELEASE_BUILD_HINT`). A reported count of 0 executions,
a time that is not a positive finite figure of at most a day, or log timestamps that run
backwards are refused as :class:`UnparsableOutput`.

Example:
    >>> parse("I 00:00:00.043703 executorch:executor_runner.cpp:379] "
    ...       "Model executed successfully 4 time(s) in 20.0 ms.").per_run_ms
    5.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.parsers.common import (
    MAX_COUNT,
    MAX_DURATION_US,
    ModelRejected,
    ToolCrashed,
    UnparsableOutput,
    checked_number,
    crash_line,
    to_int,
    to_number,
)

__all__ = ["RELEASE_BUILD_HINT", "ExecutorRunnerResult", "parse"]

TOOL = "executor_runner"

_LOG = re.compile(r"^(?P<level>[IWEF]) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?) (?P<where>\S+)\] (?P<message>.*)$")
_TIMED = re.compile(r"Model executed successfully (?P<n>\d+) time\(s\) in (?P<ms>[-+0-9.eE]+) ms\.")
_UNTIMED = "Model executed successfully."
_INPUTS_READY = "Inputs prepared."
_ITERATION = re.compile(r"^Iteration (?P<i>\d+) of (?P<n>\d+): (?P<ms>[-+0-9.eE]+) ms$")
_LOAD_WORDS = re.compile(r"load|pars|program|magic|header|Invalid|verif", re.IGNORECASE)
_MAX_DURATION_MS = MAX_DURATION_US / 1000.0
#: What to do about a runner that prints no log lines (appended to the refusal).
RELEASE_BUILD_HINT = (
    "a Release build of executor_runner compiles ET_LOG out and prints no timing; rebuild it with logging on: "
    "cmake -DCMAKE_BUILD_TYPE=Release -DEXECUTORCH_ENABLE_LOGGING=ON ... && cmake --build . --target executor_runner"
)


@dataclass(frozen=True)
class ExecutorRunnerResult:
    """``executions`` runs took ``total_ms`` together; ``timing`` says where the figure comes from."""

    executions: int
    total_ms: float
    timing: str  # "reported" (the runner's own line) or "log_timestamps" (derived, see module doc)
    per_iteration_ms: list[float] = field(default_factory=list)

    @property
    def per_run_ms(self) -> float:
        return self.total_ms / self.executions


def parse(text: str, *, source: str = "output") -> ExecutorRunnerResult:
    """Parse one runner invocation; raise an :class:`~agents.parsers.common.OutputError` without a timing."""
    lines = [line.rstrip() for line in text.splitlines()]
    logged = [(m, line) for line in lines if (m := _LOG.match(line))]
    for match, line in logged:
        if match.group("level") in "EF":
            error_class = ModelRejected if _LOAD_WORDS.search(match.group("message")) else ToolCrashed
            raise error_class(TOOL, "the runner logged an error", source=source, line=line)
    crashed = crash_line(lines)
    if crashed is not None:
        raise ToolCrashed(TOOL, "the runner process died", source=source, line=crashed)
    if not logged:
        raise UnparsableOutput(TOOL, f"no `I HH:MM:SS.ffffff ...]` log line at all; {RELEASE_BUILD_HINT}",
                               source=source, line=next((line for line in lines if line.strip()), None))
    for match, line in logged:
        timed = _TIMED.search(match.group("message"))
        if timed:
            return _reported(timed, line, [m for m, _ in logged], source)
    started = next((_seconds(m) for m, _ in logged if m.group("message").strip() == _INPUTS_READY), None)
    finished = next((_seconds(m) for m, _ in logged if m.group("message").strip() == _UNTIMED), None)
    if finished is None:
        raise UnparsableOutput(TOOL, "no `Model executed successfully` line", source=source)
    if started is None:
        raise UnparsableOutput(
            TOOL, "`Model executed successfully.` carries no timing and no `Inputs prepared.` timestamp "
            "precedes it to derive one; use a runner that prints `... N time(s) in X ms.`", source=source)
    elapsed_ms = round((finished - started) * 1000.0, 6)
    checked_number(elapsed_ms, "the time from `Inputs prepared.` to `Model executed successfully.` (ms)", tool=TOOL,
                   source=source, maximum=_MAX_DURATION_MS, above_minimum=True)
    return ExecutorRunnerResult(1, elapsed_ms, "log_timestamps")


def _reported(timed: re.Match[str], line: str, logged: list[re.Match[str]], source: str) -> ExecutorRunnerResult:
    """The runner's own ``N time(s) in X ms`` figure, checked, with its per-iteration lines."""
    try:
        executions, total_ms = to_int(timed.group("n")), to_number(timed.group("ms"))
    except ValueError as error:
        raise UnparsableOutput(TOOL, f"a garbled timing line ({error})", source=source, line=line) from None
    checked_number(executions, "the number of executions", tool=TOOL, source=source, line=line,
                   minimum=1, maximum=MAX_COUNT)
    checked_number(total_ms, "the total time (ms)", tool=TOOL, source=source, line=line,
                   maximum=_MAX_DURATION_MS, above_minimum=True)
    per_iteration: list[float] = []
    for match in logged:
        iteration = _ITERATION.match(match.group("message").strip())
        if iteration is None:
            continue
        try:
            value = to_number(iteration.group("ms"))
        except ValueError:
            raise UnparsableOutput(TOOL, "a garbled `Iteration i of N: X ms` line", source=source,
                                   line=match.group(0)) from None
        per_iteration.append(checked_number(value, "an iteration's time (ms)", tool=TOOL, source=source,
                                            line=match.group(0), maximum=_MAX_DURATION_MS))
    if per_iteration and len(per_iteration) != executions:
        raise UnparsableOutput(TOOL, f"{len(per_iteration)} `Iteration` lines for {executions} executions",
                               source=source, line=line)
    return ExecutorRunnerResult(executions, total_ms, "reported", per_iteration)


def _seconds(match: re.Match[str]) -> float:
    return int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))
