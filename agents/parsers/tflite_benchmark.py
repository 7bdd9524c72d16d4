"""TFLite ``benchmark_model`` output, every format from v1.12 (2018) to v2.20 (2026).

``benchmark_model`` prints only aggregates, never per-run times:

- one ``count= first= curr= min= max= avg= std=`` line per phase (warm-up, then the
  main runs), v2.20 adds ``p5= median= p95=``; a phase of one run prints ``count=1 curr=``;
- a summary, ``Inference timings in us: Init: .., First inference: .., Warmup (avg): ..,
  Inference (avg): ..`` since ~v1.14, or ``Average inference timings in us: Warmup: ..,
  Init: .., no stats: ..`` before;
- newer builds prefix every line with ``INFO:`` and print large values in scientific
  notation (``avg=2.95034e+06``);
- with ``--enable_op_profiling`` the per-operator tables (:func:`parse_op_profile`).

All times are microseconds, as printed. Failures (``Benchmarking failed.``, a delegate
that fails to prepare, an invalid flatbuffer) raise :class:`ModelRejected`; a crash, even
one printed after the summary (``libc++abi: terminating ...``, ``Fatal signal 6``), raises
:class:`ToolCrashed`. Lines read from ``adb logcat`` (the Android benchmark app logs there,
``05-30 15:16:45.362  3380  3380 I tflite  : count=...``) parse like the console's.

A result needs the summary line, which the tool prints only after the main runs: a run
killed during its main phase has printed the warm-up's ``count=`` line and nothing after
it, and is refused rather than read as the warm-up's average. Every figure must be finite
and within a day; the main runs' average must be positive and agree with the summary's.

Example:
    >>> result = parse("count=50 first=10 curr=9 min=8 max=12 avg=9.5 std=1\\n"
    ...                "Inference timings in us: Init: 5, First inference: 10, "
    ...                "Warmup (avg): 11, Inference (avg): 9.5")
    >>> result.main.count, result.inference_avg_us
    (50, 9.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.parsers.common import (
    MAX_COUNT,
    ModelRejected,
    ToolCrashed,
    UnparsableOutput,
    checked_number,
    crash_line,
    key_values,
    log_lines,
    to_int,
    to_number,
)

__all__ = ["OpTypeTiming", "OpProfile", "RunStats", "TFLiteBenchmarkResult", "parse", "parse_op_profile"]

TOOL = "benchmark_model"

_STATS_LINE = re.compile(r"^count=\d+\s")
_PHASE_START = re.compile(r"^Running benchmark for (?:at least )?\d+ iterations")
#: The summary's average and the main runs' ``avg=`` are one figure printed twice (6 digits).
_SUMMARY_TOLERANCE = 1e-3
_PERCENTILE = re.compile(r"p\d+|median")
_PROFILER_TIMINGS = "Timings (microseconds):"
_SUMMARY = re.compile(r"^Inference timings in us:(?P<body>.*)$")
_LEGACY_SUMMARY = re.compile(r"^Average inference timings in us:(?P<body>.*)$")
_PARAMETER = re.compile(r"^(?P<name>[A-Za-z#][^:\[\]]*?)\s*:\s*\[(?P<value>[^\]]*)\]$")
_MEMORY = re.compile(r"^(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\):(.*)$")
_ERROR_WORD = re.compile(r"error|failed", re.IGNORECASE)
#: Messages that mean "this model cannot run in this configuration" (permanent).
_REJECTIONS = (
    "Benchmarking failed",
    "Failed to apply",
    "failed to prepare",
    "Failed to mmap model",
    "not a valid Flatbuffer",
    "Failed to construct interpreter",
    "Failed to allocate tensors",
    "Didn't find op for builtin opcode",
    "Encountered unresolved custom op",
)


@dataclass(frozen=True)
class RunStats:
    """One ``count=...`` line: the aggregate of a phase, in microseconds.

    A one-run phase prints only ``count=1 curr=``; ``first``/``min``/``max``/``avg`` then
    equal ``curr`` and ``std`` is 0.
    """

    count: int
    first_us: float
    curr_us: float
    min_us: float
    max_us: float
    avg_us: float
    std_us: float
    percentiles_us: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_line(cls, line: str, *, source: str = "output") -> "RunStats":
        """The stats of one ``count=`` line; :class:`UnparsableOutput` if a figure is missing or absurd."""
        garbled: list[str] = []
        values = key_values(line, skipped=garbled)
        if garbled:
            raise UnparsableOutput(TOOL, f"`{garbled[0]}=` is not a finite number", source=source, line=line)
        if "count" not in values or "curr" not in values:
            missing = "count" if "count" not in values else "curr"
            raise UnparsableOutput(TOOL, f"a stats line without a numeric `{missing}=`", source=source, line=line)
        count = values["count"]
        if count != int(count):
            raise UnparsableOutput(TOOL, f"count={count:g} is not a whole number", source=source, line=line)
        checked_number(count, "count", tool=TOOL, source=source, line=line, minimum=1, maximum=MAX_COUNT)
        for name, value in values.items():
            if name != "count":
                checked_number(value, name, tool=TOOL, source=source, line=line)
        curr = values["curr"]
        return cls(
            count=int(count),
            first_us=values.get("first", curr),
            curr_us=curr,
            min_us=values.get("min", curr),
            max_us=values.get("max", curr),
            avg_us=values.get("avg", curr),
            std_us=values.get("std", 0.0),
            percentiles_us={k: v for k, v in values.items() if _PERCENTILE.fullmatch(k)},
        )


@dataclass(frozen=True)
class TFLiteBenchmarkResult:
    """The figures of one ``benchmark_model`` invocation (microseconds unless named otherwise).

    ``main`` is the aggregate of the timed runs; ``inference_avg_us`` the summary's average
    (the same figure, from the summary line where printed). ``parameters`` holds the
    ``Name: [value]`` echo of the flags (``Num threads``, ``Graph``, ``Use xnnpack`` ...).
    """

    main: RunStats
    warmup: RunStats | None
    inference_avg_us: float
    init_us: float | None
    first_inference_us: float | None
    warmup_avg_us: float | None
    summary_format: str  # "inference_timings" or "legacy_average"
    parameters: dict[str, str] = field(default_factory=dict)
    memory_mb: dict[str, float] = field(default_factory=dict)

    @property
    def inference_avg_ms(self) -> float:
        return self.inference_avg_us / 1000.0


@dataclass(frozen=True)
class OpTypeTiming:
    """One row of the ``Summary by node type`` table of an op-profiling run."""

    node_type: str
    count: int
    avg_ms: float
    avg_percent: float
    times_called: int


@dataclass(frozen=True)
class OpProfile:
    """Per-operator-type averages of the regular runs, and the profiler's own run aggregate."""

    by_node_type: list[OpTypeTiming]
    timings: RunStats


def parse(text: str, *, source: str = "output") -> TFLiteBenchmarkResult:
    """Parse a ``benchmark_model`` run; raise an :class:`~agents.parsers.common.OutputError` if it holds no timing.

    The main-run stats are the last ``count=`` line before the summary (op-profiling tables
    are not ``count=`` lines); the one before it, where present, is the warm-up.
    """
    lines = log_lines(text)
    crashed = crash_line(lines)
    if crashed is not None:
        raise ToolCrashed(TOOL, "the benchmark process died", source=source, line=crashed)
    summaries = [index for index, line in enumerate(lines) if _SUMMARY.match(line) or _LEGACY_SUMMARY.match(line)]
    stats_at = [index for index, line in enumerate(lines) if _STATS_LINE.match(line)]
    if not stats_at and not summaries:
        _raise_for_failure(lines, source)
        if any(line.startswith(_PROFILER_TIMINGS) for line in lines):
            raise UnparsableOutput(
                TOOL,
                "only op-profiling tables, no main-run timing (`count=` line or `Inference timings in us:`); "
                "pass the whole output, or use parse_op_profile() for the per-operator figures",
                source=source,
            )
        raise UnparsableOutput(TOOL, "no `count=` line and no `Inference timings in us:` summary", source=source)
    _raise_for_failure(lines, source)
    if not summaries:
        raise UnparsableOutput(TOOL, _unfinished_reason(lines, stats_at), source=source)
    if len(summaries) > 1:
        raise UnparsableOutput(TOOL, f"{len(summaries)} summary lines: the output of several runs, pass one",
                               source=source, line=lines[summaries[1]])
    summary_at = summaries[0]
    stats = [RunStats.from_line(lines[index], source=source) for index in stats_at if index < summary_at]
    if len(stats) < len(stats_at):
        raise UnparsableOutput(TOOL, "a `count=` line after the summary: a second run that did not finish",
                               source=source, line=lines[stats_at[-1]])
    if not stats:
        raise UnparsableOutput(TOOL, "a summary line but no `count=` line for the main runs", source=source)
    main = stats[-1]
    warmup = stats[-2] if len(stats) >= 2 else None
    fields, summary_format = _summary(lines[summary_at], source)
    inference_avg = fields.get("Inference (avg)", fields.get("no stats", main.avg_us))
    checked_number(main.avg_us, "the main runs' avg", tool=TOOL, source=source, line=lines[stats_at[-1]],
                   above_minimum=True)
    if abs(inference_avg - main.avg_us) > _SUMMARY_TOLERANCE * main.avg_us:
        raise UnparsableOutput(
            TOOL, f"the summary's average {inference_avg:g} us disagrees with the main runs' avg={main.avg_us:g}",
            source=source, line=lines[summary_at])
    return TFLiteBenchmarkResult(
        main=main,
        warmup=warmup,
        inference_avg_us=inference_avg,
        init_us=fields.get("Init"),
        first_inference_us=fields.get("First inference"),
        warmup_avg_us=fields.get("Warmup (avg)", fields.get("Warmup")),
        summary_format=summary_format,
        parameters=_parameters(lines),
        memory_mb=_memory(lines),
    )


def _unfinished_reason(lines: list[str], stats_at: list[int]) -> str:
    """Why ``count=`` lines without a summary are not a result, naming the phase that was cut off."""
    last = stats_at[-1] if stats_at else -1
    if any(_PHASE_START.match(line) for line in lines[last + 1:]):
        return ("no `Inference timings in us:` summary: the run stopped during its main runs (killed or timed out) "
                "and the `count=` line printed is the warm-up's")
    return ("no `Inference timings in us:` summary after the `count=` lines: the run did not finish "
            "(killed, timed out, or the output was cut off)")


def parse_op_profile(text: str, *, source: str = "output") -> OpProfile:
    """The ``Summary by node type`` table and ``Timings`` of the *regular* runs (``--enable_op_profiling``).

    Example:
        >>> table = ("Operator-wise Profiling Info for Regular Benchmark Runs:\\n"
        ...          "=== Summary by node type ===\\n"
        ...          "\\t[Node type]\\t[count]\\t[avg ms]\\t[avg %]\\t[cdf %]\\t[mem KB]\\t[times called]\\n"
        ...          "\\tCONV_2D\\t2\\t1.5\\t75.000%\\t75.000%\\t0.000\\t2\\n"
        ...          "Timings (microseconds): count=10 first=2 curr=2 min=2 max=2 avg=2 std=0\\n")
        >>> parse_op_profile(table).by_node_type[0].avg_ms
        1.5
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "Profiling Info for Regular Benchmark Runs" in line), None)
    if start is None:
        raise UnparsableOutput(
            TOOL, "no `Operator-wise Profiling Info for Regular Benchmark Runs` section; run with "
            "--enable_op_profiling=true", source=source)
    rows: list[OpTypeTiming] = []
    in_summary = False
    for line in lines[start:]:
        if "Summary by node type" in line:
            in_summary = True
            continue
        if line.startswith(_PROFILER_TIMINGS):
            if not rows:
                break
            return OpProfile(by_node_type=rows,
                             timings=RunStats.from_line(line[len(_PROFILER_TIMINGS):], source=source))
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if in_summary and len(cells) == 7 and not cells[0].startswith("["):
            rows.append(_op_type_row(cells, line, source))
    raise UnparsableOutput(TOOL, "the op-profiling section has no `Summary by node type` table with `Timings`",
                           source=source)


def _op_type_row(cells: list[str], line: str, source: str) -> OpTypeTiming:
    """One ``Summary by node type`` row: type, count, avg ms, avg %, cdf %, mem KB, times called."""
    try:
        avg_ms, percent = to_number(cells[2]), to_number(cells[3].rstrip("%"))
        count, times_called = to_int(cells[1]), to_int(cells[6])
    except ValueError as error:
        raise UnparsableOutput(TOOL, f"a garbled `Summary by node type` row ({error})", source=source,
                               line=line) from None
    checked_number(avg_ms, "avg ms", tool=TOOL, source=source, line=line)
    checked_number(percent, "avg %", tool=TOOL, source=source, line=line, maximum=100.0)
    checked_number(count, "count", tool=TOOL, source=source, line=line, maximum=MAX_COUNT)
    checked_number(times_called, "times called", tool=TOOL, source=source, line=line, maximum=MAX_COUNT)
    return OpTypeTiming(cells[0], count, avg_ms, percent, times_called)


def _summary(line: str, source: str) -> tuple[dict[str, float], str]:
    """The ``Name: value`` fields of a summary line and which of the two formats it is."""
    match = _SUMMARY.match(line)
    name = "inference_timings"
    if match is None:
        match, name = _LEGACY_SUMMARY.match(line), "legacy_average"
    assert match is not None  # the caller found the line by these two patterns
    fields: dict[str, float] = {}
    for part in match.group("body").split(","):
        field_name, colon, text = part.partition(":")
        field_name = field_name.strip()
        try:
            value = to_number(text.strip())
        except ValueError:
            raise UnparsableOutput(TOOL, f"summary field {field_name[:40]!r} is {text.strip()[:40]!r}, not a number",
                                   source=source, line=line) from None
        fields[field_name] = checked_number(value, f"summary field {field_name[:40]!r}", tool=TOOL, source=source,
                                            line=line)
    if "Inference (avg)" not in fields and "no stats" not in fields:
        raise UnparsableOutput(TOOL, "the summary has no `Inference (avg):` (or legacy `no stats:`) figure",
                               source=source, line=line)
    return fields, name


def _raise_for_failure(lines: list[str], source: str) -> None:
    verdict = next((line for line in lines if any(marker in line for marker in _REJECTIONS)), None)
    if verdict is not None:
        cause = next((line for line in lines if _ERROR_WORD.search(line)), verdict)
        raise ModelRejected(TOOL, f"the tool refused the model: {verdict.strip()}", source=source, line=cause)


def _parameters(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        match = _PARAMETER.match(line.strip())
        if match:
            found.setdefault(match.group("name").strip(), match.group("value"))
    return found


def _memory(lines: list[str]) -> dict[str, float]:
    for line in lines:
        match = _MEMORY.match(line)
        if match:
            return key_values(match.group(1))
    return {}
