"""A real OpenSSH ``sshd`` on 127.0.0.1 for the SSH agent tests (the "device" is this machine).

It runs ``/usr/sbin/sshd -D -e -f CONFIG`` with a generated host key and an
authorized_keys file for a generated client key, in a temp directory
(``StrictModes no`` because that directory is world-readable, ``UsePAM no``
so no system login stack is involved). It is stopped by its PID.

:func:`hostile_board_python` makes the *simulation* of a hostile or broken board: an
``ssh.python`` that runs the real runner but reports the thermal zones a test asks for,
or answers with the raw lines a test asks for.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import sys
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")

HOSTILE_BOARD = '''
"""Simulation of a hostile or broken board: the real runner, with the thermal zones and answers a test asks for.

argv: PLAN.json -c SCRIPT ARGS (what the SSH agent runs as ``python -c``). The plan's ``thermal_c`` replaces
the zones the runner reads; ``lies`` maps ``hello`` (the greeting) or ``reply`` (the first job's answer) to the
raw line sent instead (a string, or [piece, count] for piece * count), for the first runner started only.
"""
import json, os, pathlib, sys
plan_path = pathlib.Path(sys.argv[1])
plan = json.loads(plan_path.read_text())
if "hashlib.sha256(source)" not in sys.argv[3]:  # not the runner boot (the workdir check): run it as python would
    script, sys.argv = sys.argv[3], ["-c", *sys.argv[4:]]
    exec(script, {"__name__": "__main__"})
    sys.exit(0)
runner_path, rest = sys.argv[4], sys.argv[6:]
namespace = {"__name__": "runner", "__file__": runner_path}
exec(compile(open(runner_path).read(), runner_path, "exec"), namespace)
if "thermal_c" in plan:
    namespace["thermal_zones"] = lambda: dict(plan["thermal_c"])
marker = plan_path.with_name(plan_path.name + ".lied")
lies = {} if marker.exists() else plan.get("lies", {})
if lies:
    marker.write_text("the first runner lied")


def channel():
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sent = []

    def write(result):
        lie = lies.get("reply" if sent else "hello")
        sent.append(1)
        if isinstance(lie, list):
            lie = lie[0] * lie[1]
        data = ((json.dumps(result) if lie is None else lie) + "\\n").encode()
        while data:
            data = data[os.write(result_fd, data):]

    return write


namespace["_result_channel"] = channel
sys.exit(namespace["main"](rest))
'''


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


def hostile_board_python(root: Path, plan: dict) -> str:
    """An ``ssh.python`` command for the hostile-board simulation (:data:`HOSTILE_BOARD`) following ``plan``.

    ``plan``: ``thermal_c`` (zone -> value, NaN and inf allowed) and/or ``lies`` (``hello`` / ``reply`` -> raw line).
    """
    root.mkdir(parents=True, exist_ok=True)
    script, plan_file = root / "hostile_board.py", root / "hostile_board_plan.json"
    script.write_text(HOSTILE_BOARD)
    plan_file.write_text(json.dumps(plan))
    return " ".join(shlex.quote(word) for word in (sys.executable, str(script), str(plan_file)))


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
