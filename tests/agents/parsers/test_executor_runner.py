"""ExecuTorch runner parser against every published output in tests/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import ModelRejected, ToolCrashed, UnparsableOutput
from agents.parsers.executor_runner import parse

TOOL_DIR = "executorch_executor_runner"
# file -> (executions, total ms, timing source)
PARSED = {
    "executor_runner_mv2_xnnpack_timed.txt": (1, 15.013292, "reported"),
    # derived: 00:00:06.887939 (executed) - 00:00:00.007490 (inputs prepared)
    "executor_runner_mv2_portable_legacy_untimed.txt": (1, 6880.449, "log_timestamps"),
    # derived: 00:00:00.364824 - 00:00:00.357555
    "qnn_executor_runner_android_dlv3.txt": (1, 7.269, "log_timestamps"),
}


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / TOOL_DIR).iterdir()} == set(PARSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_parses_or_derives_the_time(fixtures_dir: Path, name: str) -> None:
    executions, total_ms, timing = PARSED[name]
    result = parse((fixtures_dir / TOOL_DIR / name).read_text(), source=name)
    assert (result.executions, result.timing) == (executions, timing)
    assert result.total_ms == pytest.approx(total_ms, abs=1e-9)


def test_several_executions_give_the_per_run_mean() -> None:
    line = "I 00:00:01.000000 executorch:executor_runner.cpp:379] Model executed successfully 20 time(s) in 301.5 ms."
    assert parse(line).per_run_ms == pytest.approx(15.075)


def test_untimed_without_inputs_timestamp_is_refused() -> None:
    with pytest.raises(UnparsableOutput, match="carries no timing"):
        parse("I 00:00:06.887939 executorch:executor_runner.cpp:171] Model executed successfully.\n")


def test_error_lines_are_typed() -> None:
    with pytest.raises(ModelRejected):
        parse("E 00:00:00.001000 executorch:executor_runner.cpp:90] Loading of program failed with status 0x22\n")
    with pytest.raises(ToolCrashed):
        parse("E 00:00:00.101000 executorch:executor_runner.cpp:170] Execution of method forward failed "
              "with status 0x1\n")
    with pytest.raises(UnparsableOutput, match="no `Model executed successfully`"):
        parse("I 00:00:00.004885 executorch:executor_runner.cpp:73] Model file mv2.pte is loaded.\n")


# --- issue 13, classes 3 and 5. SYNTHETIC lines in the format of the published fixtures.
def _log(message: str, time: str = "00:00:01.000000") -> str:
    return f"I {time} executorch:executor_runner.cpp:379] {message}"


def test_zero_executions_or_a_garbled_time_is_refused_not_divided_by() -> None:
    for line in ("Model executed successfully 0 time(s) in 0.0 ms.", "Model executed successfully 3 time(s) in -1 ms.",
                 "Model executed successfully 3 time(s) in 1e999 ms.", "Model executed successfully 3 time(s) in e ms.",
                 "Model executed successfully " + "9" * 40 + " time(s) in 1.0 ms."):
        with pytest.raises(UnparsableOutput):
            parse(_log(line))


def test_a_release_build_without_log_lines_is_refused_with_the_build_fix() -> None:
    release_output = "OutputX 0: tensor(sizes=[1, 1000], [-0.50, 0.12, ..., 1.30])\n"
    with pytest.raises(UnparsableOutput, match="EXECUTORCH_ENABLE_LOGGING=ON") as raised:
        parse(release_output, source="pixel8 output")
    assert "Release build" in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(UnparsableOutput, match="EXECUTORCH_ENABLE_LOGGING=ON"):
        parse("")


def test_per_iteration_lines_are_kept_and_must_match_the_count() -> None:
    lines = [_log("Iteration 1 of 2: 10.5 ms"), _log("Iteration 2 of 2: 9.5 ms"),
             _log("Model executed successfully 2 time(s) in 20.0 ms.")]
    result = parse("\n".join(lines))
    assert result.per_iteration_ms == [10.5, 9.5] and result.per_run_ms == 10.0
    with pytest.raises(UnparsableOutput, match="1 `Iteration` lines for 2 executions"):
        parse("\n".join(lines[1:]))


def test_log_timestamps_that_run_backwards_are_refused() -> None:
    text = "\n".join([_log("Inputs prepared.", "00:00:05.000000"), _log("Model executed successfully.", "00:00:01.0")])
    with pytest.raises(UnparsableOutput, match="outside"):
        parse(text)
