"""SSHAgent against a real OpenSSH sshd on 127.0.0.1 (this machine plays the board).

Real: sshd, paramiko, SFTP, taskset, the runner, the lite interpreter and the
LiteRT interpreter. The only stand-in is the "tiny" space for the TFLite path
(an NB201 LiteRT conversion costs about a minute on this shared machine;
farm/build's tests convert one tiny model the same way). The cool-down loop is
in test_ssh_cooldown.py (this VM has no thermal zones), hostile boards in
test_ssh_hostile_device.py, host keys in test_ssh_connection.py.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.base import ArtifactRejected, Burst, DeviceUnavailable
from agents.ssh import DeviceSetupError, HygieneSettings, SSHAgent, SSHSettings

pytestmark = pytest.mark.timeout(240)


def settings_for(sshd, tmp_path: Path, **overrides) -> SSHSettings:
    values = dict(
        host=sshd.host,
        port=sshd.port,
        user=sshd.user,
        key_file=str(sshd.client_key),
        known_hosts=str(sshd.known_hosts),
        python=sys.executable,
        workdir=str(tmp_path / "remote"),
        connect_timeout_s=5.0,
        command_timeout_s=120.0,
    )
    values.update(overrides)
    return SSHSettings(**values)


def test_measures_real_nasbench201_archs_end_to_end_with_torchscript(sshd, tmp_path: Path, artifact_cache: Path) -> None:
    from farm import spaces
    from farm.build import build_artifact
    from farm.inventory import Device
    from farm.protocol import make, measure_batch

    device = Device(
        name="loopback-board",
        kind="ssh",
        platform="x86-vm",
        runtimes=["torchscript"],
        hygiene={"affinity": [0], "max_temperature_c": 95.0, "cooldown_timeout_s": 5.0},
        ssh={
            "host": sshd.host, "port": sshd.port, "user": sshd.user, "key_file": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts), "python": sys.executable, "workdir": str(tmp_path / "remote"),
        },
    )
    space = spaces.get("nasbench201")
    artifacts = [build_artifact(space, arch, "torchscript", 1, None, artifact_cache) for arch in space.sample(2, seed=7)]
    assert all(a.input_size == space.default_input_size and a.path.endswith(".ptl") and a.sha256 for a in artifacts)
    protocol = make("interleaved", warmup=1, runs=3, rounds=2, max_repeats=0)

    with SSHAgent.from_device(device, campaign_id="c-nb201") as agent:
        facts = agent.probe()
        assert facts.hostname == socket.gethostname() and facts.cores >= 1
        assert facts.extra["taskset"] is True and "torch" in facts.runtime_versions
        for artifact in artifacts:
            agent.prepare(artifact)
        remote = tmp_path / "remote" / "c-nb201"
        assert sorted(p.name for p in (remote / "artifacts").iterdir()) == sorted(f"{a.sha256}.ptl" for a in artifacts)

        summaries = measure_batch(agent, artifacts, protocol, seed=0)
        assert [len(s.samples_ms) for s in summaries] == [6, 6]
        assert all(s.latency_ms > 0 for s in summaries)
        assert agent.last_run.affinity == [0]  # the runner really ran under taskset -c 0
        assert agent.last_run.threads == 1 and agent.last_run.runtime_versions["torch"]
        assert agent.last_cooldown.limit_c == 95.0 and not agent.last_cooldown.timed_out
    assert not remote.exists()  # close() cleaned up the campaign directory


def test_tflite_model_measured_over_ssh(sshd, tmp_path: Path, tiny_tflite) -> None:
    with SSHAgent(settings_for(sshd, tmp_path), campaign_id="c-tflite") as agent:
        agent.prepare(tiny_tflite)
        samples = agent.run([tiny_tflite], [Burst(0, 1, 4), Burst(0, 0, 3)])
    assert len(samples[0]) == 7 and min(samples[0]) > 0


def test_hostile_inventory_values_never_reach_the_shell_unquoted(sshd, tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    workdir = tmp_path / f"dir with space;touch {canary};$(touch {canary})"
    agent = SSHAgent(settings_for(sshd, tmp_path, workdir=str(workdir)), campaign_id="c-quote", hygiene=HygieneSettings(affinity=(0,)))
    words = shlex.split(agent._command(f"{workdir}/runner.py"))
    assert words[:3] == ["cd", f"{workdir}/c-quote", "&&"] and words[-3] == f"{workdir}/runner.py" and words[-1] == "--serve"
    with agent:
        assert agent.probe().hostname == socket.gethostname()
        assert (workdir / "c-quote").is_dir()
    assert not canary.exists() and not (workdir / "c-quote").exists()
    with pytest.raises(ValueError, match="campaign id"):
        SSHAgent(settings_for(sshd, tmp_path), campaign_id="c1; rm -rf ~")


@pytest.mark.parametrize("campaign_id", ["pi4\n", "c1\n", "\nc1", "c1\nrm", "-c1", "c 1", "", "c" * 256])
def test_a_campaign_id_must_match_the_safe_pattern_whole(campaign_id: str) -> None:
    """Issue 13, class 7: ``$`` matches before a trailing newline; the id is matched whole instead."""
    with pytest.raises(ValueError, match="campaign id .*no newline"):
        SSHAgent(SSHSettings(host="board", user="bench"), campaign_id=campaign_id)
    assert SSHAgent(SSHSettings(host="board", user="bench"), campaign_id="c" * 255).remote_dir.endswith("/" + "c" * 255)


@pytest.mark.parametrize(
    ("python", "affinity", "message"),
    [
        ("/opt/no such/python3", None, "command not found .*check ssh.python"),
        (sys.executable, (4095,), "did not start .*taskset.*check hygiene.affinity"),
    ],
)
def test_device_setup_problems_are_permanent_errors(sshd, tmp_path: Path, python, affinity, message) -> None:
    agent = SSHAgent(
        settings_for(sshd, tmp_path, python=python), campaign_id="c-setup", hygiene=HygieneSettings(affinity=affinity)
    )
    with pytest.raises(DeviceSetupError, match=message) as caught:
        agent.probe()
    assert not caught.value.retryable
    agent.close()


def test_corrupt_artifact_is_rejected_and_a_batch_keeps_what_it_measured(sshd, tmp_path: Path, tiny_torchscript) -> None:
    from dataclasses import replace

    from farm.build import read_metadata

    good = tiny_torchscript[0]
    broken_file = tmp_path / "broken.ptl"
    broken_file.write_bytes(Path(good.path).read_bytes()[:-200])
    broken = replace(good, arch="broken", path=str(broken_file), sha256=None)
    assert read_metadata(good.path)["verified_with"] == "torch lite interpreter"
    with SSHAgent(settings_for(sshd, tmp_path), campaign_id="c-reject") as agent:
        with pytest.raises(ArtifactRejected, match="rejected tiny arch 'broken'.*torch cannot load") as caught:
            agent.prepare(broken)
        assert not caught.value.retryable
        with pytest.raises(ArtifactRejected, match="load") as caught:
            agent.run([good, broken], [Burst(0, 1, 3), Burst(1, 1, 3), Burst(0, 0, 2)])
        assert [len(runs) for runs in caught.value.partial_samples] == [5, 0]


def test_device_dropped_mid_run_then_reconnects(sshd_factory, tmp_path: Path, tiny_torchscript) -> None:
    daemon = sshd_factory()
    agent = SSHAgent(settings_for(daemon, tmp_path, reconnect_attempts=1), campaign_id="c-drop")
    worker, outcome, _ = _run_until_timing(agent, tiny_torchscript[0], f"{tmp_path}/remote/c-drop/runner-", 200)
    daemon.crash()
    worker.join(timeout=60)
    assert not worker.is_alive()
    error = outcome.get("error")
    assert isinstance(error, DeviceUnavailable) and error.retryable, error
    assert "unreachable" in error.message  # the retry on a fresh connection found the device gone

    daemon.start()  # the board comes back on the same address with the same host key
    assert agent.probe().hostname == socket.gethostname()
    agent.close()
    assert not (tmp_path / "remote" / "c-drop").exists()


def _runners(fragment: str) -> set[int]:
    peer = sys.modules["latfarm_tests_sshd_peer"]  # loaded by conftest
    return {pid for pid in peer.processes_running(fragment) if "&&" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_until_timing(agent: SSHAgent, artifact, fragment: str, bursts: int) -> tuple[threading.Thread, dict, int]:
    """Prepare, start ``bursts`` x 500 runs in a thread, return once the board's runner is busy timing."""
    agent.prepare(artifact)
    (runner,) = _runners(fragment)
    idle_cpu_s = _cpu_seconds(runner)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["samples"] = agent.run([artifact], [Burst(0, 0, 500)] * bursts)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while _cpu_seconds(runner) < idle_cpu_s + 0.3 and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker, outcome, runner


def test_a_network_blip_mid_run_is_retried_without_a_stray_runner(
    sshd_factory, tmp_path: Path, tiny_torchscript, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection dies, the board and its runner live on: the stale runner is stopped and the job re-run."""
    caplog.set_level(logging.WARNING, logger="agents.ssh")
    daemon = sshd_factory()
    agent = SSHAgent(settings_for(daemon, tmp_path, reconnect_attempts=1), campaign_id="c-blip")
    fragment = f"{tmp_path}/remote/c-blip/runner-"
    worker, outcome, first_runner = _run_until_timing(agent, tiny_torchscript[0], fragment, 60)
    assert daemon.drop_connections()
    worker.join(timeout=120)
    assert "error" not in outcome and len(outcome["samples"][0]) == 500 * 60  # re-run on a fresh connection
    assert f"stopped runner {first_runner}, left running by a dropped connection" in caplog.text
    assert first_runner not in _runners(fragment) and len(_runners(fragment)) == 1
    agent.close()
