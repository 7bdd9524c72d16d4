"""TFLite benchmark_model parser against every published output in tests/fixtures (v1.12 .. v2.20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import ArtifactRejected
from agents.parsers.common import ModelRejected, ToolCrashed, UnparsableOutput
from agents.parsers.tflite_benchmark import parse, parse_op_profile

TOOL_DIR = "tflite_benchmark_model"

# file -> (main count, main avg us, summary average us, warm-up count, init us, summary format)
PARSED = {
    "v1.12_am57xx_legacy_average_timings.txt": (50, 137722, 137722, 1, 4452, "legacy_average"),
    "android_arm64_2019_average_timings_no_stats_truncated.txt": (15, 66767.6, 66767.6, 7, 9933, "legacy_average"),
    "v2.4_android_mi11_cpu_summary.txt": (50, 249684, 249684, None, 16242, "inference_timings"),
    "v2.8_riscv64_op_profiling.txt": (50, 2.95034e6, 2.95034e6, 1, 17187, "inference_timings"),
    "v2.18_am62x_info_prefix_cpu.txt": (50, 971535, 971535, 1, 6418, "inference_timings"),
    "v2.20_am62x_info_prefix_percentiles_cpu.txt": (50, 1.24027e6, 1.24027e6, 1, 5579, "inference_timings"),
    "v2.20_am62x_info_prefix_percentiles_xnnpack.txt": (50, 899641, 899641, 1, 614333, "inference_timings"),
}
REFUSED = {
    "v2.4_android_mi11_nnapi_failure.txt": (ModelRejected, "failed to prepare"),
    "v2.4_android_mi11_nnapi_op_profiling.txt": (UnparsableOutput, "only op-profiling tables"),
    # A summary grep'ed out of logcat: the main runs' `count=` line is not there to check it against.
    "android_apk_logcat_grep_summary_only.txt": (UnparsableOutput, "no `count=` line"),
}


def read(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / TOOL_DIR / name).read_text()


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / TOOL_DIR).iterdir()} == set(PARSED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_parses_the_published_figures(fixtures_dir: Path, name: str) -> None:
    count, avg, summary, warmup_count, init, summary_format = PARSED[name]
    result = parse(read(fixtures_dir, name), source=name)
    assert result.main.count == count
    assert result.main.avg_us == pytest.approx(avg)
    assert result.inference_avg_us == pytest.approx(summary)
    assert (result.warmup.count if result.warmup else None) == warmup_count
    assert result.init_us == pytest.approx(init)
    assert result.summary_format == summary_format


def test_full_stats_line_and_scientific_notation(fixtures_dir: Path) -> None:
    result = parse(read(fixtures_dir, "v2.8_riscv64_op_profiling.txt"))
    main = result.main
    assert (main.first_us, main.curr_us, main.min_us, main.max_us, main.std_us) == (
        2990275, 2913402, 2727568, 3189954, 109798)
    assert result.warmup_avg_us == pytest.approx(3.51239e6)
    assert result.first_inference_us == 3512391
    assert result.inference_avg_ms == pytest.approx(2950.34)
    assert result.parameters["Num threads"] == "4"
    assert result.memory_mb == {"init": pytest.approx(4.21094), "overall": pytest.approx(46.0859)}


def test_info_prefix_and_percentiles(fixtures_dir: Path) -> None:
    result = parse(read(fixtures_dir, "v2.20_am62x_info_prefix_percentiles_xnnpack.txt"))
    assert result.main.percentiles_us == {"p5": 898333, "median": 899281, "p95": 904305}
    assert result.warmup is not None and result.warmup.curr_us == 905463
    assert result.parameters["Use xnnpack"] == "1"
    assert result.init_us == 614333


def test_one_run_warmup_line_fills_its_aggregates(fixtures_dir: Path) -> None:
    warmup = parse(read(fixtures_dir, "v1.12_am57xx_legacy_average_timings.txt")).warmup
    assert warmup is not None
    assert (warmup.count, warmup.curr_us, warmup.avg_us, warmup.std_us) == (1, 146161, 146161, 0.0)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_failures_are_refused_with_a_typed_error(fixtures_dir: Path, name: str) -> None:
    error_class, words = REFUSED[name]
    with pytest.raises(error_class) as raised:
        parse(read(fixtures_dir, name), source=name)
    assert words in str(raised.value)
    assert str(raised.value).startswith(f"{name}: benchmark_model:")


def test_nnapi_failure_names_the_cause_and_maps_to_artifact_rejected(fixtures_dir: Path) -> None:
    with pytest.raises(ModelRejected) as raised:
        parse(read(fixtures_dir, "v2.4_android_mi11_nnapi_failure.txt"))
    assert "ANEURALNETWORKS_OP_FAILED" in str(raised.value)
    assert isinstance(raised.value.agent_error(), ArtifactRejected)


def test_op_profile_of_regular_runs(fixtures_dir: Path) -> None:
    riscv = parse_op_profile(read(fixtures_dir, "v2.8_riscv64_op_profiling.txt"))
    assert [(row.node_type, row.count, row.avg_ms) for row in riscv.by_node_type[:2]] == [
        ("CONV_2D", 15, 2651.853), ("DEPTHWISE_CONV_2D", 13, 296.919)]
    assert riscv.timings.count == 50 and riscv.timings.avg_us == pytest.approx(2.9499e6)
    nnapi = parse_op_profile(read(fixtures_dir, "v2.4_android_mi11_nnapi_op_profiling.txt"))
    assert nnapi.by_node_type[0].node_type == "TfLiteNnapiDelegate"
    assert nnapi.by_node_type[0].avg_ms == 149.483
    assert nnapi.timings.avg_us == 158715


def test_op_profile_refused_without_profiling(fixtures_dir: Path) -> None:
    with pytest.raises(UnparsableOutput, match="enable_op_profiling"):
        parse_op_profile(read(fixtures_dir, "v2.4_android_mi11_cpu_summary.txt"))


def test_crash_and_garbage_are_refused() -> None:
    with pytest.raises(ToolCrashed):
        parse("count=5 first=1 curr=1 min=1 max=1 avg=1 std=0\nSegmentation fault\n")
    with pytest.raises(UnparsableOutput, match="no `count=` line"):
        parse("STARTING!\nNum runs: [50]\n", source="pixel7 output")


# --- issue 13, class 5: wrong numbers from real tool output. The texts below are SYNTHETIC variants of the
# published v2.18 fixture (a prefix added, lines cut or appended), not published outputs themselves.
LOGCAT_PREFIX = "05-30 15:16:45.362  3380  3380 I tflite  : "  # the threadtime form quoted in issue 13
WARMUP_CUT = "INFO: count=1 curr=1041765\n"


def v218(fixtures_dir: Path) -> str:
    return read(fixtures_dir, "v2.18_am62x_info_prefix_cpu.txt")


def test_logcat_prefixed_output_gives_the_same_figures(fixtures_dir: Path) -> None:
    plain = parse(v218(fixtures_dir))
    logcat = "\n".join(LOGCAT_PREFIX + line.removeprefix("INFO: ") for line in v218(fixtures_dir).splitlines())
    assert parse(logcat) == plain
    brief = "\n".join("I/tflite  ( 3380): " + line for line in v218(fixtures_dir).splitlines())
    assert parse(brief).inference_avg_us == 971535


def test_a_run_killed_during_its_main_phase_is_refused_not_read_as_the_warmup(fixtures_dir: Path) -> None:
    text = v218(fixtures_dir)
    killed = text[: text.index(WARMUP_CUT) + len(WARMUP_CUT)] + (
        "\nINFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding "
        "150 seconds.\n")
    with pytest.raises(UnparsableOutput, match="stopped during its main runs"):
        parse(killed)
    with pytest.raises(UnparsableOutput, match="did not finish"):
        parse(text[: text.index("INFO: Inference timings")])


@pytest.mark.parametrize("crash", [
    "libc++abi: terminating with uncaught exception of type std::runtime_error: failed to invoke",
    "libc++abi: terminating due to uncaught exception of type std::bad_alloc: std::bad_alloc",
    "05-30 15:16:46.001  3380  3380 F libc    : Fatal signal 11 (SIGSEGV), code 1 (SEGV_MAPERR), fault addr 0x0",
    "F/libc    ( 3380): Fatal signal 6 (SIGABRT), code -6 in tid 3380 (benchmark_model)",
    "/system/bin/sh: line 1:  3380 Aborted                 benchmark_model --graph=m.tflite",
])
def test_a_crash_printed_after_the_summary_is_a_crash(fixtures_dir: Path, crash: str) -> None:
    with pytest.raises(ToolCrashed):
        parse(v218(fixtures_dir) + crash + "\n")


def test_a_second_unfinished_run_or_two_summaries_are_refused(fixtures_dir: Path) -> None:
    with pytest.raises(UnparsableOutput, match="after the summary"):
        parse(v218(fixtures_dir) + WARMUP_CUT)
    with pytest.raises(UnparsableOutput, match="2 summary lines"):
        parse(v218(fixtures_dir) + v218(fixtures_dir))


def test_a_summary_that_disagrees_with_the_main_runs_is_refused(fixtures_dir: Path) -> None:
    with pytest.raises(UnparsableOutput, match="disagrees"):
        parse(v218(fixtures_dir).replace("Inference (avg): 971535", "Inference (avg): 1041765"))


@pytest.mark.parametrize("token", ["inf", "nan", "1e999", "9" * 400, "-5"])
def test_non_finite_or_absurd_figures_are_refused_typed(fixtures_dir: Path, token: str) -> None:
    with pytest.raises(UnparsableOutput):
        parse(v218(fixtures_dir).replace("avg=971535", f"avg={token}"))
    with pytest.raises(UnparsableOutput):
        parse(v218(fixtures_dir).replace("Inference (avg): 971535", f"Inference (avg): {token}"))


def test_a_stats_line_of_zero_runs_is_refused_even_with_a_plausible_time(fixtures_dir: Path) -> None:
    # found by tests/agents/parsers/test_hostile_output.py: one digit of the one-run warm-up line damaged
    damaged = v218(fixtures_dir).replace("count=1 curr=1041765", "count=0 curr=1041765")
    assert damaged != v218(fixtures_dir)
    with pytest.raises(UnparsableOutput, match="count is 0, outside"):
        parse(damaged)


def test_zero_or_garbled_counts_are_refused_typed() -> None:
    summary = "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 2, Inference (avg): 0"
    with pytest.raises(UnparsableOutput):
        parse(f"count=0 curr=0\n{summary}")
    with pytest.raises(UnparsableOutput, match="without a numeric `curr=`"):
        parse(f"count=5 avg=3\n{summary}")
    with pytest.raises(UnparsableOutput):
        parse_op_profile("Operator-wise Profiling Info for Regular Benchmark Runs:\n=== Summary by node type ===\n"
                         "\tCONV_2D\tx\t1.5\t75.000%\t75.000%\t0.000\t2\nTimings (microseconds): count=1 curr=2\n")
