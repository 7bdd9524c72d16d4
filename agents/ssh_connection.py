"""Reaching a board over SSH: the settings, the host-key policy and an authenticated paramiko client.

Host keys are checked against ``known_hosts``. An unknown host is refused
(:class:`UnknownHostKey`) unless the inventory sets ``trust_on_first_use``, and then
its key is appended to ``known_hosts``; a changed key is always refused
(:class:`HostKeyMismatch`). Both are permanent errors. Authentication is by key file
or ssh-agent only; no password is ever sent, and a refused key is :class:`SSHAuthFailed`
(not retried: retrying a wrong key only trips fail2ban). An unreachable host is a
retryable :class:`~agents.base.DeviceUnavailable`.

Example:
    >>> SSHSettings(host="pi4.lab", user="bench", port=2222).address
    'bench@pi4.lab:2222'
    >>> connect(SSHSettings(host="pi4.lab", user="bench", key_file="/nonexistent/key"), name="pi4")
    Traceback (most recent call last):
    ...
    agents.ssh_connection.SSHAuthFailed: device 'pi4' (bench@pi4.lab:22): ssh.key_file /nonexistent/key does not exist; fix the path or omit it to use ssh-agent
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from agents.base import AgentError, DeviceUnavailable

__all__ = [
    "HostKeyError",
    "HostKeyMismatch",
    "SSHAuthFailed",
    "SSHSettings",
    "UnknownHostKey",
    "connect",
    "is_active",
]

logger = logging.getLogger(__name__)


class HostKeyError(AgentError):
    """The device's host key cannot be trusted. Permanent: a person must look at it."""

    retryable = False


class HostKeyMismatch(HostKeyError):
    """The device presented a different host key than ``known_hosts`` holds (re-imaged, or an impostor)."""


class UnknownHostKey(HostKeyError):
    """The device is not in ``known_hosts`` and the inventory does not opt into trust-on-first-use."""


class SSHAuthFailed(DeviceUnavailable):
    """The device refused the key. Not retryable: the inventory or authorized_keys must change."""

    retryable = False


@dataclass(frozen=True)
class SSHSettings:
    """How to reach the device; mirrors the inventory's ``ssh:`` block plus timeouts.

    ``python`` is the interpreter on the device (a path or a command; split with
    ``shlex.split`` and every word quoted). ``workdir`` holds one directory per campaign
    (``~/`` at its start means the login directory). ``check_timeout_s`` bounds loading
    and running a model once in ``SSHAgent.prepare`` (the first one also imports the runtime).
    """

    host: str
    user: str
    port: int = 22
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    trust_on_first_use: bool = False
    python: str = "python3"
    workdir: str = "~/.cache/latfarm"
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0
    check_timeout_s: float = 300.0
    run_timeout_s: float = 3600.0
    keepalive_s: int = 15
    reconnect_attempts: int = 1

    @property
    def address(self) -> str:
        """``user@host:port``, as messages name the device's endpoint."""
        return f"{self.user}@{self.host}:{self.port}"


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(
            f"host {hostname} ({key.get_name()} {key.fingerprint}) is not in {self.known_hosts}; check the fingerprint "
            f"on the device, then add it (ssh-keyscan -p PORT HOST >> {self.known_hosts}) or set ssh.trust_on_first_use"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host once and append its key to ``known_hosts`` (a changed key is still refused)."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.known_hosts, "a", encoding="utf-8") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        logger.warning("trust on first use: recorded %s %s in %s", hostname, key.fingerprint, self.known_hosts)


def connect(settings: SSHSettings, *, name: str = "") -> paramiko.SSHClient:
    """An authenticated, host-key-verified client; typed :class:`AgentError` subclasses on failure."""
    label = f"device {name or settings.host!r} ({settings.address})"
    known_hosts = Path(settings.known_hosts).expanduser()
    key_file = str(Path(settings.key_file).expanduser()) if settings.key_file else None
    if key_file and not os.path.isfile(key_file):
        raise SSHAuthFailed(f"{label}: ssh.key_file {key_file} does not exist; fix the path or omit it to use ssh-agent")
    client = paramiko.SSHClient()
    if known_hosts.is_file():
        try:
            client.load_host_keys(str(known_hosts))
        except (OSError, UnicodeDecodeError, paramiko.SSHException) as error:
            raise HostKeyError(f"{label}: cannot read ssh.known_hosts {known_hosts}: {error}") from error
    policy = _TrustOnFirstUse(known_hosts) if settings.trust_on_first_use else _RefuseUnknown(known_hosts)
    client.set_missing_host_key_policy(policy)
    try:
        client.connect(
            settings.host,
            port=settings.port,
            username=settings.user,
            key_filename=key_file,
            allow_agent=key_file is None,
            look_for_keys=False,
            timeout=settings.connect_timeout_s,
            banner_timeout=settings.connect_timeout_s,
            auth_timeout=settings.connect_timeout_s,
        )
    except HostKeyError as error:
        client.close()
        error.message = f"{label}: {error.message}"
        error.args = (error.message,)
        raise
    except paramiko.BadHostKeyException as error:
        client.close()
        raise HostKeyMismatch(
            f"{label}: host key mismatch: the device offers {error.key.get_name()} {error.key.fingerprint} but "
            f"{known_hosts} records {error.expected_key.fingerprint}; if the device was re-imaged, verify and replace "
            "its known_hosts line, otherwise do not connect"
        ) from error
    except paramiko.PasswordRequiredException as error:
        client.close()
        raise SSHAuthFailed(f"{label}: ssh.key_file {key_file} is encrypted; load it into ssh-agent and omit key_file") from error
    except paramiko.AuthenticationException as error:
        client.close()
        how = f"key {key_file}" if key_file else "the keys in ssh-agent"
        raise SSHAuthFailed(f"{label}: authentication failed with {how}; add its public key to the device's authorized_keys") from error
    except TimeoutError as error:  # socket.timeout is an alias
        client.close()
        raise DeviceUnavailable(f"{label}: no answer within {settings.connect_timeout_s:.0f} s") from error
    except (paramiko.SSHException, EOFError, OSError) as error:
        client.close()
        raise DeviceUnavailable(f"{label}: unreachable ({type(error).__name__}: {error})") from error
    transport = client.get_transport()
    if transport is not None and settings.keepalive_s > 0:
        transport.set_keepalive(settings.keepalive_s)
    return client


def is_active(client: paramiko.SSHClient) -> bool:
    """Whether ``client`` still has a live transport (the connection has not dropped)."""
    transport = client.get_transport()
    return transport is not None and transport.is_active()
