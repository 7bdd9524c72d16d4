"""agents.local: real NB201 models timed in eager torch, TorchScript, TFLite and ExecuTorch interpreters.

CUDA tests run only where a GPU is visible; TFLite/ExecuTorch tests only where their
converters and runtimes are installed (and are marked slow: conversion takes ~20-40 s).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

import pytest
import torch

from agents.base import AgentError, Artifact, ArtifactRejected, Burst, DeviceUnavailable, RunFailed
from agents.local import LocalAgent, read_host_facts
from farm import protocol, spaces
from farm.inventory import Device, Hygiene

SPACE = "nasbench201"
GPU = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def restore_process_state() -> Iterator[None]:
    """The agent sets process-wide torch threads and CPU affinity; put them back after each test."""
    threads, affinity = torch.get_num_threads(), os.sched_getaffinity(0)
    yield
    torch.set_num_threads(threads)
    os.sched_setaffinity(0, affinity)


@pytest.fixture(scope="module")
def archs() -> list[str]:
    return spaces.get(SPACE).sample(2, seed=0)


def tiny_conv(_: Artifact | None = None) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()


def toy(path: str | None = None, runtime: str = "torch", **kwargs: object) -> Artifact:
    return Artifact("toy", "conv", runtime=runtime, input_size=8, path=path, **kwargs)  # type: ignore[arg-type]


def timed_once(agent: LocalAgent, artifact: Artifact, runs: int = 3) -> list[float]:
    (samples,) = agent.run([artifact], [Burst(0, warmup=1, runs=runs)])
    return samples


# ------------------------------------------------------------------- eager
def test_eager_nb201_through_the_interleaved_protocol(archs: list[str]) -> None:
    agent = LocalAgent.from_device(Device(name="cpu-local", kind="cpu", threads=1), campaign_id="t")
    batch = [Artifact(SPACE, arch, input_size=32) for arch in archs]
    summaries = protocol.measure_batch(agent, batch, protocol.make("interleaved", rounds=2, runs=3, max_repeats=0))
    assert torch.get_num_threads() == 1
    for summary in summaries:
        assert len(summary.samples_ms) == 6
        assert 0.0 < summary.min_ms <= summary.latency_ms <= summary.max_ms
    agent.close()


def test_input_size_zero_means_the_space_default(archs: list[str]) -> None:
    agent = LocalAgent()
    assert len(timed_once(agent, Artifact(SPACE, archs[0], input_size=0))) == 3


def test_bad_arch_string_is_rejected() -> None:
    with pytest.raises(ArtifactRejected, match="does not load or run"):
        LocalAgent().prepare(Artifact(SPACE, "|conv_9x9~0|", input_size=32))


# ------------------------------------------------------------ torchscript
@pytest.fixture(scope="module")
def scripted_files(tmp_path_factory: pytest.TempPathFactory, archs: list[str]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scripted")
    model = spaces.get(SPACE).build(archs[0]).eval()
    traced = torch.jit.trace(model, torch.randn(1, 3, 32, 32), check_trace=False)
    files = {"pt": folder / "model.pt", "ptl": folder / "model.ptl"}
    traced.save(str(files["pt"]))
    traced._save_for_lite_interpreter(str(files["ptl"]))
    return files


@pytest.mark.parametrize("suffix", ["pt", "ptl"])
def test_torchscript_full_and_lite_interpreter(scripted_files: dict[str, Path], archs: list[str], suffix: str) -> None:
    path = scripted_files[suffix]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    artifact = Artifact(SPACE, archs[0], runtime="torchscript", input_size=32, path=str(path), sha256=digest)
    agent = LocalAgent(runtimes=["torch", "torchscript"])
    samples = timed_once(agent, artifact, runs=4)
    assert len(samples) == 4 and all(s > 0 for s in samples)
    assert agent._loaded[next(iter(agent._loaded))].details["lite"] is (suffix == "ptl")


def test_sha256_mismatch_is_rejected(scripted_files: dict[str, Path]) -> None:
    artifact = toy(str(scripted_files["pt"]), runtime="torchscript", sha256="0" * 64)
    with pytest.raises(ArtifactRejected, match="rebuild it"):
        LocalAgent().prepare(artifact)


@pytest.mark.parametrize("name, runtime", [("junk.pt", "torchscript"), ("junk.ptl", "torchscript"), ("junk.tflite", "tflite")])
def test_corrupt_file_is_rejected(tmp_path: Path, name: str, runtime: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"not a model at all")
    with pytest.raises(ArtifactRejected, match="does not load or run") as caught:
        LocalAgent().prepare(toy(str(path), runtime=runtime))
    assert caught.value.retryable is False


def test_missing_or_absent_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ArtifactRejected, match="needs a built file"):
        LocalAgent().prepare(toy(None, runtime="torchscript"))
    with pytest.raises(ArtifactRejected, match="does not exist"):
        LocalAgent().prepare(toy(str(tmp_path / "gone.ptl"), runtime="torchscript"))


def test_runtime_the_device_does_not_list_is_rejected() -> None:
    with pytest.raises(ArtifactRejected, match="does not run tflite"):
        LocalAgent(runtimes=["torch"]).prepare(toy("/x.tflite", runtime="tflite"))
    with pytest.raises(ArtifactRejected, match="not supported locally"):
        LocalAgent().prepare(toy(None, runtime="onnx"))


# --------------------------------------------------------- tflite, executorch
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> object:
    build = pytest.importorskip("farm.build")
    folder = tmp_path_factory.mktemp("built")

    def make(runtime: str) -> Artifact:
        if not build.converter_available(runtime):
            pytest.skip(f"no {runtime} converter installed")
        return build.build_artifact(
            "toy", "conv", runtime, 1, 8, folder, model_builder=lambda *_: (tiny_conv(), (1, 3, 8, 8))
        )

    return make


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tflite", "executorch"])
def test_tflite_and_executorch_interpreters_time_a_built_file(built: object, runtime: str) -> None:
    artifact = built(runtime)  # type: ignore[operator]
    agent = LocalAgent(threads=1)
    samples = timed_once(agent, artifact, runs=5)
    assert len(samples) == 5 and all(s > 0 for s in samples)


# ------------------------------------------------------------------ failures
class CrashesOnCall(torch.nn.Module):
    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.calls, self.crash_at = 0, crash_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.crash_at:
            raise RuntimeError("simulated kernel crash")
        return x


def test_crash_during_timed_runs_is_a_retryable_run_failed() -> None:
    agent = LocalAgent(model_loader=lambda _: CrashesOnCall(crash_at=4))
    with pytest.raises(RunFailed, match="simulated kernel crash") as caught:
        timed_once(agent, toy(), runs=5)
    assert caught.value.retryable is True


def test_model_that_never_runs_is_rejected() -> None:
    with pytest.raises(ArtifactRejected, match="simulated kernel crash"):
        LocalAgent(model_loader=lambda _: CrashesOnCall(crash_at=1)).prepare(toy())


def test_local_agent_refuses_remote_kinds() -> None:
    with pytest.raises(AgentError, match="kind cpu or cuda"):
        LocalAgent(kind="ssh")


# ------------------------------------------------------------------ hygiene
class RecordsAffinity(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[frozenset[int]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.add(frozenset(os.sched_getaffinity(0)))
        return x


def test_affinity_pins_runs_and_close_restores() -> None:
    before = os.sched_getaffinity(0)
    model = RecordsAffinity()
    agent = LocalAgent(hygiene=Hygiene(affinity=[0]), threads=1, model_loader=lambda _: model)
    timed_once(agent, toy())
    assert model.seen == {frozenset({0})}
    agent.close()
    assert os.sched_getaffinity(0) == before


def test_affinity_naming_missing_cores_is_an_error() -> None:
    agent = LocalAgent(name="box", hygiene=Hygiene(affinity=[4096]), model_loader=tiny_conv)
    with pytest.raises(AgentError, match="box.*hygiene.affinity"):
        agent.prepare(toy())


def fake_host(root: Path, temperature_c: float) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{int(temperature_c * 1000)}\n")
    return zone / "temp"


def test_cool_down_sleeps_then_waits_for_the_temperature(tmp_path: Path) -> None:
    sensor = fake_host(tmp_path, 80.0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the device cools by 4 C per second of waiting
        sleeps.append(seconds)
        current = int(sensor.read_text()) / 1000
        sensor.write_text(f"{int((current - 4 * seconds) * 1000)}\n")

    hygiene = Hygiene(cooldown_s=2.0, max_temperature_c=70.0)
    agent = LocalAgent(hygiene=hygiene, host_root=tmp_path, sleep=sleep, model_loader=tiny_conv)
    timed_once(agent, toy())
    assert sleeps[0] == 2.0 and len(sleeps) == 1 + 1  # 80 -> 72 after cool-down, 72 -> 68 after one wait
    assert agent.temperature_c() == pytest.approx(68.0)


def test_device_that_stays_hot_is_unavailable(tmp_path: Path) -> None:
    fake_host(tmp_path, 90.0)
    hygiene = Hygiene(max_temperature_c=70.0, cooldown_timeout_s=3)
    agent = LocalAgent(hygiene=hygiene, host_root=tmp_path, sleep=lambda s: None, model_loader=tiny_conv)
    with pytest.raises(DeviceUnavailable, match="still 90.0 C after 3 s"):
        timed_once(agent, toy())


# -------------------------------------------------------------------- probe
def test_probe_reads_this_machine() -> None:
    facts = LocalAgent().probe()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    if models:
        assert facts.cpu_model == models[0]
    assert facts.cores == (len(models) or os.cpu_count())
    assert facts.free_memory_mb is not None and facts.free_memory_mb > 0
    assert facts.runtime_versions["torch"] == torch.__version__
    assert facts.extra["affinity"] == sorted(os.sched_getaffinity(0))


def test_probe_parses_governor_frequency_and_thermal_zones(tmp_path: Path) -> None:
    """A Raspberry-Pi-like /proc and /sys tree (the build machine, a VM, has no cpufreq)."""
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\n\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n"
    )
    (tmp_path / "proc/meminfo").write_text("MemTotal:  3884384 kB\nMemAvailable:  2048000 kB\n")
    for cpu, freq in (("cpu0", "1500000"), ("cpu1", "600000")):
        folder = tmp_path / f"sys/devices/system/cpu/{cpu}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_governor").write_text("ondemand\n")
        (folder / "scaling_cur_freq").write_text(f"{freq}\n")
    fake_host(tmp_path, 51.6)
    facts = read_host_facts(tmp_path)
    assert facts.cpu_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts.cores == 2
    assert facts.governor == {"cpu0": "ondemand", "cpu1": "ondemand"}
    assert facts.frequencies_khz == {"cpu0": 1500000, "cpu1": 600000}
    assert facts.temperatures_c == {"thermal_zone0:cpu-thermal": 51.6}
    assert facts.max_temperature_c() == 51.6
    assert facts.free_memory_mb == 2000.0


# --------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA device here")
def test_cuda_times_nb201_with_cuda_events(archs: list[str]) -> None:
    agent = LocalAgent.from_device(Device(name="gpu0", kind="cuda"), campaign_id="t")
    samples = timed_once(agent, Artifact(SPACE, archs[0], input_size=32, batch_size=4), runs=5)
    assert len(samples) == 5 and all(s > 0 for s in samples)
    assert "gpu" in agent.probe().extra
    with pytest.raises(ArtifactRejected, match="CPU only"):
        agent.prepare(toy("/x.tflite", runtime="tflite"))
    agent.close()


@pytest.mark.skipif(GPU, reason="checks the behaviour without a GPU")
def test_cuda_device_without_a_gpu_is_unavailable() -> None:
    agent = LocalAgent.from_device(Device(name="gpu0", kind="cuda"), campaign_id="t")
    with pytest.raises(DeviceUnavailable, match="CUDA is not available"):
        agent.prepare(toy())


def test_missing_runtime_package_is_a_clear_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the ExecuTorch/TFLite packages the artifact is refused with the extra to install."""
    import sys

    path = tmp_path / "model.pte"
    path.write_bytes(b"\0")
    for module in ("executorch.runtime", "ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ArtifactRejected, match=r"ExecuTorch runtime is not installed; pip install 'latfarm\[executorch\]'"):
        LocalAgent().prepare(toy(str(path), runtime="executorch"))
    with pytest.raises(ArtifactRejected, match=r"TFLite runtime is not installed; pip install 'latfarm\[tflite\]'"):
        LocalAgent().prepare(toy(str(path), runtime="tflite"))


def test_telemetry_reads_the_cores_this_process_runs_on_and_drops_absurd_sensors(tmp_path: Path) -> None:
    """Fake sysfs: core 0 at 1.5 GHz, core 1 at 0.6 GHz, one sane and one broken thermal zone."""
    for cpu, freq, governor in (("cpu0", "1500000", "performance"), ("cpu1", "600000", "powersave")):
        folder = tmp_path / f"sys/devices/system/cpu/{cpu}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_governor").write_text(f"{governor}\n")
        (folder / "scaling_cur_freq").write_text(f"{freq}\n")
    fake_host(tmp_path, 51.6)
    broken = tmp_path / "sys/class/thermal/thermal_zone1"
    broken.mkdir(parents=True)
    (broken / "temp").write_text("-273000\n")
    agent = LocalAgent(host_root=tmp_path)
    allowed = os.sched_getaffinity(0)
    reading = agent.telemetry()
    assert reading.temperature_c == pytest.approx(51.6)
    if allowed >= {0, 1}:
        assert reading.cpu_freq_mhz == pytest.approx(1050.0) and reading.governor == "performance,powersave"
    os.sched_setaffinity(0, {0})
    try:
        pinned = agent.telemetry()
    finally:
        os.sched_setaffinity(0, allowed)
    assert (pinned.cpu_freq_mhz, pinned.governor) == (1500.0, "performance")


def test_telemetry_is_empty_where_the_machine_exposes_nothing(tmp_path: Path) -> None:
    reading = LocalAgent(host_root=tmp_path).telemetry()
    assert (reading.temperature_c, reading.cpu_freq_mhz, reading.governor) == (None, None, None)


def test_absurd_sysfs_values_neither_crash_nor_count(tmp_path: Path) -> None:
    """Issue 13, classes 2 and 4: a broken tree (absurd or endless numbers) never reads as a hot or fast machine."""
    fake_host(tmp_path, 51.6)
    for index, raw in ((1, "999999999"), (2, "9" * 5000), (3, "²")):
        zone = tmp_path / f"sys/class/thermal/thermal_zone{index}"
        zone.mkdir(parents=True)
        (zone / "temp").write_text(f"{raw}\n")
    folder = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
    folder.mkdir(parents=True)
    (folder / "scaling_cur_freq").write_text("9" * 5000)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text("MemAvailable:\n")
    slept: list[float] = []
    agent = LocalAgent(host_root=tmp_path, hygiene=Hygiene(max_temperature_c=70.0, cooldown_timeout_s=3),
                       sleep=slept.append)
    assert agent.temperature_c() == pytest.approx(51.6)  # 999999.999 C is dropped, not the hottest
    agent.cool_down()
    assert slept == []
    facts = read_host_facts(tmp_path)
    assert facts.frequencies_khz == {} and facts.free_memory_mb is None
    assert set(facts.temperatures_c) == {"thermal_zone0:cpu-thermal", "thermal_zone1:unknown"}
    assert agent.telemetry().dropped == ("thermal_zone1:unknown=999999.999",)
