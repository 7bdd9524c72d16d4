"""agents/runner.py run as it runs on a device: a separate interpreter fed a JSON job on stdin."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

RUNNER = Path(__file__).resolve().parents[2] / "agents" / "runner.py"


def run_job(
    job: Any, env: dict[str, str] | None = None, *, raw: str | None = None, python: str = sys.executable
) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [python, str(RUNNER), "-"],
        input=raw if raw is not None else json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON line, got {done.stdout!r}"
    return done.returncode, json.loads(lines[0]), done.stderr


def spec(artifact, **extra: Any) -> dict[str, Any]:
    return {
        "path": artifact.path,
        "runtime": artifact.runtime,
        "input_shape": [artifact.batch_size, 3, artifact.input_size, artifact.input_size],
        "sha256": artifact.sha256,
        **extra,
    }


def test_interleaved_schedule_runs_on_device_and_bad_artifacts_are_reported_per_artifact(tiny_torchscript, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.ptl"
    corrupt.write_bytes(Path(tiny_torchscript[0].path).read_bytes()[:300])
    artifacts = [
        spec(tiny_torchscript[0]),
        {"path": str(corrupt), "runtime": "torchscript", "input_shape": [1, 3, 16, 16]},
        spec(tiny_torchscript[1]),
        {"path": str(tmp_path / "missing.ptl"), "runtime": "torchscript", "input_shape": [1, 3, 16, 16]},
        spec(tiny_torchscript[1], sha256="0" * 64),  # damaged in transfer
    ]
    schedule = [[0, 1, 3], [2, 1, 2], [1, 1, 2], [2, 0, 2], [0, 0, 1], [3, 1, 1], [4, 1, 1]]
    status, result, stderr = run_job({"mode": "run", "artifacts": artifacts, "schedule": schedule, "threads": 1})
    assert status == 0 and result["ok"], result
    assert [len(s) for s in result["samples_ms"]] == [4, 0, 4, 0, 0]
    assert all(v > 0 for v in result["samples_ms"][0] + result["samples_ms"][2])
    assert result["errors"][0] is None and result["errors"][2] is None
    assert result["errors"][1]["kind"] == "rejected" and "torch cannot load corrupt.ptl" in result["errors"][1]["message"]
    assert "does not exist on the device" in result["errors"][3]["message"]
    assert "is damaged: sha256" in result["errors"][4]["message"]
    assert result["runtime_versions"]["torch"] == torch.__version__
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"schedule": [[5, 1, 1]], "artifacts": []}', "schedule[0]"),
        ('{"mode": "explode"}', "mode"),
        ('{"threads": 0}', "threads"),
        ('{"artifacts": [{"path": "a", "input_shape": [1, -3]}]}', "artifacts[0].input_shape"),
        ("not json", "not JSON"),
    ],
)
def test_malformed_job_is_one_clear_line_and_exit_2(raw: str, field: str) -> None:
    status, result, stderr = run_job(None, raw=raw)
    assert status == 2 and result["ok"] is False and field in result["error"]
    assert "Traceback" not in stderr


def test_probe_reports_this_machine(tmp_path: Path) -> None:
    status, result, _ = run_job({"mode": "probe"})
    facts = result["facts"]
    assert status == 0 and facts["hostname"] == socket.gethostname()
    assert facts["online_cores"] and set(facts["affinity"]) == os.sched_getaffinity(0)
    assert facts["free_memory_mb"] > 0
    assert result["runtime_versions"]["torch"] == torch.__version__


def _fake_tool(bin_dir: Path, name: str, fixture: Path) -> None:
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\ncat {fixture}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_simulated_pi_and_jetson_tools_are_captured_raw_and_parsed_on_the_host(fixtures_dir: Path, tmp_path: Path) -> None:
    """Simulation: ``vcgencmd`` and ``nvpmodel`` are scripts printing recorded real output."""
    from agents.ssh import facts_from_runner

    throttled = fixtures_dir / "rpi_vcgencmd" / "rpi4_throttled_0x80008_and_version.txt"
    power = fixtures_dir / "jetson" / "nvpmodel_q_orin_nano_15w.txt"
    _fake_tool(tmp_path, "vcgencmd", throttled)
    _fake_tool(tmp_path, "nvpmodel", power)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    _, result, _ = run_job({"mode": "temperatures"}, env)
    assert "facts" not in result  # the cheap mode runs no tools
    status, result, _ = run_job({"mode": "probe"}, env)
    tools = result["facts"]["tools"]
    assert tools["vcgencmd_get_throttled"]["stdout"] == throttled.read_text()
    assert tools["nvpmodel_q"]["command"] == ["nvpmodel", "-q"] and tools["nvpmodel_q"]["stdout"] == power.read_text()

    facts = facts_from_runner(result["facts"], result["runtime_versions"])
    assert facts.extra["throttled"] == {
        "raw": "0x80008",
        "conditions": ["soft temperature limit active", "soft temperature limit has occurred"],
    }
    assert facts.extra["power_mode"]["name"] == "15W" and facts.extra["power_mode"]["mode_id"] == 0


def test_tflite_artifact_runs_in_the_litert_interpreter(tiny_tflite) -> None:
    from farm.build import read_metadata

    assert read_metadata(tiny_tflite.path)["input_shape"] == [1, 3, 16, 16]  # NCHW, the default layout
    job = {"mode": "run", "artifacts": [{"path": tiny_tflite.path, "runtime": "tflite"}], "schedule": [[0, 2, 5]], "threads": 1}
    status, result, _ = run_job(job)
    assert status == 0 and result["errors"] == [None] and len(result["samples_ms"][0]) == 5
    assert "ai_edge_litert" in result["runtime_versions"] or "tflite_runtime" in result["runtime_versions"]


def test_cuda_artifact_is_timed_on_the_gpu_or_refused_without_one(tiny_torchscript) -> None:
    job = {"mode": "run", "artifacts": [spec(tiny_torchscript[0], device="cuda:0")], "schedule": [[0, 2, 4]]}
    status, result, _ = run_job(job)
    assert status == 0
    if torch.cuda.is_available():
        assert result["errors"] == [None] and len(result["samples_ms"][0]) == 4
    else:
        assert result["errors"][0]["kind"] == "rejected" and "no such CUDA device" in result["errors"][0]["message"]


def test_a_ptl_also_loads_as_full_torchscript(tiny_torchscript) -> None:
    """What the CUDA path relies on: torch.jit.load reads the lite file's full program (here on CPU)."""
    module = torch.jit.load(tiny_torchscript[0].path, map_location="cpu")
    lite = torch.jit.mobile._load_for_lite_interpreter(tiny_torchscript[0].path)
    sample = torch.rand(1, 3, 16, 16)
    assert torch.allclose(module(sample), lite(sample), atol=1e-6)


def test_a_device_python_without_torch_names_the_fix(tiny_torchscript) -> None:
    python = "/usr/bin/python3"
    if not os.path.exists(python) or subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
        pytest.skip("needs a system python3 without torch")
    job = {"mode": "check", "artifacts": [spec(tiny_torchscript[0])]}
    status, result, _ = run_job(job, python=python)
    assert status == 0 and result["errors"][0]["kind"] == "rejected"
    assert result["errors"][0]["message"].startswith("no torch for /usr/bin/python3 on this device: pip install torch")


# --- issue 13, class 2: the board's own counts are bounded too (the runner must stay Python 3.7 code).
@pytest.mark.parametrize("text", ["0-20000000", "0-99999999999999999999", "7-3", "0-x", "²", ",".join(["0-4095"] * 3)])
def test_a_hostile_online_list_is_refused_without_allocating_and_the_cpu_count_is_used(text: str) -> None:
    import tracemalloc

    from agents import runner

    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="CPU"):
            runner._cpu_list(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert runner.online_cores(text) == list(range(min(os.cpu_count() or 1, runner.MAX_CPUS)))
    assert runner.online_cores("0-2,5\n") == [0, 1, 2, 5]


def test_sysfs_numbers_are_bounded_before_conversion() -> None:
    from agents import runner

    assert runner._small_int("-4500", 9) == -4500 and runner._small_int("41000", 9) == 41000
    assert [runner._small_int(text, 9) for text in ("9" * 5000, "1e3", "", "²", "--1")] == [None] * 5


def test_the_runner_parses_as_python_3_7() -> None:
    import ast

    ast.parse(RUNNER.read_text(), feature_version=(3, 7))
    assert "removeprefix" not in RUNNER.read_text() and ":=" not in RUNNER.read_text()
