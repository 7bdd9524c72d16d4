"""agents.remote_process.RemoteProcess on real commands over a real OpenSSH sshd on 127.0.0.1.

What a device prints is untrusted: lines are bounded (a line longer than the bound is refused as soon as
the bound is passed, not at the deadline), the stdout ``wait`` keeps and the stderr tail are bounded too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import paramiko
import pytest

from agents.base import DeviceUnavailable, RunFailed
from agents.remote_process import DeadlinePassed, LineTooLong, RemoteProcess
from agents.ssh_connection import connect
from tests.agents.test_ssh import settings_for

pytestmark = pytest.mark.timeout(120)


def dropped(error: BaseException | None) -> DeviceUnavailable:
    return DeviceUnavailable(f"the connection dropped ({error})")


@pytest.fixture
def client(sshd, tmp_path: Path) -> Iterator[paramiko.SSHClient]:
    connected = connect(settings_for(sshd, tmp_path), name="board")
    yield connected
    connected.close()


def start(client: paramiko.SSHClient, command: str, **limits: int) -> RemoteProcess:
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session(timeout=10)
    channel.exec_command(command)
    return RemoteProcess(channel, transport, time.monotonic, dropped, **limits)


def test_stdout_is_cut_into_lines_and_the_exit_status_is_kept(client: paramiko.SSHClient) -> None:
    process = start(client, "printf 'first\\nsecond line\\n\\npartial'; echo oops >&2; exit 3")
    deadline = time.monotonic() + 30
    assert [process.read_line(deadline) for _ in range(3)] == ["first", "second line", ""]
    assert process.read_line(deadline) is None  # exited; "partial" never got its newline
    assert process.wait(deadline) == 3 and process.stderr_tail() == "oops"
    assert not process.alive()


def test_a_line_longer_than_the_bound_is_refused_at_once_not_at_the_deadline(client: paramiko.SSHClient) -> None:
    process = start(client, "head -c 200000 /dev/zero | tr '\\0' x; sleep 60", max_line_bytes=1000)
    began = time.monotonic()
    with pytest.raises(LineTooLong, match="more than 1000 bytes") as caught:
        process.read_line(began + 50)
    assert time.monotonic() - began < 30 and isinstance(caught.value, RunFailed) and caught.value.retryable
    assert len(process.stdout) == 0  # the rest of that line is never read as the next one
    process.close()


def test_a_long_line_that_arrives_whole_with_its_newline_is_refused_too(client: paramiko.SSHClient) -> None:
    process = start(client, "printf 'short\\n'; head -c 5000 /dev/zero | tr '\\0' y; printf '\\nafter\\n'",
                    max_line_bytes=1000)
    deadline = time.monotonic() + 30
    time.sleep(0.5)  # let everything arrive in one chunk
    assert process.read_line(deadline) == "short"
    with pytest.raises(LineTooLong):
        process.read_line(deadline)
    process.close()


def test_wait_keeps_a_bounded_stdout_and_stderr(client: paramiko.SSHClient) -> None:
    process = start(client, "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; echo last words >&2",
                    max_line_bytes=4096)
    assert process.wait(time.monotonic() + 30) == 0
    assert len(process.stdout) == 4096 and process.stdout_truncated
    assert len(process.stderr) <= 1 << 16 and process.stderr_tail().endswith("last words")


def test_a_silent_command_passes_its_deadline_as_a_typed_error(client: paramiko.SSHClient) -> None:
    process = start(client, "sleep 60")
    with pytest.raises(DeadlinePassed) as caught:
        process.read_line(time.monotonic() + 0.5)
    assert caught.value.retryable and process.alive()
    process.close()


def test_a_crashed_device_is_what_dropped_makes(sshd_factory, tmp_path: Path) -> None:
    daemon = sshd_factory()
    connected = connect(settings_for(daemon, tmp_path), name="board")
    process = start(connected, "echo ready; sleep 60")
    assert process.read_line(time.monotonic() + 30) == "ready"
    daemon.crash()
    with pytest.raises(DeviceUnavailable, match="the connection dropped"):
        process.read_line(time.monotonic() + 30)
    connected.close()
