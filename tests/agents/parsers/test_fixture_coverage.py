"""Every file under tests/fixtures has a parser, and either parses or is refused with a typed error.

The figures themselves are checked in the per-tool test modules; this module makes sure a
fixture added later cannot go unnoticed (it fails here until a parser claims it).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Callable

import pytest

from agents.base import DeviceUnavailable
from agents.parsers import (
    adb_errors,
    cpuinfo,
    dumpsys_battery,
    executor_runner,
    getprop,
    governor,
    jetson_clocks,
    nvpmodel,
    speed_benchmark_torch,
    tegrastats,
    tflite_benchmark,
    thermal,
    vcgencmd,
)
from agents.parsers.common import ModelRejected, ToolCrashed, UnparsableOutput


def _raise_adb(text: str, *, source: str) -> Any:
    error = adb_errors.classify(text, source=source)
    if error is not None:
        raise error
    return adb_errors.parse_devices(text, source=source)


# (glob under tests/fixtures, parser, outcome: "parsed" or the error class it must raise), first match wins
CLAIMS: list[tuple[str, Callable[..., Any], Any]] = [
    ("tflite_benchmark_model/v2.4_android_mi11_nnapi_failure.txt", tflite_benchmark.parse, ModelRejected),
    ("tflite_benchmark_model/v2.4_android_mi11_nnapi_op_profiling.txt", tflite_benchmark.parse, UnparsableOutput),
    ("tflite_benchmark_model/android_apk_logcat_grep_summary_only.txt", tflite_benchmark.parse, UnparsableOutput),
    ("tflite_benchmark_model/*", tflite_benchmark.parse, "parsed"),
    ("pytorch_speed_benchmark_torch/pixel4_vulkan_segfault_no_pep.txt", speed_benchmark_torch.parse, ToolCrashed),
    ("pytorch_speed_benchmark_torch/*", speed_benchmark_torch.parse, "parsed"),
    ("executorch_executor_runner/*", executor_runner.parse, "parsed"),
    ("rpi_vcgencmd/*", vcgencmd.parse, "parsed"),
    ("jetson/tegrastats_*", tegrastats.parse, "parsed"),
    ("jetson/nvpmodel_*", nvpmodel.parse, "parsed"),
    ("jetson/jetson_clocks_*", jetson_clocks.parse_show, "parsed"),
    ("android/dumpsys_battery_*", dumpsys_battery.parse, "parsed"),
    ("android/dumpsys_thermalservice_*", thermal.parse_thermalservice, "parsed"),
    ("android/thermal_zone_types_*", thermal.parse_zone_types, "parsed"),
    ("android/getprop_grep_*", getprop.parse, "parsed"),
    ("android/getprop_ro_*", getprop.parse_value, "parsed"),
    ("android/proc_cpuinfo_*", cpuinfo.parse, "parsed"),
    ("android/scaling_governor_*", governor.parse_tables, "parsed"),
    ("adb_errors/adb_devices_*", _raise_adb, "parsed"),
    ("adb_errors/*", _raise_adb, DeviceUnavailable),
]


def fixture_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.txt"))


def claim(name: str) -> tuple[Callable[..., Any], Any] | None:
    return next(((parser, outcome) for pattern, parser, outcome in CLAIMS if fnmatch.fnmatch(name, pattern)), None)


def test_every_fixture_is_claimed_by_a_parser(fixtures_dir: Path) -> None:
    names = fixture_files(fixtures_dir)
    assert len(names) >= 44
    assert [name for name in names if claim(name) is None] == []


def test_every_fixture_parses_or_is_refused_with_a_typed_one_line_error(fixtures_dir: Path) -> None:
    for name in fixture_files(fixtures_dir):
        parser, outcome = claim(name)  # type: ignore[misc]
        text = (fixtures_dir / name).read_text()
        if outcome == "parsed":
            assert parser(text, source=name) is not None, name
            continue
        with pytest.raises(outcome) as raised:
            parser(text, source=name)
        message = str(raised.value)
        assert name in message and "\n" not in message, message
