"""A campaign over three SSH boards through Ray: one healthy, one that drops mid-campaign, one impostor.

Real: Ray (device actors in worker processes, build tasks), farm.build (verified TorchScript
lite ``.ptl`` of real NAS-Bench-201 archs), OpenSSH sshd on 127.0.0.1, paramiko, SFTP, taskset,
the on-device runner and the lite interpreter, Parquet.

Simulated (and named so): the *failing board*. Its ``python`` is a wrapper around the real runner
(``dropping_board.py``, written below) that, on its second measurement job, tells the test it is
busy; the test then kills that board's sshd and every process it started, as a board losing power
mid-run would. The impostor board presents a host key that known_hosts does not hold.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

import pytest
import ray

from farm.inventory import Device
from farm.run import CampaignConfig, run_campaign
from farm.store import Store
from tests.agents.conftest import sshd_peer

pytestmark = pytest.mark.timeout(300)

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]

DROPPING_BOARD = '''
"""Simulation of a board that loses power during its second measurement job."""
import pathlib, sys, time
signal_file = pathlib.Path(sys.argv[1])
if sys.argv[2] == "-c" and not sys.argv[4].endswith(".py"):  # the workdir check: run it as python would
    script, sys.argv = sys.argv[3], ["-c", *sys.argv[4:]]
    exec(script, {"__name__": "__main__"})
    sys.exit(0)
# python -c BOOT RUNNER SHA256 ARGS (the farm's hash-checked start) or python RUNNER ARGS
runner_path, rest = (sys.argv[4], sys.argv[6:]) if sys.argv[2] == "-c" else (sys.argv[2], sys.argv[3:])
namespace = {"__name__": "runner", "__file__": runner_path}
exec(compile(open(runner_path).read(), runner_path, "exec"), namespace)
real_execute, runs = namespace["execute"], []

def execute(job):
    if job["mode"] == "run":
        runs.append(job)
        if len(runs) == 2:
            signal_file.write_text("busy with job 2")
            time.sleep(600)  # killed with the rest of the board
    return real_execute(job)

namespace["execute"] = execute
sys.exit(namespace["main"](rest))
'''


@pytest.fixture(scope="module")
def ray_session():  # noqa: ANN201
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture
def boards(tmp_path: Path):  # noqa: ANN201
    started = []
    try:
        for name in ("healthy", "dropping", "impostor"):
            started.append(sshd_peer.start_sshd(tmp_path / f"sshd-{name}"))
    except sshd_peer.SSHDUnavailable as error:
        pytest.skip(f"no sshd: {error}")
    yield started
    for daemon in started:
        daemon.stop()


def board(name: str, daemon, tmp_path: Path, *, python: str = sys.executable, known_hosts: Path | None = None) -> Device:
    return Device(
        name=name, kind="ssh", platform="x86-vm-over-ssh", runtimes=["torchscript"], threads=1,
        protocol={"name": "interleaved", "warmup": 1, "runs": 3, "rounds": 2, "max_ci": 10.0},
        hygiene={"affinity": [0]},
        ssh={"host": daemon.host, "port": daemon.port, "user": daemon.user, "key_file": str(daemon.client_key),
             "known_hosts": str(known_hosts or daemon.known_hosts), "python": python,
             "workdir": str(tmp_path / f"remote-{name}")},
    )


def test_ssh_campaign_carries_on_and_keeps_what_was_measured(ray_session: None, boards, tmp_path: Path) -> None:
    healthy, dropping, impostor = boards
    signal_file = tmp_path / "dropping-board-busy"
    script = tmp_path / "dropping_board.py"
    script.write_text(DROPPING_BOARD)
    stranger_known_hosts = tmp_path / "stale_known_hosts"  # the impostor's key differs from the recorded one
    stranger_known_hosts.write_text(healthy.host_key_line.replace(f"]:{healthy.port} ", f"]:{impostor.port} ") + "\n")

    def pull_the_plug() -> None:
        while not signal_file.exists():
            if done.wait(0.05):
                return
        dropping.crash()

    done = threading.Event()
    crasher = threading.Thread(target=pull_the_plug)
    crasher.start()
    try:
        devices = [
            board("board-a", healthy, tmp_path),
            board("board-b", dropping, tmp_path, python=f"{sys.executable} {script} {signal_file}"),
            board("board-c", impostor, tmp_path, known_hosts=stranger_known_hosts),
        ]
        summary = run_campaign(CampaignConfig(
            "nasbench201", ARCHS, devices, tmp_path / "store", job_size=1, jobs_per_device=1, max_attempts=2,
            backoff_s=0.05, down_after=2, progress=False, artifact_dir=str(tmp_path / "artifacts"),
            anchors=0))  # one-arch jobs: the drop, not drift, is under test
    finally:
        done.set()
        crasher.join()

    rows = Store(tmp_path / "store").read()
    assert not rows.duplicated(["device", "arch"]).any()
    good = rows[rows["device"] == "board-a"]
    assert sorted(good["arch"]) == sorted(ARCHS) and set(good["status"]) == {"ok"}
    assert set(good["device_kind"]) == {"ssh"} and set(good["runtime"]) == {"torchscript"}
    assert all(len(samples) == 6 and min(samples) > 0 for samples in good["samples_ms"])

    # The dropping board: its first job was measured before the drop and is kept; the rest failed, saying why.
    dropped = rows[rows["device"] == "board-b"].set_index("arch")
    assert signal_file.exists()
    assert (dropped["status"] == "ok").sum() == 1 and len(dropped["samples_ms"].iloc[0]) == 6
    failed = dropped[dropped["status"] == "failed"]
    assert len(failed) >= 1 and failed["error"].str.contains("dropped|unreachable").all()

    # The impostor is refused at connection; the farm marks it down and every arch gets a failed row saying why.
    impostor_rows = rows[rows["device"] == "board-c"]
    assert sorted(impostor_rows["arch"]) == sorted(ARCHS)
    assert set(impostor_rows["status"]) == {"failed"}
    assert impostor_rows["error"].str.contains("host key mismatch").all()

    by_device = {d.device: d for d in summary.devices}
    assert by_device["board-a"].measured == len(ARCHS)
    assert by_device["board-b"].measured == 1 and by_device["board-b"].down_reason
    assert by_device["board-b"].failed + by_device["board-b"].not_measured == len(ARCHS) - 1
    assert by_device["board-c"].measured == 0 and "host key mismatch" in by_device["board-c"].down_reason
    assert by_device["board-c"].failed == len(ARCHS) and by_device["board-c"].not_measured == 0
