"""``farm pull cluster.yaml [--store DIR]``: bring the head's store home with Ray's own launcher, then merge it.

The campaign driver runs on the head (``ray submit cluster.yaml measure.py``
runs it in the head's home folder, so its store is ``~/measurements``). This
command copies that store with ``ray rsync-down cluster.yaml ~/measurements/
<temporary folder>/`` (the SSH user, key and head address all come from the
cluster config, as for every ``ray`` command) and merges the copy into the
local store by ``measurement_id`` (:mod:`farm.merge`): append-only, each row
checked as untrusted input, so pulling twice adds nothing::

    $ farm pull cluster.yaml
    pulled 480 new rows (0 already here) from 192.168.1.10:~/measurements into measurements

A cluster config that is missing or is not one, a ``--store`` that cannot be
written, a cluster that is not up, and a head folder that is not a farm store
are each one line and exit 2, and the local store is untouched.

The copy step is a parameter of :func:`pull` (``rsync_down``), so a caller can
fetch the folder another way; :func:`ray_rsync_down` is the default.

Example:
    >>> import tempfile
    >>> config = Path(tempfile.mkdtemp()) / "cluster.yaml"
    >>> _ = config.write_text("cluster_name: lab\\nprovider: {type: local, head_ip: 10.0.0.2, worker_ips: []}\\n")
    >>> read_cluster(config).head
    '10.0.0.2'
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from farm.errors import UserError
from farm.merge import MergeResult, is_store_folder, merge_stores
from farm.user_files import check_store, read_text

__all__ = ["DEFAULT_REMOTE_STORE", "ClusterHead", "PullResult", "RsyncDown", "pull", "ray_rsync_down", "read_cluster",
           "register", "run_pull"]

#: Where ``ray submit cluster.yaml measure.py`` leaves the store: measure.py's ``--store`` default, in the head's home.
DEFAULT_REMOTE_STORE = "~/measurements"
#: Copies the head's folder ``remote`` (a path on the head) into the local folder ``local``, given the cluster config.
RsyncDown = Callable[[Path, str, Path], None]
#: Characters a remote path may hold: it reaches the head's shell unquoted (``user@head:path``), as Ray passes it.
_REMOTE_PATH = re.compile(r"[A-Za-z0-9._/~+-]+")
_HINT = "pass the cluster config that `ray up` used"


@dataclass(frozen=True)
class ClusterHead:
    """The cluster config file, its cluster name, and how to name its head in messages."""

    config: Path
    cluster_name: str
    head: str


@dataclass(frozen=True)
class PullResult:
    """Where the rows came from and what the merge did."""

    source: str
    store: Path
    merge: MergeResult

    def line(self) -> str:
        """The one-line summary ``farm pull`` prints."""
        return f"pulled {self.merge.line()} from {self.source} into {self.store}"


def read_cluster(path: str | os.PathLike[str]) -> ClusterHead:
    """The cluster name and head of a Ray cluster config; :class:`UserError` (one line) when it is not one."""
    config = Path(path)
    text = read_text(config, hint=_HINT)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{config}: not valid YAML{where}; {_HINT}") from None
    provider = data.get("provider") if isinstance(data, dict) else None
    if not isinstance(provider, dict) or not provider.get("type"):
        raise UserError(f"{config}: field 'provider' with a 'type' is missing, so this is not a Ray cluster config; {_HINT}")
    name = str(data.get("cluster_name") or "default")
    head = provider.get("head_ip")
    return ClusterHead(config, name, str(head) if head else f"the head of cluster {name}")


def ray_command() -> str:
    """The ``ray`` CLI of this environment (beside this Python), else the one on ``PATH``."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if found is None:
        raise UserError("the `ray` command is not installed here; install latfarm (pip install -e .) in this environment")
    return found


def ray_rsync_down(config: Path, remote: str, local: Path) -> None:
    """``ray rsync-down CONFIG REMOTE/ LOCAL/``: the contents of the head's folder ``remote`` into ``local``.

    Trailing slashes make rsync copy the folder's contents, which also keeps the
    config's ``rsync_exclude`` (it lists ``measurements``) from matching the folder itself.
    Raises :class:`UserError` with Ray's last line when the copy fails.
    """
    command = [ray_command(), "rsync-down", str(config), remote.rstrip("/") + "/", str(local).rstrip("/") + "/"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if re.search(r"error|exception|failed", line, re.IGNORECASE)]
        reason = (errors or lines or [f"exit status {done.returncode}"])[-1][:300]
        raise UserError(f"{config}: `ray rsync-down` of {remote} failed: {reason}; is the cluster up "
                        f"(`ray up {config}`) and does the head hold {remote}?")


def pull(
    config: str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    remote: str = DEFAULT_REMOTE_STORE,
    rsync_down: RsyncDown = ray_rsync_down,
) -> PullResult:
    """Copy the head's store ``remote`` with ``rsync_down`` into a temporary folder and merge it into ``store``.

    Everything a person passed is checked before the copy starts; the temporary folder is removed at the end.
    """
    cluster = read_cluster(config)
    if not _REMOTE_PATH.fullmatch(remote):
        raise UserError(f"--remote-store {remote!r}: use a plain path on the head (letters, digits, . _ - + / ~)")
    check_store("--store", store)
    source = f"{cluster.head}:{remote}"
    with tempfile.TemporaryDirectory(prefix="latfarm-pull-") as folder:
        copy = Path(folder)
        rsync_down(cluster.config, remote, copy)
        if not any(copy.iterdir()):
            return PullResult(source, Path(store), MergeResult())  # nothing measured on the head yet
        if not is_store_folder(copy):
            raise UserError(f"{source}: not a farm store (no search_space=* partitions, _campaigns or _devices); "
                            "pass --remote-store with the folder measure.py wrote on the head")
        try:
            return PullResult(source, Path(store), merge_stores(copy, store))
        except UserError as error:  # name the head's folder, not the temporary copy
            raise UserError(str(error).replace(str(copy), source)) from None


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``farm pull CLUSTER_YAML [--store DIR] [--remote-store PATH]`` to the ``farm`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "pull", help="bring the head's store home (ray rsync-down) and merge it by measurement_id",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("cluster", metavar="CLUSTER_YAML", type=Path, help="the cluster config `ray up` used")
    parser.add_argument("--store", default=Path("measurements"), type=Path, metavar="DIR",
                        help="local store folder to merge into (created if missing)")
    parser.add_argument("--remote-store", default=DEFAULT_REMOTE_STORE, metavar="PATH",
                        help="the store folder on the head (where `ray submit cluster.yaml measure.py` writes)")
    parser.set_defaults(handler=run_pull)
    return parser


def run_pull(args: argparse.Namespace, rsync_down: RsyncDown = ray_rsync_down) -> int:
    """The ``farm pull`` handler: prints the one-line summary (and any skipped record), returns 0."""
    result = pull(args.cluster, args.store, remote=args.remote_store, rsync_down=rsync_down)
    print(result.line())
    for skipped in result.merge.skipped_records:
        print(f"skipped a record that does not parse: {skipped}", file=sys.stderr)
    return 0
