"""A real OpenSSH ``sshd`` on 127.0.0.1 for the SSH agent tests (the "device" is this machine).

It runs ``/usr/sbin/sshd -D -e -f CONFIG`` with a generated host key and an
authorized_keys file for a generated client key, in a temp directory
(``StrictModes no`` because that directory is world-readable, ``UsePAM no``
so no system login stack is involved). It is stopped by its PID.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


class SSHDUnavailable(RuntimeError):
    """sshd is not installed or cannot start here; the tests that need it skip with this message."""


@dataclass
class SSHDaemon:
    root: Path
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key_line: str
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def config(self) -> Path:
        return self.root / "sshd_config"

    def start(self) -> "SSHDaemon":
        """Start sshd on ``port`` and wait until it accepts connections."""
        log = open(self.root / "sshd.log", "ab")
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SSHDUnavailable(f"sshd exited with {self.process.returncode}: {(self.root / 'sshd.log').read_text()[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as probe:
                    if probe.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SSHDUnavailable(f"sshd did not answer on port {self.port} within 15 s")

    def stop(self) -> None:
        """Stop the listener by its PID (existing sessions end when their clients close)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)

    def drop_connections(self) -> list[int]:
        """The network blips: SIGKILL every per-connection sshd process; the listener and the commands it started live on."""
        assert self.process is not None
        victims = [pid for pid in _descendants(self.process.pid) if _comm(pid).startswith("sshd")]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return victims

    def crash(self) -> list[int]:
        """The device drops off the network: SIGKILL the listener and every session process it spawned."""
        assert self.process is not None
        victims = _descendants(self.process.pid) + [self.process.pid]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=5)
        return victims


def start_sshd(root: Path) -> SSHDaemon:
    """Generate keys and a config under ``root`` and start sshd on a free port."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise SSHDUnavailable(f"{SSHD} or ssh-keygen not installed (apt-get install openssh-server)")
    try:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    except PermissionError as error:
        raise SSHDUnavailable(f"cannot create /run/sshd: {error}") from error
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_ed25519", root / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (root / "authorized_keys").write_text((root / "client_ed25519.pub").read_text())
    port = free_port()
    host_public = " ".join((root / "host_ed25519.pub").read_text().split()[:2])
    daemon = SSHDaemon(
        root=root,
        port=port,
        user=getpass.getuser(),
        client_key=client_key,
        known_hosts=root / "known_hosts",
        host_key_line=f"[127.0.0.1]:{port} {host_public}",
    )
    daemon.known_hosts.write_text(daemon.host_key_line + "\n")
    daemon.config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "UseDNS no",
                "PrintMotd no",
                "MaxStartups 50",
                "MaxSessions 50",
                "LogLevel ERROR",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return daemon.start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def processes_running(fragment: str) -> list[int]:
    """PIDs of every process on this machine whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if fragment in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
