"""Stop only the Ray processes of one Ray temp dir: the scoped ``ray stop`` of ``cluster.yaml``.

``ray stop`` stops every Ray process on the host that the calling user may signal
(it matches process names, not clusters), so on a shared host it would also end
other people's Ray. ``cluster.yaml`` starts Ray with its own ``--temp-dir``
(``~/.latfarm/ray``), and every Ray daemon of that cluster names a path under it
on its command line (``gcs_server --log_dir=<temp>/session_...``, ``raylet
--raylet_socket_name=<temp>/session_.../sockets/raylet``, the dashboard, the
monitors); the Ray client server names the GCS address the temp dir records in
``ray_current_cluster``. This module finds those daemons and every process below
them (workers and agents rename themselves ``ray::...``, so they are found as
descendants), sends them SIGTERM, waits, and SIGKILLs what is left. Nothing else
is touched.

    python -m farm.ray_stop --temp-dir ~/.latfarm/ray      # prints what it stopped

Example:
    >>> is_cluster_process(["raylet", "--session_dir=/h/.latfarm/ray/session_1"], "/h/.latfarm/ray")
    True
    >>> is_cluster_process(["raylet", "--session_dir=/tmp/ray/session_1"], "/h/.latfarm/ray")
    False
    >>> is_cluster_process(["python3", "-m", "ray.util.client.server", "--address=10.0.0.1:6379"],
    ...                    "/h/.latfarm/ray", addresses={"10.0.0.1:6379"})
    True
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from farm.errors import UserError, exit_on_user_error

PROC = Path("/proc")


@dataclass
class StopReport:
    """What :func:`stop_cluster` did: the PIDs it signalled, and those that needed SIGKILL."""

    stopped: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)


def is_cluster_process(argv: Sequence[str], temp_dir: str, addresses: Iterable[str] = ()) -> bool:
    """True when an ``--option=value`` of a command line lies inside ``temp_dir`` or is one of ``addresses``.

    Ray's daemons pass their paths and the GCS address as ``--option=value``; a bare ``PATH``
    argument (as in this module's own command line, or a wrapper's) does not count.
    """
    roots = {temp_dir.rstrip("/"), os.path.realpath(temp_dir).rstrip("/")}
    for arg in argv:
        if not (arg.startswith("-") and "=" in arg):
            continue
        value = arg.split("=", 1)[1]
        if value in addresses:
            return True
        if any(value == root or value.startswith(root + "/") for root in roots):
            return True
    return False


def recorded_addresses(temp_dir: str) -> set[str]:
    """The GCS address ``ray start`` recorded in ``<temp_dir>/ray_current_cluster`` (empty when none)."""
    try:
        address = (Path(temp_dir) / "ray_current_cluster").read_text().strip()
    except OSError:
        return set()
    return {address} if address else set()


def cluster_processes(temp_dir: str) -> list[int]:
    """PIDs of the Ray daemons of ``temp_dir`` and of every process below them, parents first."""
    addresses = recorded_addresses(temp_dir)
    parents: dict[int, int] = {}
    roots: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if is_cluster_process([a.decode(errors="replace") for a in argv if a], temp_dir, addresses):
            roots.append(pid)
    spared = _ancestors(os.getpid(), parents)  # this process and whoever started it
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    stack = sorted(roots, reverse=True)
    while stack:
        pid = stack.pop()
        if pid in found or pid in spared:
            continue
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _ancestors(pid: int, parents: dict[int, int]) -> set[int]:
    chain = {pid}
    while parents.get(pid, 0) > 1 and parents[pid] not in chain:
        pid = parents[pid]
        chain.add(pid)
    return chain


def stop_cluster(temp_dir: str, grace_s: float = 10.0) -> StopReport:
    """SIGTERM every process of ``temp_dir``'s Ray, then SIGKILL those alive after ``grace_s`` seconds."""
    report = StopReport()
    for pid in cluster_processes(temp_dir):
        if _signal(pid, signal.SIGTERM):
            report.stopped.append(pid)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in report.stopped):
        time.sleep(0.1)
    for pid in report.stopped + cluster_processes(temp_dir):
        if _alive(pid) and _signal(pid, signal.SIGKILL):
            report.killed.append(pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in report.killed):
        time.sleep(0.1)
    return report


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Stop the Ray started with ``--temp-dir DIR``; other Ray processes on this host are left alone."""
    parser = argparse.ArgumentParser(prog="python -m farm.ray_stop", description=main.__doc__)
    parser.add_argument("--temp-dir", required=True, help="the --temp-dir the cluster's ray start used")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL (default 10)")
    args = parser.parse_args(argv)
    temp_dir = os.path.abspath(os.path.expanduser(args.temp_dir))
    if temp_dir in ("/", os.path.expanduser("~")):
        raise UserError(f"--temp-dir {args.temp_dir}: too broad; pass the folder given to ray start --temp-dir")
    report = stop_cluster(temp_dir, args.grace)
    print(f"ray_stop: {len(report.stopped)} processes of {temp_dir} stopped"
          + (f" ({len(report.killed)} with SIGKILL)" if report.killed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
