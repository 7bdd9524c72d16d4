"""farm.ray_stop: stops the processes of one Ray temp dir and the processes below them, nothing else.

The processes are real (python interpreters); they carry the ``--option=<temp dir>/...`` arguments by
which Ray's daemons name their temp dir. A real Ray head started by cluster.yaml's own start command
is stopped this way in tests/e2e/test_ray_up.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from farm.ray_stop import cluster_processes, stop_cluster

PARENT = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
          "print(child.pid, flush=True); time.sleep(120)")


def start(*args: str) -> tuple[subprocess.Popen[str], int]:
    """A process with ``args`` on its command line and one child (as raylet has its workers)."""
    process = subprocess.Popen([sys.executable, "-c", PARENT, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_only_the_temp_dirs_processes_and_their_children_are_stopped(tmp_path: Path) -> None:
    ours, ours_child = start(f"--session_dir={tmp_path}/a/session_1")
    address, address_child = start("--address=10.9.8.7:6379")  # the client server names the recorded GCS address
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "a" / "ray_current_cluster").write_text("10.9.8.7:6379")
    other, other_child = start(f"--session_dir={tmp_path}/b/session_1")
    bystander, bystander_child = start(str(tmp_path / "a"))  # names the folder, but not as a Ray daemon does
    try:
        found = cluster_processes(str(tmp_path / "a"))
        assert {ours.pid, ours_child, address.pid, address_child} <= set(found)
        assert not {other.pid, other_child, bystander.pid, bystander_child} & set(found)
        report = stop_cluster(str(tmp_path / "a"), grace_s=5)
        assert set(report.stopped) == set(found)
        ours.wait(timeout=10)
        address.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (alive(ours_child) or alive(address_child)):
            time.sleep(0.1)
        assert not alive(ours_child) and not alive(address_child)
        assert all(alive(pid) for pid in (other.pid, other_child, bystander.pid, bystander_child))
    finally:
        for pid in (ours_child, address_child, other_child, bystander_child, ours.pid, address.pid, other.pid,
                    bystander.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in (ours, address, other, bystander):
            process.wait(timeout=10)


def test_the_command_refuses_a_temp_dir_that_is_the_home_folder() -> None:
    result = subprocess.run([sys.executable, "-m", "farm.ray_stop", "--temp-dir", "~"], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "too broad" in result.stderr
