"""farm.node_resources: what each host's ``ray start --resources`` offers (devices, builder), in a real interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ray._common.constants import HEAD_NODE_RESOURCE_NAME

from farm.inventory import Device, Inventory
from farm.node_resources import BUILDER_RESOURCE, HEAD_RESOURCE, device_resource, on_head, resources_for

REPO = Path(__file__).resolve().parents[2]

INVENTORY = """devices:
  - name: cpu-head
    kind: cpu
  - name: pi-a
    kind: cpu
    node: host-a
  - name: phone-b
    kind: adb
    node: host-b
    adb: {serial: X}
"""


def node_resources(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    return subprocess.run(
        [sys.executable, "-m", "farm.node_resources", "--inventory", str(inventory), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_builder_flag_adds_builder_to_the_devices_of_this_host(tmp_path: Path) -> None:
    head = node_resources(tmp_path, "--builder", "--node", "host-a")
    assert head.returncode == 0, head.stderr
    assert json.loads(head.stdout) == {BUILDER_RESOURCE: 1, device_resource("pi-a"): 1}
    worker = node_resources(tmp_path, "--node", "host-b")
    assert json.loads(worker.stdout) == {device_resource("phone-b"): 1}  # no builder without the flag


def test_a_host_with_no_device_and_no_flag_offers_nothing(tmp_path: Path) -> None:
    result = node_resources(tmp_path, "--node", "host-c")
    assert result.returncode == 0 and json.loads(result.stdout) == {}


def test_help_names_the_builder_flag(tmp_path: Path) -> None:
    result = node_resources(tmp_path, "--help")
    assert result.returncode == 0 and "--builder" in result.stdout and "build tasks run here" in result.stdout


def test_node_less_devices_get_no_device_resource() -> None:
    """They run on the head, placed by Ray's own head marker, which ``ray start --head`` offers by itself."""
    inventory = Inventory(devices=[Device(name="cpu-head", kind="cpu"), Device(name="pi-a", kind="cpu", node="h")])
    assert resources_for(inventory, {"h"}) == {device_resource("pi-a"): 1}
    assert resources_for(inventory, {"elsewhere"}, builder=True) == {BUILDER_RESOURCE: 1}
    assert on_head() == {HEAD_RESOURCE: 0.001} and HEAD_RESOURCE == HEAD_NODE_RESOURCE_NAME  # Ray's own name
