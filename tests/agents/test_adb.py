"""ADBAgent against the protocol-level adbd *simulation* (tests/agents/adb_simulation.py).

The ADB transport, RSA authentication, sync pushes and shell word splitting are real;
the phone, its shell and its benchmark binaries are simulated (stand-ins printing the
tools' real output formats). No Android device is involved.
"""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

import pytest
import torch

from agents.adb import (
    ADBAgent,
    ADBConfigError,
    ADBSettings,
    BenchmarkBinaryMissing,
    DeviceNotFound,
    DeviceOffline,
    DeviceUnauthorized,
    affinity_mask,
)
from agents.base import Artifact, ArtifactRejected, Burst, DeviceUnavailable, RunFailed

sys.path.insert(0, str(Path(__file__).parent))
from adb_simulation import (  # noqa: E402
    SANDBOX_ROOT,
    ADBDaemonSimulation,
    SimulatedPhone,
    install_stand_in,
    model_latency_us,
    stand_in_artifact_bytes,
)

BINARIES = {
    "torchscript": f"{SANDBOX_ROOT}/bin/speed_benchmark_torch",
    "tflite": f"{SANDBOX_ROOT}/bin/benchmark_model",
    "executorch": f"{SANDBOX_ROOT}/bin/executor_runner",
}
TOOLS = {"torchscript": "speed_benchmark_torch", "tflite": "benchmark_model", "executorch": "executor_runner"}


def make_key(folder: Path) -> tuple[str, str]:
    from adb_shell.auth.keygen import keygen

    folder.mkdir(parents=True, exist_ok=True)
    keygen(str(folder / "adbkey"))
    return str(folder / "adbkey"), (folder / "adbkey.pub").read_text()


@pytest.fixture(scope="module")
def adb_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_key(tmp_path_factory.mktemp("android"))


@pytest.fixture(scope="module")
def ptl_models(tmp_path_factory: pytest.TempPathFactory) -> list[Artifact]:
    """Two real TorchScript lite-interpreter files (.ptl) with different weights, hence latencies."""
    folder = tmp_path_factory.mktemp("ptl")
    artifacts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
        path = folder / f"conv{seed}.ptl"
        module._save_for_lite_interpreter(str(path))
        artifacts.append(Artifact("toy", f"conv|seed~{seed}|", "torchscript", 1, 32, str(path)))
    return artifacts


def header_only(tmp_path: Path, runtime: str, tag: bytes) -> Artifact:
    """A .tflite / .pte the stand-ins accept by identifier (never a runnable model)."""
    path = tmp_path / f"{tag.decode()}{'.tflite' if runtime == 'tflite' else '.pte'}"
    path.write_bytes(stand_in_artifact_bytes(runtime, tag * 64))
    return Artifact("toy", tag.decode(), runtime, 1, 32, str(path))


@pytest.fixture()
def sandbox(tmp_path: Path) -> Path:
    root = tmp_path / "sandbox"
    for runtime, path in BINARIES.items():
        install_stand_in(root, path, TOOLS[runtime])
    return root


@pytest.fixture()
def adbd(sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str]):  # noqa: ANN201
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]]) as daemon:
        yield daemon


def settings(port: int, key: str, **overrides: object) -> ADBSettings:
    values: dict[str, object] = dict(name="pixel-sim", host="127.0.0.1", port=port, key_file=key,
                                     benchmark_binaries=dict(BINARIES), campaign_id="c1", cpu_mask="f0",
                                     connect_timeout_s=2.0, auth_timeout_s=0.5, command_timeout_s=20.0)
    values.update(overrides)
    return ADBSettings(**values)  # type: ignore[arg-type]


def host_file(sandbox: Path, device_path: str) -> Path:
    return sandbox / device_path[len(SANDBOX_ROOT) + 1:]


# ---------------------------------------------------------------- facts
def test_probe_reads_the_phone_facts(adbd: ADBDaemonSimulation, adb_key: tuple[str, str]) -> None:
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        facts = agent.probe()
    assert facts.hostname.startswith("Pixel 8 (127.0.0.1:")
    assert facts.cores == 8
    assert "Kryo 3xx Gold" in facts.cpu_model
    assert facts.governor["cpu0"] == "sched_pixel" and facts.frequencies_khz["cpu6"] == 500000
    assert facts.temperatures_c["battery"] == 27.5
    assert facts.temperatures_c["zone:tsens_tz_sensor0"] == pytest.approx(42.0)
    assert facts.free_memory_mb == pytest.approx(2212380 / 1024)
    assert facts.runtime_versions["tflite"].startswith("benchmark_model sha256:")
    assert facts.extra["sdk"] == "34" and facts.extra["sample_kind"]["tflite"] == "batch_mean"


# ---------------------------------------------------------------- measuring
def test_torchscript_interleaved_per_run_values_end_to_end(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    schedule = [Burst(1, 1, 4), Burst(0, 1, 4), Burst(0, 1, 4), Burst(1, 1, 4)]
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        samples = agent.run(ptl_models, schedule)
        folder = sandbox / "latfarm" / "c1"
        pushed = {f"{SANDBOX_ROOT}/latfarm/c1/{p.name}": p.read_bytes() for p in folder.iterdir()}
        assert folder.stat().st_mode & 0o777 == 0o700 and folder.parent.stat().st_mode & 0o777 == 0o700
    timed = [run for run in adbd.invocations if "--iter=4" in run.argv]
    assert len(adbd.invocations) == 2 + 4  # one load check per model, one invocation per burst
    first, second = timed[0].model_path, timed[1].model_path
    assert first != second and [run.model_path for run in timed] == [first, second, second, first]  # the schedule
    by_model = {path: [v / 1000 for run in timed if run.model_path == path for v in run.printed_us]
                for path in {run.model_path for run in timed}}
    for artifact, runs in zip(ptl_models, samples, strict=True):
        remote = next(path for path, data in pushed.items() if data == Path(artifact.path).read_bytes())
        assert runs == by_model[remote]  # exactly the figures the stand-in printed, in ms
        assert runs and all(abs(v * 1000 / model_latency_us(pushed[remote]) - 1) <= 0.0101 for v in runs)
    assert samples[0] != samples[1]
    assert {run.cpu_mask for run in adbd.invocations} == {"f0"}
    assert {"--input_dims=1,3,32,32", "--input_type=float", "--warmup=1", "--report_pep=true"} <= set(timed[0].argv)
    assert all(path.startswith(f"{SANDBOX_ROOT}/latfarm/c1/.") and path.endswith(".part") for path in adbd.pushed)
    assert len(pushed) == 2 and not any(name.endswith(".part") for name in pushed)  # each renamed into place


def test_a_build_without_observer_lines_gives_its_summary_as_one_batch_mean(
    sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str], ptl_models: list[Artifact]
) -> None:
    install_stand_in(sandbox, BINARIES["torchscript"], "speed_benchmark_torch", variant="no_pep")
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]]) as daemon:
        with ADBAgent(settings(daemon.port, adb_key[0])) as agent:
            (samples,) = agent.run(ptl_models[:1], [Burst(0, 1, 5), Burst(0, 1, 5)])
    timed = daemon.invocations[1:]
    assert samples == pytest.approx([sum(run.printed_us) / 5 / 1000 for run in timed], rel=1e-5)


def test_tflite_bursts_become_batches_of_batch_means(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], tmp_path: Path
) -> None:
    artifact = header_only(tmp_path, "tflite", b"mbv2")
    with ADBAgent(settings(adbd.port, adb_key[0], tflite_batch_runs=10, threads=4)) as agent:
        (samples,) = agent.run([artifact], [Burst(0, warmup=2, runs=25)])
    runs = adbd.invocations[1:]
    assert [next(a for a in run.argv if a.startswith("--num_runs=")) for run in runs] == [
        "--num_runs=10", "--num_runs=10", "--num_runs=5"]
    assert {"--num_threads=4", "--warmup_runs=2", "--use_xnnpack=true", "--min_secs=0"} <= set(runs[0].argv)
    expected = [sum(run.printed_us) / len(run.printed_us) / 1000 for run in runs]
    assert samples == pytest.approx(expected, rel=1e-5)  # the tool prints avg with 6 significant digits


def test_executorch_batches_and_discarded_warmup(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], tmp_path: Path
) -> None:
    artifact = header_only(tmp_path, "executorch", b"mv2")
    with ADBAgent(settings(adbd.port, adb_key[0], tflite_batch_runs=4)) as agent:
        (samples,) = agent.run([artifact], [Burst(0, warmup=3, runs=8)])
    warm, *timed = adbd.invocations[1:]
    assert "--num_executions=3" in warm.argv and len(timed) == 2
    assert samples == pytest.approx([sum(run.printed_us) / 4 / 1000 for run in timed], abs=1e-6)


def test_every_argument_is_quoted(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    hostile = settings(adbd.port, adb_key[0], campaign_id="c 1;rm -rf /data/local/tmp;echo",
                       workdir=f"{SANDBOX_ROOT}/lat farm")
    with ADBAgent(hostile) as agent:
        (samples,) = agent.run(ptl_models[:1], [Burst(0, 0, 2)])
        assert len(samples) == 2
        assert (sandbox / "lat farm" / "c 1;rm -rf /data/local/tmp;echo").is_dir()
    assert host_file(sandbox, BINARIES["tflite"]).is_file()  # nothing was removed but the campaign dir
    assert not (sandbox / "lat farm" / "c 1;rm -rf /data/local/tmp;echo").exists()  # close() cleaned up
    assert any(f"cd {shlex.quote(hostile.remote_dir)} && " in command for command in adbd.commands)


# ---------------------------------------------------------------- hygiene
def test_cooldown_waits_until_below_the_limit_then_measures(
    sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str], ptl_models: list[Artifact]
) -> None:
    phone = SimulatedPhone(fixtures_dir, battery_tenths=450, zone_millidegrees=30000, cooling_per_read_tenths=30)
    naps: list[float] = []
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], phone=phone) as daemon:
        agent = ADBAgent(settings(daemon.port, adb_key[0], max_temperature_c=38.0, cooldown_s=1.5,
                                  cooldown_poll_s=2.0, screen_off=True), sleep=naps.append)
        with agent:
            agent.run(ptl_models[:1], [Burst(0, 0, 1)])
            info = dict(agent.last_run)
    # 45.0 C read, then 42.0, 39.0, 36.0: three polls of 2 s after the fixed 1.5 s
    assert naps == [1.5, 2.0, 2.0, 2.0]
    assert info["cooldown_waited_s"] == 6.0 and not info["cooldown_timed_out"]
    assert info["temperature_after_cooldown_c"] == 36.0
    assert info["temperatures_start_c"]["battery"] == 33.0 and "battery" in info["temperatures_end_c"]
    assert info["screen_off"] and not phone.screen_on


def test_cooldown_timeout_is_recorded_not_fatal(
    sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str], ptl_models: list[Artifact]
) -> None:
    phone = SimulatedPhone(fixtures_dir, battery_tenths=450, zone_millidegrees=30000)
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], phone=phone) as daemon:
        with ADBAgent(settings(daemon.port, adb_key[0], max_temperature_c=40.0, cooldown_timeout_s=3.0,
                               cooldown_poll_s=1.0), sleep=lambda _: None) as agent:
            (samples,) = agent.run(ptl_models[:1], [Burst(0, 0, 2)])
            assert agent.last_run["cooldown_timed_out"] and agent.last_run["cooldown_waited_s"] == 3.0
    assert len(samples) == 2


# ---------------------------------------------------------------- failures
def test_unauthorized_key_and_the_allow_dialog(sandbox: Path, fixtures_dir: Path, tmp_path: Path,
                                               adb_key: tuple[str, str]) -> None:
    stranger_key, stranger_pub = make_key(tmp_path / "stranger")
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]]) as daemon:
        with pytest.raises(DeviceUnauthorized, match="tap 'Allow USB debugging'") as raised:
            ADBAgent(settings(daemon.port, stranger_key)).probe()
        assert raised.value.retryable and isinstance(raised.value, DeviceUnavailable)
        assert daemon.offered_keys == [stranger_pub.strip()]  # the signature failed, then the key was offered
        daemon.accept_new_keys = True  # the user taps "Allow"
        with ADBAgent(settings(daemon.port, stranger_key)) as agent:
            assert agent.probe().cores == 8


def test_public_key_is_derived_when_the_pub_file_is_missing(
    sandbox: Path, fixtures_dir: Path, tmp_path: Path, adb_key: tuple[str, str]
) -> None:
    lone = tmp_path / "lone" / "adbkey"
    lone.parent.mkdir()
    lone.write_text(Path(adb_key[0]).read_text())  # the private key only
    with ADBDaemonSimulation(sandbox, fixtures_dir, accept_new_keys=True) as daemon:
        with ADBAgent(settings(daemon.port, str(lone))) as agent:
            assert agent.probe().cores == 8
    assert daemon.offered_keys[0].split()[0] == adb_key[1].split()[0]  # the same Android-format public key
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key")
    with pytest.raises(ADBConfigError, match="not a PEM RSA private key"):
        ADBAgent(settings(daemon.port, str(garbage))).probe()


def test_offline_unreachable_and_missing_key(tmp_path: Path, sandbox: Path, fixtures_dir: Path,
                                             adb_key: tuple[str, str]) -> None:
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], offline=True) as daemon:
        with pytest.raises(DeviceOffline, match="did not answer the handshake"):
            ADBAgent(settings(daemon.port, adb_key[0], connect_timeout_s=0.5)).probe()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free_port = unused.getsockname()[1]
    with pytest.raises(DeviceNotFound, match=f"nothing answers at 127.0.0.1:{free_port}"):
        ADBAgent(settings(free_port, adb_key[0])).probe()
    with pytest.raises(ADBConfigError, match="adb keygen") as raised:
        ADBAgent(settings(free_port, str(tmp_path / "no" / "adbkey"))).probe()
    assert not raised.value.retryable


def test_missing_binary_is_a_clear_permanent_error(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], tmp_path: Path
) -> None:
    wrong = dict(BINARIES, torchscript=f"{SANDBOX_ROOT}/bin/speed_benchmark_torch_arm64")
    with ADBAgent(settings(adbd.port, adb_key[0], benchmark_binaries=wrong)) as agent:
        with pytest.raises(BenchmarkBinaryMissing, match="speed_benchmark_torch_arm64") as raised:
            agent.prepare(ptl_models[0])
        assert not raised.value.retryable and "adb push" in str(raised.value)
        with pytest.raises(BenchmarkBinaryMissing, match="no entry for tflite"):
            ADBAgent(settings(adbd.port, adb_key[0], benchmark_binaries={})).prepare(
                header_only(tmp_path, "tflite", b"x"))
    assert adbd.invocations == []


@pytest.mark.parametrize("runtime, words", [("torchscript", "PytorchStreamReader"),
                                            ("tflite", "not a valid Flatbuffer"),
                                            ("executorch", "Program loading failed")])
def test_rejected_models(adbd: ADBDaemonSimulation, adb_key: tuple[str, str], tmp_path: Path,
                         runtime: str, words: str) -> None:
    garbage = tmp_path / f"garbage{runtime}"
    garbage.write_bytes(b"this is not a model" * 10)
    artifact = Artifact("toy", "bad", runtime, 1, 32, str(garbage))
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        with pytest.raises(ArtifactRejected, match=words) as raised:
            agent.prepare(artifact)
    assert not raised.value.retryable and "bad" in str(raised.value)


def test_device_dropped_mid_run(sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str],
                                ptl_models: list[Artifact]) -> None:
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], drop_on_invocation=4) as daemon:
        agent = ADBAgent(settings(daemon.port, adb_key[0]))
        with pytest.raises(DeviceOffline, match="lost during") as raised:
            agent.run(ptl_models, [Burst(0, 0, 2), Burst(1, 0, 2), Burst(0, 0, 2)])
        assert raised.value.retryable and daemon.dropped
        with pytest.raises(DeviceNotFound):  # the port is gone: reconnecting fails cleanly
            agent.probe()
        agent.close()


def test_a_hung_binary_is_run_failed_and_the_agent_recovers(
    sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str], ptl_models: list[Artifact]
) -> None:
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], hang_on_invocation=2,
                             hang_s=1.5) as daemon:
        with ADBAgent(settings(daemon.port, adb_key[0], command_timeout_s=0.5)) as agent:
            with pytest.raises(RunFailed, match="the binary hung") as raised:
                agent.run(ptl_models[:1], [Burst(0, 0, 2)])
            assert raised.value.retryable
            (samples,) = agent.run(ptl_models[:1], [Burst(0, 0, 2)])  # reconnects on its own
    assert len(samples) == 2 and len(daemon.invocations) == 3


# ---------------------------------------------------------------- configuration
def test_from_device_maps_the_inventory() -> None:
    from farm.inventory import Device

    device = Device(name="pixel7", kind="adb", runtimes=["tflite"], threads=4,
                    adb={"host": "10.0.0.9", "benchmark_binaries": {"tflite": "/data/local/tmp/benchmark_model"}},
                    hygiene={"affinity": [4, 5, 6, 7], "cooldown_s": 2, "max_temperature_c": 40})
    agent = ADBAgent.from_device(device, campaign_id="camp-1")
    s = agent.settings
    assert (s.host, s.port, s.key_file, s.cpu_mask, s.threads) == ("10.0.0.9", 5555, "~/.android/adbkey", "f0", 4)
    assert s.remote_dir == "/data/local/tmp/latfarm/camp-1" and s.max_temperature_c == 40
    masked = device.model_copy(update={"adb": device.adb.model_copy(update={"big_core_mask": "c0"})})
    assert ADBAgent.from_device(masked, campaign_id="c").settings.cpu_mask == "c0"
    bad = device.model_copy(update={"adb": device.adb.model_copy(update={"big_core_mask": "f0; reboot"})})
    with pytest.raises(ADBConfigError, match="not a hex CPU mask"):
        ADBAgent.from_device(bad, campaign_id="c")
    assert affinity_mask([0, 1, 2, 3, 7]) == "8f"


def test_usb_without_libusb_is_a_clear_error(adb_key: tuple[str, str]) -> None:
    from adb_shell import adb_device

    if getattr(adb_device, "UsbTransport", None) is not None:
        pytest.skip("adb-shell's USB support is installed here")
    with pytest.raises(ADBConfigError, match=r"adb-shell\[usb\]"):
        ADBAgent(ADBSettings(name="usbphone", serial="R5CT10", key_file=adb_key[0])).probe()


# ---------------------------------------------------------------- hostile readings (issue 13, classes 2 and 4)
def test_a_nan_zone_never_hides_a_hot_one(sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str],
                                          ptl_models: list[Artifact]) -> None:
    phone = SimulatedPhone(fixtures_dir, zone_raw={0: "nan", 1: "95000", 2: "-9999900"})
    naps: list[float] = []
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], phone=phone) as daemon:
        with ADBAgent(settings(daemon.port, adb_key[0], max_temperature_c=40.0, cooldown_timeout_s=2.0,
                               cooldown_poll_s=1.0), sleep=naps.append) as agent:
            assert agent.temperature_c() == 95.0
            reading = agent.telemetry()
            readings = agent.temperatures()
            agent.run(ptl_models[:1], [Burst(0, 0, 1)])
            info = dict(agent.last_run)
    names = phone.text("thermal_zone_types_xperia_xz_premium_msm8998_truncated.txt").split()
    assert reading.temperature_c == 95.0
    assert {entry.split("=")[0] for entry in reading.dropped} == {f"zone:{names[0]}", f"zone:{names[2]}"}
    assert all(value == value and -40 <= value <= 150 for value in readings.values())  # no NaN, nothing absurd
    assert readings[f"zone:{names[1]}"] == 95.0 and f"zone:{names[0]}" not in readings
    assert naps == [1.0, 1.0] and info["cooldown_timed_out"]  # the 95 C sensor kept it waiting


def test_telemetry_reads_only_the_masked_cores(adbd: ADBDaemonSimulation, adb_key: tuple[str, str]) -> None:
    with ADBAgent(settings(adbd.port, adb_key[0], cpu_mask="c0")) as agent:
        facts = agent.probe()
        reading = agent.telemetry()
    masked = [facts.frequencies_khz[f"cpu{core}"] / 1000 for core in (6, 7)]
    assert reading.cpu_freq_mhz == pytest.approx(sum(masked) / 2)
    assert reading.governor == ",".join(sorted({facts.governor["cpu6"], facts.governor["cpu7"]}))


@pytest.mark.parametrize("online", ["0-20000000\n", "0-99999999999999999999\n"])
def test_a_hostile_cpu_count_is_not_believed(sandbox: Path, fixtures_dir: Path, adb_key: tuple[str, str],
                                             online: str) -> None:
    phone = SimulatedPhone(fixtures_dir, online_cpus=online)
    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[adb_key[1]], phone=phone) as daemon:
        with ADBAgent(settings(daemon.port, adb_key[0])) as agent:
            facts = agent.probe()
    assert facts.cores == 5  # the processor blocks of /proc/cpuinfo, not twenty million
