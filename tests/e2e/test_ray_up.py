"""The headline command for real: ``ray up`` + ``ray submit cluster.yaml measure.py`` with the shipped cluster.yaml.

Real parts only: OpenSSH's sshd on 127.0.0.1 (``tests/agents/sshd_peer.py``), Ray's own cluster
launcher (``ray up``/``submit``/``rsync-down``/``down``, rsync over ssh), a throwaway Unix account
with its own home as the cluster's ``ssh_user`` (created with ``useradd``, removed after), pip
installing latfarm into that home, Ray started by cluster.yaml's start commands, Parquet.

The test changes only ``provider.head_ip``, ``provider.worker_ips`` and ``auth`` of cluster.yaml.
Ray's SSH runner has no port option, so ``auth.ssh_proxy_command`` runs a byte relay
(``relay.py`` below) to the sshd's port. It skips, with the reason, only where there is no root,
no sshd, no ``useradd`` or no rsync (``make test`` installs openssh-server and rsync).

``test_a_client_without_the_token_is_refused`` runs cluster.yaml's own head start command (with a
free port instead of 6379) and connects without the token, with a wrong one, and with the right one.
"""

from __future__ import annotations

import copy
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.agents.conftest import sshd_peer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CLUSTER = REPO / "cluster.yaml"
SITE_KEYS = ("provider", "auth")  # what a user edits (head_ip, worker_ips inside provider)

RELAY = '''
"""ssh ProxyCommand: relay stdin/stdout to HOST:PORT (Ray's SSH runner has no port option)."""
import os, selectors, socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
selector = selectors.DefaultSelector()
selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
selector.register(sock, selectors.EVENT_READ)
while True:
    for key, _ in selector.select():
        if key.fileobj is sock:
            data = sock.recv(65536)
            if not data:
                sys.exit(0)
            os.write(sys.stdout.fileno(), data)
        else:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                selector.unregister(sys.stdin.fileno())
            else:
                sock.sendall(data)
'''

ARCHS = 3


# ----------------------------------------------------------------- helpers
def tool_env(home: Path) -> dict[str, str]:
    """Environment for Ray's CLI: this venv first on PATH, a throwaway HOME, no Ray settings of our own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}", PYTHONUNBUFFERED="1")
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path) -> str:
    """Run a command, keep its output in ``log``; fail the test with the output's tail when it fails."""
    started = time.monotonic()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(args)}  ({time.monotonic() - started:.1f} s, exit {result.returncode})\n{output}")
    assert result.returncode == 0, f"{' '.join(args[:3])} failed ({result.returncode}):\n{output[-4000:]}"
    return output


def processes_of(uid: int) -> list[int]:
    """PIDs of every process owned by ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            match = re.search(r"^Uid:\s+(\d+)", status, re.M)
            if match and int(match.group(1)) == uid and "State:\tZ" not in status:
                found.append(int(entry.name))
    return found


def _is_sshd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("sshd")
    except OSError:
        return False


def wait_until_gone(pids_of: "callable[[], list[int]]", seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := pids_of()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@contextmanager
def launcher_state_kept() -> Iterator[None]:
    """Ray's local provider keeps /tmp/cluster-<name>.state; put back whatever a real cluster had there."""
    paths = [Path(f"/tmp/cluster-latfarm.{suffix}") for suffix in ("state", "lock")]
    saved = {path: path.read_bytes() for path in paths if path.exists()}
    try:
        yield
    finally:
        for path in paths:
            if path in saved:
                path.write_bytes(saved[path])
            else:
                path.unlink(missing_ok=True)


@dataclass
class ClusterUser:
    name: str
    uid: int
    home: Path


@contextmanager
def throwaway_user() -> Iterator[ClusterUser]:
    """A Unix account with its own home under /tmp: the cluster's ssh_user, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the cluster's throwaway ssh_user (useradd)")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel not installed")
    name = f"lfe2e{secrets.token_hex(3)}"
    base = Path(tempfile.mkdtemp(prefix="lfe2e", dir="/tmp"))  # short: Ray's socket paths live in the home
    os.chmod(base, 0o755)
    home = base / "h"
    # password "*": no password login, but not a locked account, which sshd (without PAM) would refuse
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", "--password", "*",
                    name], check=True, capture_output=True)
    user = ClusterUser(name=name, uid=pwd.getpwnam(name).pw_uid, home=home)
    try:
        # this machine's package mirror (a pip config), as a lab's own hosts would have it
        for config in (Path.home() / ".config/pip/pip.conf", Path("/etc/pip.conf")):
            if config.is_file() and config.parent.name == "pip":
                target = home / ".config" / "pip" / "pip.conf"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(config, target)
                subprocess.run(["chown", "-R", f"{name}:{name}", str(home / ".config")], check=True)
        yield user
    finally:
        for pid in processes_of(user.uid):  # only this test's account's processes
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        wait_until_gone(lambda: processes_of(user.uid), 10)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def project_copy(target: Path, help_table_path: Path) -> Path:
    """The user's project: this working tree's files, an inventory with the head's CPU and a replay device.

    The replay table lives under devices/, the folder cluster.yaml syncs with the project.
    """
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / "devices").mkdir(exist_ok=True)
    table = pq.read_table(help_table_path, filters=[("device", "=", "pixel3"), ("search_space", "=", "nasbench201")])
    pq.write_table(table, target / "devices" / "replay-pixel3.parquet")
    (target / "inventory.yaml").write_text("""\
devices:
  - name: cpu-local
    kind: cpu
    runtimes: [torch]
    threads: 1
    protocol: {name: interleaved, warmup: 1, runs: 3, rounds: 2}
  - name: replay-pixel3-simulation
    kind: replay
    platform: pixel3
    replay: {table: devices/replay-pixel3.parquet, device: pixel3}
""")
    return target


def site_config(shipped: dict, user: ClusterUser, key: Path, proxy: str) -> dict:
    """The shipped cluster.yaml with only head_ip, worker_ips and auth changed."""
    config = copy.deepcopy(shipped)
    config["provider"]["head_ip"] = "127.0.0.1"
    config["provider"]["worker_ips"] = []
    config["auth"] = {"ssh_user": user.name, "ssh_private_key": str(key), "ssh_proxy_command": proxy}
    return config


def read_rows(store: Path) -> pd.DataFrame:
    from farm.store import Store

    assert any(store.rglob("*.parquet")), f"no Parquet rows under {store}"
    return Store(store).read()


def pull(project: Path, local_store: Path, env: dict[str, str], log: Path) -> pd.DataFrame:
    """Bring the head's rows home with `farm pull cluster.yaml` (Ray's rsync-down, merged by measurement_id)."""
    run([sys.executable, "-m", "farm.cli", "pull", "cluster.yaml", "--store", str(local_store)], project, env, 300, log)
    return read_rows(local_store)


# ------------------------------------------------------------------- tests
@pytest.fixture
def sshd(tmp_path: Path):  # noqa: ANN201
    if shutil.which("rsync") is None:
        pytest.skip("rsync not installed (Ray's launcher needs it; `make test` installs it: apt-get install rsync)")
    root = Path(tempfile.mkdtemp(prefix="lfsshd", dir="/tmp"))
    os.chmod(root, 0o755)  # sshd reads authorized_keys as the logging-in user
    try:
        daemon = sshd_peer.start_sshd(root)
    except sshd_peer.SSHDUnavailable as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(str(error))
    os.chmod(root / "authorized_keys", 0o644)
    yield daemon
    daemon.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_ray_up_submit_pull_down_with_the_shipped_cluster_yaml(tmp_path: Path, sshd, help_table_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    shipped = yaml.safe_load(CLUSTER.read_text())
    log = tmp_path / "launcher.log"
    client_home = tmp_path / "client-home"
    client_home.mkdir()
    env = tool_env(client_home)
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    with launcher_state_kept(), throwaway_user() as user:
        project = project_copy(tmp_path / "project", help_table_path)
        config = site_config(shipped, user, sshd.client_key, f"{sys.executable} {relay} 127.0.0.1 {sshd.port}")
        (project / "cluster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        changed = {k for k in set(shipped) | set(config) if shipped.get(k) != config.get(k)}
        assert changed <= set(SITE_KEYS)
        assert {k for k in shipped["provider"] if shipped["provider"][k] != config["provider"][k]} <= {
            "head_ip", "worker_ips"}

        # ray up: sync, setup (venv, CPU torch, extras, file check, token), start Ray with token auth
        up_started = time.time()
        run([str(VENV_BIN / "ray"), "up", "-y", "--no-config-cache", "cluster.yaml"], project, env, 900, log)
        up_seconds = time.time() - up_started
        user_home = user.home
        token = user_home / ".ray" / "auth_token"
        assert token.is_file() and token.stat().st_mode & 0o077 == 0, "the token is generated once, mode 0600"
        first_token = token.read_text()
        ray_pids = processes_of(user.uid)
        assert ray_pids, "ray up started nothing as the cluster's user"
        assert (user_home / ".latfarm" / "ray" / "ray_current_cluster").is_file(), "Ray runs in ~/.latfarm/ray"
        venv = user_home / "latfarm-venv"
        torch_version = subprocess.run([str(venv / "bin" / "python"), "-c",
                                        "import importlib.metadata as m; print(m.version('torch'))"],
                                       capture_output=True, text=True, check=True).stdout.strip()
        assert torch_version.endswith("+cpu"), f"a host without a GPU gets torch's CPU build, not {torch_version}"
        venv_bytes = int(subprocess.run(["du", "-sb", str(venv)], capture_output=True, text=True,
                                        check=True).stdout.split()[0])

        # ray submit: measure.py on the head; the replay table arrived with the project under devices/
        output = run([str(VENV_BIN / "ray"), "submit", "cluster.yaml", "measure.py", "--",
                      "--sample", str(ARCHS), "--seed", "3", "--no-anchors"], project, env, 600, log)
        assert "cpu-local" in output and "replay-pixel3-simulation" in output

        # farm pull brings the rows home; a second pull adds nothing
        local_store = tmp_path / "home-store"
        rows = pull(project, local_store, env, log)
        assert set(rows["device"]) == {"cpu-local", "replay-pixel3-simulation"}
        for device, part in rows.groupby("device"):
            assert part["arch"].nunique() == ARCHS and part["status"].isin(["ok", "unstable"]).all(), device
            assert (part["latency_ms"] > 0).all()
        assert set(rows.loc[rows["device"] == "replay-pixel3-simulation", "device_kind"]) == {"replay"}
        again = pull(project, local_store, env, log)
        assert len(again) == len(rows) and set(again["measurement_id"]) == set(rows["measurement_id"])
        first_row_seconds = pd.Timestamp(rows["measured_at"].min()).timestamp() - up_started

        # the setup again reinstalls nothing; a second ray up restarts Ray (scoped stop, start) and keeps the token
        stamp = user_home / ".latfarm" / "installed"
        stamp_written = stamp.stat().st_mtime_ns
        again_started = time.time()
        setup = run([str(VENV_BIN / "ray"), "exec", "cluster.yaml", "bash ~/latfarm/deploy/cluster-host-setup.sh head"],
                    project, env, 300, log)
        setup_again_seconds = time.time() - again_started
        assert "is up to date" in setup and stamp.stat().st_mtime_ns == stamp_written
        second_started = time.time()
        run([str(VENV_BIN / "ray"), "up", "-y", "--no-config-cache", "cluster.yaml"], project, env, 900, log)
        second_seconds = time.time() - second_started
        assert stamp.stat().st_mtime_ns == stamp_written and token.read_text() == first_token
        restarted = processes_of(user.uid)
        assert restarted and not set(restarted) & set(ray_pids) - {p for p in ray_pids if _is_sshd(p)}

        # ray down: no process of the cluster's user is left
        run([str(VENV_BIN / "ray"), "down", "-y", "cluster.yaml"], project, env, 300, log)
        left = wait_until_gone(lambda: processes_of(user.uid), 60)
        assert left == [], f"ray down left processes behind: {left}"

    with capsys.disabled():
        print(f"\nray up -> first stored row: {first_row_seconds:.0f} s (ray up {up_seconds:.0f} s); setup again "
              f"{setup_again_seconds:.0f} s; second ray up {second_seconds:.0f} s; head venv {venv_bytes / 1e9:.2f} GB "
              f"with torch {torch_version}")
    (tmp_path / "figures.json").write_text(json.dumps(
        {"first_row_s": first_row_seconds, "ray_up_s": up_seconds, "second_ray_up_s": second_seconds,
         "setup_again_s": setup_again_seconds,
         "venv_bytes": venv_bytes, "torch": torch_version}))


def test_a_client_without_the_token_is_refused(tmp_path: Path) -> None:
    """cluster.yaml's head start command, run as written (a free port instead of 6379), requires the token."""
    shipped = yaml.safe_load(CLUSTER.read_text())
    home = Path(tempfile.mkdtemp(prefix="lftok", dir="/tmp"))  # short: Ray's socket paths live under it
    port = sshd_peer.free_port()
    try:
        (home / "latfarm").symlink_to(REPO)
        bootstrap = copy.deepcopy(shipped)
        bootstrap["provider"].update(head_ip="127.0.0.1", worker_ips=[])
        (home / "ray_bootstrap_config.yaml").write_text(json.dumps(bootstrap))
        env = tool_env(home)
        subprocess.run([str(VENV_BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True,
                       capture_output=True)
        token = (home / ".ray" / "auth_token").read_text().strip()
        stop, start = shipped["head_start_ray_commands"]
        assert "--port=6379" in start
        start = start.replace("--port=6379", f"--port={port}")
        with launcher_state_kept():
            for command in (stop, start):
                result = subprocess.run(["bash", "-c", command], env=env, cwd=home, capture_output=True, text=True,
                                        timeout=300)
                assert result.returncode == 0, result.stdout + result.stderr
            try:
                clients = {
                    "no token": {"HOME": str(tmp_path)},
                    "wrong token": {"HOME": str(tmp_path), "RAY_AUTH_MODE": "token",
                                    "RAY_AUTH_TOKEN": secrets.token_hex(16)},
                    "the cluster's token": {"HOME": str(home), "RAY_AUTH_MODE": "token"},
                }
                script = (f"import ray; ray.init(address='127.0.0.1:{port}', logging_level='ERROR'); "
                          "print('CONNECTED', int(ray.cluster_resources().get('CPU', 0)))")
                running = {
                    name: subprocess.Popen([sys.executable, "-c", script], env={**tool_env(home), **extra},
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                    for name, extra in clients.items()
                }
                results = {name: (p.communicate(timeout=240)[0], p.returncode) for name, p in running.items()}
            finally:
                result = subprocess.run(["bash", "-c", stop], env=env, cwd=home, capture_output=True, text=True,
                                        timeout=120)
        assert result.returncode == 0 and "processes of" in result.stdout
        temp_dir = str(home / ".latfarm" / "ray")
        assert sshd_peer.processes_running(temp_dir) == [], "the scoped stop left this cluster's Ray running"
        for name in ("no token", "wrong token"):
            output, code = results[name]
            assert code != 0 and "CONNECTED" not in output, name
            assert "Unauthenticated" in output or "InvalidAuthToken" in output, f"{name}: {output[-1500:]}"
        output, code = results["the cluster's token"]
        assert code == 0 and "CONNECTED" in output, output[-1500:]
        assert token and token not in output
    finally:
        shutil.rmtree(home, ignore_errors=True)
