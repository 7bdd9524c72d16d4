"""Which inventory devices a cluster host drives, and the latfarm extras it needs for them.

``cluster.yaml``'s setup (``deploy/cluster-host-setup.sh``) installs latfarm on
every host, then ``pip install -e ~/latfarm[<extras>]`` with what this prints:

* on every host, for each device it drives itself (``kind`` ``cpu`` or ``cuda``)
  the runtime's interpreter: ``tflite`` for ``runtimes: [tflite]``, ``executorch``
  for ``executorch``;
* on the head, which runs the build tasks for every device, the converters:
  ``convert`` for any device with ``tflite``, ``executorch`` for any with
  ``executorch``.

Boards over SSH and phones over adb run the model on the device itself, so
their host needs no extra; replay devices need none either.

A host drives a device when the device's ``node`` is one of the host's names or
addresses (``farm.node_resources.host_names``, or ``--node``); the head also
drives every device without a ``node``.

    python -m farm.host_extras --inventory ~/latfarm/inventory.yaml --head   # e.g. "convert,tflite"

Example:
    >>> from farm.inventory import Device, Inventory
    >>> inventory = Inventory(devices=[
    ...     Device(name="cpu-local", kind="cpu", runtimes=["torch", "tflite"]),
    ...     Device(name="pi4-a", kind="ssh", runtimes=["tflite"], node="10.0.0.7",
    ...            ssh={"host": "10.0.0.42", "user": "pi"})])
    >>> extras_for(inventory, names={"10.0.0.1"}, head=True)
    ['convert', 'tflite']
    >>> extras_for(inventory, names={"10.0.0.7"}, head=False)
    []
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Iterable, Sequence

from farm.errors import exit_on_user_error

if TYPE_CHECKING:
    from farm.inventory import Device, Inventory

#: Extra that runs a runtime's models in this process (``kind: cpu``/``cuda`` devices).
RUN_EXTRAS: dict[str, str] = {"tflite": "tflite", "executorch": "executorch"}
#: Extra that builds (converts) a runtime's models; builds run on the head.
BUILD_EXTRAS: dict[str, str] = {"tflite": "convert", "executorch": "executorch"}
#: Device kinds whose models run in the host's own Python process.
LOCAL_KINDS: frozenset[str] = frozenset({"cpu", "cuda"})


def devices_on_this_host(inventory: "Inventory", names: Iterable[str], head: bool) -> list["Device"]:
    """The devices whose agents run here: ``node`` is one of ``names``, or (on the head) no ``node`` at all."""
    wanted = set(names)
    return [d for d in inventory.devices if (d.node in wanted if d.node else head)]


def extras_for(inventory: "Inventory", names: Iterable[str], head: bool) -> list[str]:
    """The sorted extras this host needs (see the module docstring)."""
    extras: set[str] = set()
    for device in devices_on_this_host(inventory, names, head):
        if device.kind in LOCAL_KINDS:
            extras.update(RUN_EXTRAS[r] for r in device.runtimes if r in RUN_EXTRAS)
    if head:
        for device in inventory.devices:
            extras.update(BUILD_EXTRAS[r] for r in device.runtimes if r in BUILD_EXTRAS)
    return sorted(extras)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Print this host's extras, comma-separated (an empty line when it needs none)."""
    from farm import inventory as inventories
    from farm.node_resources import host_names

    args = host_parser("python -m farm.host_extras", main.__doc__).parse_args(argv)
    inventory = inventories.loads(_read(args.inventory), source=args.inventory)
    print(",".join(extras_for(inventory, host_names() | set(args.node or []), args.head)))
    return 0


def host_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The options of the per-host setup commands: ``--inventory``, ``--head``, ``--node`` (repeatable)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--inventory", default="inventory.yaml", help="the inventory (default inventory.yaml)")
    parser.add_argument("--head", action="store_true", help="this host is the head (drives devices without node:)")
    parser.add_argument("--node", action="append", help="also match this node name (default: this host's names)")
    return parser


def _read(path: str) -> str:
    from farm.inventory import InventoryError
    from farm.user_files import read_text
    from farm.errors import UserError

    try:
        return read_text(path, hint="pass --inventory with an existing inventory file")
    except UserError as error:
        raise InventoryError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
