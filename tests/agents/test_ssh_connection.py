"""agents.ssh_connection against a real OpenSSH sshd on 127.0.0.1: host-key policy, authentication, reachability.

Every refusal is typed: an unknown or changed host key and a refused key are permanent (a person must act),
an unreachable host is a retryable ``DeviceUnavailable``. Nothing is stubbed: the keys are generated with
ssh-keygen and the daemon is ``tests/agents/sshd_peer.py``.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import paramiko
import pytest

from agents.base import DeviceUnavailable
from agents.ssh import SSHAgent
from agents.ssh_connection import HostKeyError, HostKeyMismatch, SSHAuthFailed, UnknownHostKey, connect, is_active
from tests.agents.test_ssh import settings_for

pytestmark = pytest.mark.timeout(120)


def echo(client: paramiko.SSHClient) -> str:
    """What ``echo ok`` prints on the connected device: proof the session really works."""
    _, stdout, _ = client.exec_command("echo ok", timeout=30)
    return stdout.read().decode().strip()


def new_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_a_known_host_with_the_right_key_connects_and_stays_active(sshd, tmp_path: Path) -> None:
    client = connect(settings_for(sshd, tmp_path), name="board")
    try:
        assert is_active(client) and echo(client) == "ok"
    finally:
        client.close()
    assert not is_active(client)


def test_unreachable_host_is_retryable_device_unavailable_also_through_the_agent(sshd, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = settings_for(sshd, tmp_path, port=closed_port)
    with pytest.raises(DeviceUnavailable, match="unreachable") as caught:
        connect(settings, name="board")
    assert caught.value.retryable and type(caught.value) is DeviceUnavailable
    with pytest.raises(DeviceUnavailable, match=f"device 'board' \\(.*:{closed_port}\\): unreachable"):
        SSHAgent(settings, campaign_id="c", name="board").probe()


def test_wrong_or_missing_key_is_an_auth_failure_that_is_not_retried(sshd, tmp_path: Path) -> None:
    stranger = new_key(tmp_path / "stranger")
    with pytest.raises(SSHAuthFailed, match="authentication failed with key .*stranger") as caught:
        connect(settings_for(sshd, tmp_path, key_file=str(stranger)))
    assert isinstance(caught.value, DeviceUnavailable) and not caught.value.retryable
    with pytest.raises(SSHAuthFailed, match="does not exist"):
        connect(settings_for(sshd, tmp_path, key_file=str(tmp_path / "nope")))


def test_host_key_mismatch_is_a_permanent_error(sshd, tmp_path: Path) -> None:
    impostor = new_key(tmp_path / "impostor")
    known_hosts = tmp_path / "known_hosts"
    public = " ".join(Path(f"{impostor}.pub").read_text().split()[:2])
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {public}\n")
    with pytest.raises(HostKeyMismatch, match="host key mismatch.*do not connect") as caught:
        connect(settings_for(sshd, tmp_path, known_hosts=str(known_hosts)))
    assert not caught.value.retryable and "\n" not in str(caught.value)


def test_unknown_host_refused_unless_trust_on_first_use_which_records_it(sshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"
    with pytest.raises(UnknownHostKey, match="is not in .*known_hosts.*ssh-keyscan") as caught:
        connect(settings_for(sshd, tmp_path, known_hosts=str(known_hosts)))
    assert not caught.value.retryable and not known_hosts.exists()

    trusting = connect(settings_for(sshd, tmp_path, known_hosts=str(known_hosts), trust_on_first_use=True))
    assert echo(trusting) == "ok"
    trusting.close()
    assert known_hosts.read_text().strip() == sshd.host_key_line
    verified = connect(settings_for(sshd, tmp_path, known_hosts=str(known_hosts)))  # the recorded key, no trust
    assert echo(verified) == "ok"
    verified.close()


def test_a_known_hosts_that_is_not_utf8_is_a_one_line_permanent_host_key_error(sshd, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(b"\xff\xfe not a known_hosts line \x80\n")
    with pytest.raises(HostKeyError, match=f"cannot read ssh.known_hosts {known_hosts}") as caught:
        connect(settings_for(sshd, tmp_path, known_hosts=str(known_hosts)))
    assert not caught.value.retryable and "\n" not in str(caught.value)
