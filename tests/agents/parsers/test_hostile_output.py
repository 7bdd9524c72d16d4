"""Property-based: every parser of device output, fed arbitrary or damaged text, parses or refuses typed.

For each parser, two kinds of input (hypothesis):

- arbitrary text (any Unicode, any line breaks);
- a real published output of its tool (``tests/fixtures``) damaged by 1-3 mutations:
  truncation, a number replaced by ``inf``/``nan``/``1e999``/400 digits/0/-1, a hostile line
  inserted (JSON nested 5000 deep, a 20 000-character word, a crash banner), every line
  given an ``adb logcat`` prefix, or a line dropped.

The outcome must be either a result whose every number is finite and of a magnitude a tool
can print (floats at most 1e18, integers under 30 digits; for the benchmark parsers a latency
in (0, one day] and a count >= 1) or a typed error:
:class:`~agents.parsers.common.OutputError` (``DeviceUnavailable`` for the adb
classifier). Any other exception fails the test.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.base import DeviceUnavailable
from agents.parsers import adb_errors, cpuinfo, dumpsys_battery, executor_runner, getprop, governor, jetson_clocks
from agents.parsers import nvpmodel, speed_benchmark_torch, tegrastats, tflite_benchmark, thermal, vcgencmd
from agents.parsers.common import MAX_COUNT, MAX_DURATION_US, OutputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXAMPLES = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE_NUMBERS = ["inf", "-inf", "nan", "NaN", "Infinity", "1e999", "-1e999", "9" * 400, "0", "-1", "1e308",
                   "0.0", "1" * 5000]
HOSTILE_LINES = [
    "[" * 5000,
    "{" * 3000,
    'PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": ' + "[" * 5000,
    'PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "nan"}',
    "a" * 20_000,
    "count=" + "9" * 400 + " curr=1",
    "count=0 curr=0",
    "Segmentation fault",
    "libc++abi: terminating with uncaught exception of type std::bad_alloc: std::bad_alloc",
    "05-30 15:16:45.362  3380  3380 F libc    : Fatal signal 6 (SIGABRT), code -1 (SI_QUEUE) in tid 3380",
    "I 00:00:00.043703 executorch:executor_runner.cpp:379] Model executed successfully 0 time(s) in 0.0 ms.",
    "Online CPUs: 0-20000000",
    "Temperature{mValue=1e999, mType=0, mName=AP, mStatus=0}",
    "0\tcpu\tnan",
    "temp=" + "9" * 400 + "'C",
    "RAM 1/2MB CPU [" + "9" * 400 + "%@1] GPU@1e999C",
    "12-99-2024 25:61:61 RAM 1/2MB",
    "List of devices attached",
    "R58M123\tno permissions (user in plugdev group; are your udev rules wrong?)",
    "adb.exe: error: more than one device/emulator",
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _tflite(text: str, *, source: str) -> Any:
    result = tflite_benchmark.parse(text, source=source)
    for stats in (result.main, result.warmup):
        if stats is not None:
            assert 1 <= stats.count <= MAX_COUNT
            for value in (stats.first_us, stats.curr_us, stats.min_us, stats.max_us, stats.avg_us, stats.std_us):
                assert 0 <= value <= MAX_DURATION_US
    assert 0 < result.main.avg_us <= MAX_DURATION_US and 0 < result.inference_avg_us <= MAX_DURATION_US
    return result


def _op_profile(text: str, *, source: str) -> Any:
    profile = tflite_benchmark.parse_op_profile(text, source=source)
    assert all(0 <= row.avg_ms <= MAX_DURATION_US and 0 <= row.avg_percent <= 100 for row in profile.by_node_type)
    return profile


def _speed_benchmark(text: str, *, source: str) -> Any:
    result = speed_benchmark_torch.parse(text, source=source)
    assert all(0 < value <= MAX_DURATION_US for value in result.per_iteration_us)
    if result.summary_us_per_iter is not None:
        assert 0 < result.summary_us_per_iter <= MAX_DURATION_US
    return result


def _executor(text: str, *, source: str) -> Any:
    result = executor_runner.parse(text, source=source)
    assert 1 <= result.executions <= MAX_COUNT
    assert 0 < result.total_ms <= MAX_DURATION_US / 1000 and math.isfinite(result.per_run_ms)
    return result


def _adb(text: str, *, source: str) -> Any:
    error = adb_errors.classify(text, source=source)
    if error is not None:
        raise error
    devices = adb_errors.parse_devices(text, source=source)
    return adb_errors.require_online(devices, None, source=source) if devices else devices


#: Synthetic (not a published output): ZONE_READ_COMMAND's format, as the agents print it.
SYNTHETIC_ZONE_READINGS = ("0\tbattery\t31000\n1\tcpu-0-0\t45000\n2\tcpu-0-0\t45\n3\tskin\t-2000\n",)

# (name, parser, fixture glob under tests/fixtures, or synthetic seed texts, for the damaged-output inputs)
PARSERS: list[tuple[str, Callable[..., Any], str | tuple[str, ...]]] = [
    ("tflite_benchmark.parse", _tflite, "tflite_benchmark_model/*.txt"),
    ("tflite_benchmark.parse_op_profile", _op_profile, "tflite_benchmark_model/*profiling*.txt"),
    ("speed_benchmark_torch.parse", _speed_benchmark, "pytorch_speed_benchmark_torch/*.txt"),
    ("executor_runner.parse", _executor, "executorch_executor_runner/*.txt"),
    ("adb_errors", _adb, "adb_errors/*.txt"),
    ("vcgencmd.parse", vcgencmd.parse, "rpi_vcgencmd/*.txt"),
    ("tegrastats.parse", tegrastats.parse, "jetson/tegrastats_*.txt"),
    ("nvpmodel.parse", nvpmodel.parse, "jetson/nvpmodel_*.txt"),
    ("jetson_clocks.parse_show", jetson_clocks.parse_show, "jetson/jetson_clocks_*.txt"),
    ("dumpsys_battery.parse", dumpsys_battery.parse, "android/dumpsys_battery_*.txt"),
    ("thermal.thermalservice_temperatures", thermal.thermalservice_temperatures, "android/dumpsys_thermalservice_*"),
    ("thermal.parse_zone_types", thermal.parse_zone_types, "android/thermal_zone_types_*.txt"),
    ("thermal.parse_zone_readings", thermal.parse_zone_readings, SYNTHETIC_ZONE_READINGS),
    ("getprop.parse", getprop.parse, "android/getprop_*.txt"),
    ("getprop.parse lenient", lambda text, *, source: getprop.parse(text, source=source, strict=False),
     "android/getprop_*.txt"),
    ("getprop.parse_value", getprop.parse_value, "android/getprop_ro_*.txt"),
    ("governor.parse_tables", governor.parse_tables, "android/scaling_governor_*.txt"),
    ("governor.parse_governor", governor.parse_governor, "android/scaling_governor_*.txt"),
    ("cpuinfo.parse", cpuinfo.parse, "android/proc_cpuinfo_*.txt"),
]


def numbers(value: Any) -> Iterator[int | float]:
    """Every int and float inside a result (dataclasses, dicts, lists, tuples)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, datetime)):
        return
    if isinstance(value, (int, float)):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from numbers(getattr(value, field.name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from numbers(item)


def check(parser: Callable[..., Any], text: str) -> None:
    """The property: a result with finite numbers only, or a typed refusal whose message is one line."""
    try:
        result = parser(text, source="hostile output")
    except (OutputError, DeviceUnavailable) as error:
        assert "\n" not in str(error)
        return
    for number in numbers(result):
        limit = 1e18 if isinstance(number, float) else 10**30
        assert math.isfinite(number) and abs(number) <= limit, (number, text[:300])


def fixture_texts(pattern: str | tuple[str, ...]) -> list[str]:
    if isinstance(pattern, tuple):
        return list(pattern)
    texts = [path.read_text() for path in sorted(FIXTURES.glob(pattern))]
    assert texts, f"no fixture matches {pattern}"
    return texts


def _replace_number(text: str, index: int, token: str) -> str:
    spans = [match.span() for match in _NUMBER.finditer(text)]
    if not spans:
        return text + token
    start, end = spans[index % len(spans)]
    return text[:start] + token + text[end:]


def _insert_line(text: str, index: int, line: str) -> str:
    lines = text.splitlines()
    position = index % (len(lines) + 1)
    return "\n".join(lines[:position] + [line] + lines[position:])


def _drop_line(text: str, index: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:index % len(lines)] + lines[index % len(lines) + 1:]) if lines else text


def _logcat(text: str) -> str:
    return "\n".join(f"05-30 15:16:45.362  3380  3380 I tflite  : {line}" for line in text.splitlines())


MUTATIONS: list[Callable[[str, int, str, str], str]] = [
    lambda text, index, number, line: text[: index % (len(text) + 1)],
    lambda text, index, number, line: _replace_number(text, index, number),
    lambda text, index, number, line: _insert_line(text, index, line),
    lambda text, index, number, line: _drop_line(text, index),
    lambda text, index, number, line: _logcat(text),
]


@st.composite
def damaged(draw: st.DrawFn, texts: list[str]) -> str:
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 3))):
        mutate = draw(st.sampled_from(MUTATIONS))
        text = mutate(text, draw(st.integers(0, 10_000)), draw(st.sampled_from(HOSTILE_NUMBERS)),
                      draw(st.sampled_from(HOSTILE_LINES)))
    return text


@pytest.mark.parametrize("name, parser, pattern", PARSERS, ids=[name for name, _, _ in PARSERS])
def test_arbitrary_text_parses_finite_or_is_refused_typed(
        name: str, parser: Callable[..., Any], pattern: str | tuple[str, ...]) -> None:
    @EXAMPLES
    @given(st.text(max_size=400))
    def property_holds(text: str) -> None:
        check(parser, text)

    property_holds()


@pytest.mark.parametrize("name, parser, pattern", PARSERS, ids=[name for name, _, _ in PARSERS])
def test_damaged_real_output_parses_finite_or_is_refused_typed(
        name: str, parser: Callable[..., Any], pattern: str | tuple[str, ...]) -> None:
    @EXAMPLES
    @given(damaged(fixture_texts(pattern)))
    def property_holds(text: str) -> None:
        check(parser, text)

    property_holds()


@pytest.mark.parametrize("line", HOSTILE_LINES)
@pytest.mark.parametrize("name, parser, pattern", PARSERS, ids=[name for name, _, _ in PARSERS])
def test_every_hostile_line_alone_and_after_a_real_output(
        name: str, parser: Callable[..., Any], pattern: str | tuple[str, ...], line: str) -> None:
    check(parser, line)
    for text in fixture_texts(pattern):
        check(parser, text + "\n" + line)
