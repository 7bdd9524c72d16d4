"""The runner-result schema: real runner output passes; malformed or hostile results are a typed RunFailed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.base import RunFailed
from agents.runner_result import (
    DeviceSetupError,
    MalformedResult,
    RunnerDied,
    decode_runner_line,
    parse_runner_line,
    parse_runner_result,
    runner_exit_error,
)

RUNNER = Path(__file__).resolve().parents[2] / "agents" / "runner.py"
GOOD_RUN: dict[str, Any] = {
    "ok": True, "runner_version": 1, "mode": "run", "samples_ms": [[1.5, 1.25], [2.0]], "errors": [None, None],
    "load_ms": [3.0, 4.0], "threads": 2, "wall_s": 0.5, "temperatures_start_c": {"cpu": 41.0},
    "temperatures_end_c": {"cpu": 43.5},
    "facts": {"hostname": "pi4", "cpu_model": "Cortex-A72", "online_cores": [0, 1, 2, 3], "affinity": [2, 3],
              "cpufreq": {"0": {"governor": "performance", "cur_freq": "1800000", "min_freq": None,
                                "max_freq": "1800000"}},
              "thermal_c": {"cpu": 43.5}, "free_memory_mb": 812.5,
              "tools": {"vcgencmd_measure_temp": {"command": ["vcgencmd"], "returncode": 0,
                                                  "stdout": "temp=43.5'C\n", "stderr": ""}}},
    "runtime_versions": {"torch": "2.5.0"},
}


def run_real_runner(job: dict[str, Any]) -> str:
    done = subprocess.run([sys.executable, str(RUNNER), "-"], input=json.dumps(job), capture_output=True,
                          text=True, timeout=120, check=False)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("job, artifacts", [({"mode": "probe"}, 0), ({"mode": "temperatures"}, 0),
                                            ({"mode": "run", "artifacts": [], "schedule": []}, 0)])
def test_the_real_runners_results_pass_the_schema(job: dict[str, Any], artifacts: int) -> None:
    result = parse_runner_line(run_real_runner(job), device="local", mode=job["mode"], artifacts=artifacts)
    assert result["ok"] is True
    if job["mode"] == "probe":
        assert isinstance(result["facts"]["online_cores"], list) and result["facts"]["online_cores"]


def test_a_well_formed_run_result_comes_back_whole() -> None:
    assert parse_runner_result(GOOD_RUN, device="pi4", mode="run", artifacts=2) == GOOD_RUN
    hello = parse_runner_line('{"ok": true, "runner_version": 1, "serving": true, "pid": 4242}', device="pi4",
                              mode="hello")
    assert hello["pid"] == 4242


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    """GOOD_RUN with the field at ``path`` replaced by ``value`` (``...`` deletes it)."""
    result = json.loads(json.dumps(GOOD_RUN))
    holder = result
    for key in path[:-1]:
        holder = holder[key]
    if value is ...:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return result


@pytest.mark.parametrize("path, value, words", [
    (["samples_ms"], ..., "samples_ms: missing"),
    (["samples_ms"], "x", "samples_ms: a list, not str"),
    (["samples_ms"], [[1.0]], "1 entries for 2 artifacts"),
    (["samples_ms", 0, 0], float("nan"), "not finite"),
    (["samples_ms", 0, 0], float("inf"), "not finite"),
    (["samples_ms", 0, 0], -1.0, "outside"),
    (["samples_ms", 0, 0], True, "a number, not bool"),
    (["errors", 1], "boom", "errors[1]: an object, not str"),
    (["errors", 1], {"stage": "run", "kind": "failed", "message": None}, "errors[1].message"),
    (["errors", 1], {"stage": "run", "kind": "failed"}, "errors[1].message: missing"),
    (["facts"], [], "facts: an object, not list"),
    (["facts", "cpufreq", "0"], "fast", "facts.cpufreq.0"),
    (["facts", "online_cores"], list(range(5000)), "more than 4096"),
    (["facts", "affinity"], ["2"], "facts.affinity[0]: an integer"),
    (["wall_s"], None, "wall_s: a number, not null"),
    (["threads"], 0, "threads: 0 is outside"),
    (["mode"], "probe", "answered a run job"),
])
def test_malformed_results_are_a_typed_retryable_run_failed(path: list[Any], value: Any, words: str) -> None:
    with pytest.raises(MalformedResult) as raised:
        parse_runner_result(broken(path, value), device="pi4", mode="run", artifacts=2)
    assert words in str(raised.value) and raised.value.retryable and "\n" not in str(raised.value)


@pytest.mark.parametrize("line, words", [
    ("[" * 100_000, "nested too deeply"),
    ('{"ok": true, "pid": ' + "9" * 5000 + "}", "not JSON"),
    ("Traceback (most recent call last):", "not JSON"),
    ("[1, 2]", "not a result object"),
    ('{"ok": "yes"}', "not a result object"),
    ('{"ok": false, "error": "field \'mode\': \'x\' is not one of run"}', "the runner failed: field 'mode'"),
    ('{"ok": false, "error": {"nested": 1}}', "no reason given"),
])
def test_lines_that_are_no_result_are_a_typed_run_failed(line: str, words: str) -> None:
    with pytest.raises(RunFailed, match=words.replace("(", r"\(")):
        parse_runner_line(line, device="pi4", mode="hello")


def test_a_result_that_says_it_failed_is_a_plain_run_failed_not_a_malformed_one() -> None:
    """The agent keeps a runner that reported a failure, and restarts one that sent something malformed."""
    with pytest.raises(RunFailed, match="the runner failed: runner crashed") as raised:
        parse_runner_line('{"ok": false, "error": "runner crashed: MemoryError"}', device="pi4", mode="run")
    assert not isinstance(raised.value, MalformedResult)
    with pytest.raises(MalformedResult, match="more than any result"):
        decode_runner_line(" " * (16 * 1024 * 1024 + 1), device="pi4")


@pytest.mark.parametrize("status, stderr, starting, kind, words", [
    (127, "sh: 1: python9: not found", True, DeviceSetupError, "command not found (sh: 1: python9: not found)"),
    (1, "taskset: failed to set pid's affinity\nsecond", True, DeviceSetupError, "affinity\\nsecond"),
    (139, "Segmentation fault", False, RunnerDied, "died during a run job (exit status 139): Segmentation fault"),
    (137, "", False, RunnerDied, "(exit status 137): no output"),
])
def test_a_runner_that_ended_without_a_result_is_typed(status: int, stderr: str, starting: bool, kind: type,
                                                       words: str) -> None:
    error = runner_exit_error("pi4", status, stderr, "python3", starting=starting, mode="run")
    assert type(error) is kind and words in str(error) and "\n" not in str(error)
    assert error.retryable is (kind is RunnerDied)


def test_non_finite_temperatures_pass_for_telemetry_to_judge() -> None:
    result = parse_runner_line('{"ok": true, "mode": "temperatures", "thermal_c": {"cpu": NaN, "gpu": 41.0}}',
                               device="pi4", mode="temperatures")
    assert result["thermal_c"]["gpu"] == 41.0 and result["thermal_c"]["cpu"] != result["thermal_c"]["cpu"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["ok", "mode", "samples_ms", "errors", "facts", "thermal_c", "wall_s", "threads", "pid",
                         "cpufreq", "online_cores", "tools", "stdout", "x"]), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, database=None)
@given(value=JSON_VALUES, mode=st.sampled_from(["hello", "temperatures", "probe", "check", "run"]))
def test_any_json_value_is_a_checked_result_or_run_failed(value: Any, mode: str) -> None:
    """Property: no KeyError/AttributeError/TypeError, whatever the runner sends."""
    for candidate in (value, {"ok": True, **value} if isinstance(value, dict) else value):
        try:
            parse_runner_result(candidate, device="pi4", mode=mode, artifacts=1)
        except RunFailed as error:
            assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=300))
def test_any_text_line_is_decoded_or_run_failed(line: str) -> None:
    try:
        decode_runner_line(line, device="pi4")
    except RunFailed as error:
        assert "\n" not in str(error)
