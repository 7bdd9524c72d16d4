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

Error lines (``E HH:MM:SS ...``) that mention loading or parsing the program raise
:class:`ModelRejected`; other error lines and crashes raise :class:`ToolCrashed`.

Example:
    >>> parse("I 00:00:00.043703 executorch:executor_runner.cpp:379] "
    ...       "Model executed successfully 4 time(s) in 20.0 ms.").per_run_ms
    5.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.parsers.common import ModelRejected, ToolCrashed, UnparsableOutput, crash_line, to_number

__all__ = ["ExecutorRunnerResult", "parse"]

TOOL = "executor_runner"

_LOG = re.compile(r"^(?P<level>[IWEF]) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?) (?P<where>\S+)\] (?P<message>.*)$")
_TIMED = re.compile(r"Model executed successfully (?P<n>\d+) time\(s\) in (?P<ms>[-+0-9.eE]+) ms\.")
_UNTIMED = "Model executed successfully."
_INPUTS_READY = "Inputs prepared."
_LOAD_WORDS = re.compile(r"load|pars|program|magic|header|Invalid|verif", re.IGNORECASE)


@dataclass(frozen=True)
class ExecutorRunnerResult:
    """``executions`` runs took ``total_ms`` together; ``timing`` says where the figure comes from."""

    executions: int
    total_ms: float
    timing: str  # "reported" (the runner's own line) or "log_timestamps" (derived, see module doc)

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
    for match, _ in logged:
        timed = _TIMED.search(match.group("message"))
        if timed:
            return ExecutorRunnerResult(int(timed.group("n")), to_number(timed.group("ms")), "reported")
    started = next((_seconds(m) for m, _ in logged if m.group("message").strip() == _INPUTS_READY), None)
    finished = next((_seconds(m) for m, _ in logged if m.group("message").strip() == _UNTIMED), None)
    if finished is None:
        raise UnparsableOutput(TOOL, "no `Model executed successfully` line", source=source)
    if started is None:
        raise UnparsableOutput(
            TOOL, "`Model executed successfully.` carries no timing and no `Inputs prepared.` timestamp "
            "precedes it to derive one; use a runner that prints `... N time(s) in X ms.`", source=source)
    return ExecutorRunnerResult(1, round((finished - started) * 1000.0, 6), "log_timestamps")


def _seconds(match: re.Match[str]) -> float:
    return int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))
