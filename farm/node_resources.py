"""The Ray resources that place farm work: ``device:<name>``, ``builder`` and the head's own marker.

``cluster.yaml`` starts Ray on each host with::

    ray start --head ... --resources="$(python -m farm.node_resources --builder)"        # the head
    ray start --address=$RAY_HEAD_IP:6379 --resources="$(python -m farm.node_resources)"  # a device host

so a device's actor can only be placed on the host its inventory entry names
(``node:``). A device matches this host when its ``node`` equals the host name,
the fully qualified name or one of the host's IP addresses, or the ``--node``
value given here. ``--builder`` also offers ``builder``: build tasks
(``farm.builds``) run only on hosts that offer it, or on the head when no host
does. Devices with no ``node`` run on the head, placed by
:data:`HEAD_RESOURCE`, which Ray itself offers there.

Example:
    >>> from farm.inventory import Device, Inventory
    >>> inventory = Inventory(devices=[Device(name="pi4-a", kind="cpu", node="10.0.0.7"),
    ...                                Device(name="pi4-b", kind="cpu", node="10.0.0.8")])
    >>> resources_for(inventory, {"10.0.0.7"})
    {'device:pi4-a': 1}
    >>> resources_for(inventory, {"10.0.0.9"}, builder=True)
    {'builder': 1}
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import TYPE_CHECKING, Iterable, Sequence

from farm.errors import exit_on_user_error

if TYPE_CHECKING:
    from farm.inventory import Inventory


#: The resource Ray offers on the head node only (``ray._common.constants.HEAD_NODE_RESOURCE_NAME``).
HEAD_RESOURCE = "node:__internal_head__"

#: Offered by hosts that run build tasks (``--builder``; the head in ``cluster.yaml``).
BUILDER_RESOURCE = "builder"

#: How much of a marker resource (head, builder) an actor or task asks for: so little that any number fit.
MARKER_SHARE = 0.001


def device_resource(name: str) -> str:
    """The Ray custom resource a device's node offers: ``device:<name>``.

    Example:
        >>> device_resource("pi4-a")
        'device:pi4-a'
    """
    return f"device:{name}"


def on_head() -> dict[str, float]:
    """The ``resources`` option that places an actor or task on the head node.

    Example:
        >>> on_head()
        {'node:__internal_head__': 0.001}
    """
    return {HEAD_RESOURCE: MARKER_SHARE}


def host_names() -> set[str]:
    """Names and addresses this host answers to: hostname, FQDN, its IPv4 addresses."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(socket.gethostbyname_ex(name)[2])
        except OSError:
            continue
    try:  # the address used to reach other hosts (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            names.add(probe.getsockname()[0])
    except OSError:
        pass
    return {n for n in names if n}


def resources_for(inventory: "Inventory", names: Iterable[str], *, builder: bool = False) -> dict[str, int]:
    """``{"device:<name>": 1}`` for every device whose ``node`` is one of ``names``, and ``builder`` if asked."""
    wanted = set(names)
    resources = {BUILDER_RESOURCE: 1} if builder else {}
    resources.update({device.ray_resource: 1 for device in inventory.devices if device.node and device.node in wanted})
    return resources


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Print the JSON for ``ray start --resources`` for this host (``{}`` when no device is attached)."""
    from farm import inventory as inventories

    parser = argparse.ArgumentParser(prog="python -m farm.node_resources", description=main.__doc__)
    parser.add_argument("--inventory", default="inventory.yaml")
    parser.add_argument("--node", action="append", help="also match this node name (default: this host's names)")
    parser.add_argument(
        "--builder", action="store_true",
        help=f"also offer {BUILDER_RESOURCE!r}: build tasks run here (the head's start command passes it; "
        "default: off, and builds run on the head when no host offers it)",
    )
    args = parser.parse_args(argv)
    inventory = inventories.load(args.inventory)
    print(json.dumps(resources_for(inventory, host_names() | set(args.node or []), builder=args.builder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
