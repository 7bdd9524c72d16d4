"""At ``ray up`` time: every file the inventory names for this host's devices is on this host.

The inventory is read where each device's agent runs: a replay table, an SSH
``key_file`` and ``known_hosts``, an adb key must exist on *that* host.
``cluster.yaml`` syncs the project folder (``~/latfarm``) to every host, so the
convention is to keep such files under the project's ``devices/`` folder and name
them relatively (``key_file: devices/pi4-a.key``; relative paths are resolved
against the inventory's folder). This check runs in each host's setup and fails
``ray up`` with one line naming the host, the device, the field and the path,
instead of a failed row in the middle of a campaign.

    python -m farm.host_files --inventory ~/latfarm/inventory.yaml --head

Example:
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "inventory.yaml")
    >>> _ = open(path, "w").write("devices:\\n  - {name: r, kind: replay, replay: {table: devices/r.parquet, device: x}}\\n")
    >>> try:
    ...     check_host_files(path, names={"h1"}, head=True, host="h1")
    ... except UserError as error:
    ...     print(str(error).replace(folder, "DIR"))  # doctest: +ELLIPSIS
    host h1: DIR/inventory.yaml: device 'r': field 'replay.table': DIR/devices/r.parquet does not exist; ...; keep it under the project's devices/ folder (cluster.yaml syncs the project to ~/latfarm on every host)
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Iterable, Sequence

from farm.errors import UserError, exit_on_user_error

CONVENTION = "keep it under the project's devices/ folder (cluster.yaml syncs the project to ~/latfarm on every host)"


def check_host_files(inventory_path: str, names: Iterable[str], head: bool, host: str) -> int:
    """Check the files of every device this host drives; return how many devices were checked.

    Raises :class:`UserError` with one line ``host <host>: <inventory>: device ...: <path> does not exist; ...``.
    """
    from farm import inventory as inventories
    from farm.host_extras import devices_on_this_host
    from farm.user_files import read_text

    try:
        text = read_text(inventory_path, hint="pass --inventory with an existing inventory file")
        inventory = inventories.loads(text, source=inventory_path, base_dir=Path(inventory_path).resolve().parent)
        devices = devices_on_this_host(inventory, names, head)
        for device in devices:
            inventories.check_local_files(device, inventory_path)
    except UserError as error:
        message = str(error)
        if "does not exist" in message:
            message += f"; {CONVENTION}"
        raise UserError(f"host {host}: {message}") from None
    return len(devices)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Check the files named for this host's devices; one line naming host and path when one is missing."""
    from farm.host_extras import host_parser
    from farm.node_resources import host_names

    args = host_parser("python -m farm.host_files", main.__doc__).parse_args(argv)
    host = socket.gethostname()
    checked = check_host_files(args.inventory, host_names() | set(args.node or []), args.head, host)
    print(f"host {host}: the files of {checked} device(s) driven here are in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
