"""speed_benchmark_torch parser against every published output in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import ArtifactRejected, RunFailed
from agents.parsers.common import ModelRejected, ToolCrashed, UnparsableOutput
from agents.parsers.speed_benchmark_torch import parse

TOOL_DIR = "pytorch_speed_benchmark_torch"
# file -> (per-iteration us, summary us/iter, iters per second)
PARSED = {
    "v1.7.1_android_resnet18_report_pep.txt": ([599746, 570505, 583396], 584558, 1.71069),
    "android_mobile_perf_recipe_no_pep.txt": ([], 121318, 8.24281),
    "fuse_recipe_summary_fractional_us.txt": ([], 6189.07, 161.575),
}
REFUSED = {"pixel4_vulkan_segfault_no_pep.txt": ToolCrashed}


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / TOOL_DIR).iterdir()} == set(PARSED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_parses_the_published_figures(fixtures_dir: Path, name: str) -> None:
    per_iteration, summary, per_second = PARSED[name]
    result = parse((fixtures_dir / TOOL_DIR / name).read_text(), source=name)
    assert result.per_iteration_us == per_iteration
    assert result.summary_us_per_iter == summary
    assert result.iters_per_second == per_second


def test_observer_values_are_microseconds_given_as_strings(fixtures_dir: Path) -> None:
    result = parse((fixtures_dir / TOOL_DIR / "v1.7.1_android_resnet18_report_pep.txt").read_text())
    assert result.per_iteration_ms == [599.746, 570.505, 583.396]
    # the summary times the whole loop: a little above the mean of the observed iterations
    mean = sum(result.per_iteration_us) / 3
    assert result.summary_us_per_iter is not None
    assert mean <= result.summary_us_per_iter == pytest.approx(mean, rel=1e-4)


def test_segfault_after_the_summary_is_refused(fixtures_dir: Path) -> None:
    name = "pixel4_vulkan_segfault_no_pep.txt"
    with pytest.raises(ToolCrashed) as raised:
        parse((fixtures_dir / TOOL_DIR / name).read_text(), source=name)
    assert "Segmentation fault" in str(raised.value) and str(raised.value).startswith(name)
    assert isinstance(raised.value.agent_error(), RunFailed)


def test_unloadable_model_is_rejected() -> None:
    text = ("terminate called after throwing an instance of 'c10::Error'\n"
            "  what():  PytorchStreamReader failed reading zip archive: failed finding central directory\n"
            "Aborted\n")
    with pytest.raises(ModelRejected) as raised:
        parse(text)
    assert isinstance(raised.value.agent_error(), ArtifactRejected)


def test_bad_records_and_empty_output_are_refused() -> None:
    with pytest.raises(UnparsableOutput, match="unit 'ms'"):
        parse('PyTorchObserver {"type": "NET", "unit": "ms", "metric": "latency", "value": "5"}')
    with pytest.raises(UnparsableOutput, match="not a number"):
        parse('PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": "fast"}')
    with pytest.raises(UnparsableOutput, match="no `PyTorchObserver"):
        parse("Starting benchmark.\nRunning warmup runs.\n")


# --- issue 13, classes 3 and 5. SYNTHETIC texts built around the published v1.7.1 fixture.
OBSERVER = 'PyTorchObserver {"type": "NET", "unit": "us", "metric": "latency", "value": %s}'


def test_libcxx_uncaught_exception_after_the_summary_is_a_crash(fixtures_dir: Path) -> None:
    text = (fixtures_dir / TOOL_DIR / "v1.7.1_android_resnet18_report_pep.txt").read_text()
    with pytest.raises(ToolCrashed):
        parse(text + "libc++abi: terminating with uncaught exception of type c10::Error: The following operation failed in the TorchScript interpreter.\n")


@pytest.mark.parametrize("value", ['"nan"', '"inf"', '"1e999"', '"0"', '"-5"', "[" * 5000, '{"a": 1}', "true",
                                   '"' + "9" * 400 + '"'])
def test_hostile_observer_values_are_refused_typed(value: str) -> None:
    with pytest.raises(UnparsableOutput):
        parse(OBSERVER % value)


def test_hostile_summary_figures_are_refused_typed() -> None:
    for figure in ("e", "inf", "0", "-1"):
        with pytest.raises(UnparsableOutput):
            parse(f"Main run finished. Microseconds per iter: {figure}. Iters per second: 1.5")
