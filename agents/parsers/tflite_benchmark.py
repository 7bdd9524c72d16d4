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
that fails to prepare, an invalid flatbuffer) raise :class:`ModelRejected`; a crash raises
:class:`ToolCrashed`.

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
    ModelRejected,
    ToolCrashed,
    UnparsableOutput,
    crash_line,
    key_values,
    log_lines,
    to_number,
)

__all__ = ["OpTypeTiming", "OpProfile", "RunStats", "TFLiteBenchmarkResult", "parse", "parse_op_profile"]

TOOL = "benchmark_model"

_STATS_LINE = re.compile(r"^count=\d+\s")
_PERCENTILE = re.compile(r"p\d+|median")
_PROFILER_TIMINGS = "Timings (microseconds):"
_SUMMARY = re.compile(r"^Inference timings in us:(?P<body>.*)$")
_LEGACY_SUMMARY = re.compile(r"^Average inference timings in us:(?P<body>.*)$")
_SUMMARY_FIELD = re.compile(r"\s*(?P<name>[A-Za-z][A-Za-z ()]*?):\s*(?P<value>[-+0-9.eE]+)")
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
    def from_line(cls, line: str) -> "RunStats":
        values = key_values(line)
        curr = values["curr"]
        return cls(
            count=int(values["count"]),
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
    summary_format: str  # "inference_timings", "legacy_average", or "stats_only"
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

    The main-run stats are the last ``count=`` line outside the op-profiling tables; the
    one before it, where present, is the warm-up.
    """
    lines = log_lines(text)
    crashed = crash_line(lines)
    if crashed is not None:
        raise ToolCrashed(TOOL, "the benchmark process died", source=source, line=crashed)
    stats = [RunStats.from_line(line) for line in lines if _STATS_LINE.match(line)]
    summary = _summary(lines)
    if not stats and summary is None:
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
    if not stats:
        raise UnparsableOutput(TOOL, "a summary line but no `count=` line for the main runs", source=source)
    main = stats[-1]
    warmup = stats[-2] if len(stats) >= 2 else None
    fields, summary_format = summary if summary is not None else ({}, "stats_only")
    inference_avg = fields.get("Inference (avg)", fields.get("no stats", main.avg_us))
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
            return OpProfile(by_node_type=rows, timings=RunStats.from_line(line[len(_PROFILER_TIMINGS):]))
        cells = [cell.strip() for cell in line.split("\t") if cell.strip()]
        if in_summary and len(cells) == 7 and not cells[0].startswith("["):
            rows.append(OpTypeTiming(cells[0], int(cells[1]), to_number(cells[2]),
                                     to_number(cells[3].rstrip("%")), int(cells[6])))
    raise UnparsableOutput(TOOL, "the op-profiling section has no `Summary by node type` table with `Timings`",
                           source=source)


def _summary(lines: list[str]) -> tuple[dict[str, float], str] | None:
    for line in lines:
        for pattern, name in ((_SUMMARY, "inference_timings"), (_LEGACY_SUMMARY, "legacy_average")):
            match = pattern.match(line)
            if match:
                body = match.group("body")
                fields = {m.group("name").strip(): to_number(m.group("value")) for m in _SUMMARY_FIELD.finditer(body)}
                return fields, name
    return None


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
