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
