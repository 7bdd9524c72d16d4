"""farm.host_extras: the devices a cluster host drives and the latfarm extras it installs for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from farm.host_extras import devices_on_this_host, extras_for
from farm.inventory import loads

REPO = Path(__file__).resolve().parents[2]

INVENTORY = """
devices:
  - {name: cpu-local, kind: cpu, runtimes: [torch, torchscript]}
  - {name: usb-box-cpu, kind: cpu, runtimes: [torch, executorch], node: 10.0.0.20}
  - {name: jetson, kind: cpu, runtimes: [tflite], node: 10.0.0.21}
  - name: pi4-a
    kind: ssh
    runtimes: [tflite]
    node: 10.0.0.20
    ssh: {host: 10.0.0.42, user: pi}
  - {name: pixel7, kind: adb, runtimes: [tflite], node: 10.0.0.20, adb: {serial: X1}}
  - {name: replay-pixel3, kind: replay, replay: {table: t.parquet, device: pixel3}}
"""


def test_the_head_drives_devices_without_node_and_those_attached_to_it() -> None:
    inventory = loads(INVENTORY)
    assert [d.name for d in devices_on_this_host(inventory, {"10.0.0.10"}, head=True)] == ["cpu-local", "replay-pixel3"]
    assert [d.name for d in devices_on_this_host(inventory, {"10.0.0.20"}, head=False)] == [
        "usb-box-cpu", "pi4-a", "pixel7"]
    assert devices_on_this_host(inventory, {"10.0.0.99"}, head=False) == []


def test_the_head_gets_the_converters_of_every_runtime_and_workers_only_their_interpreters() -> None:
    inventory = loads(INVENTORY)
    assert extras_for(inventory, {"10.0.0.10"}, head=True) == ["convert", "executorch"]
    # usb-box-cpu runs executorch here; the board and the phone run tflite themselves
    assert extras_for(inventory, {"10.0.0.20"}, head=False) == ["executorch"]
    assert extras_for(inventory, {"10.0.0.21"}, head=False) == ["tflite"]
    assert extras_for(inventory, {"10.0.0.99"}, head=False) == []


def test_the_shipped_inventory_needs_no_extra() -> None:
    out = subprocess.run([sys.executable, "-m", "farm.host_extras", "--inventory", "inventory.yaml", "--head"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out == "\n"


def test_command_line_matches_node_and_reports_a_bad_inventory_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    out = subprocess.run([sys.executable, "-m", "farm.host_extras", "--inventory", str(path), "--node", "10.0.0.21"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out == "tflite\n"
    path.write_text("devices:\n  - {name: a, kind: cpu, runtimes: [onnx]}\n")
    bad = subprocess.run([sys.executable, "-m", "farm.host_extras", "--inventory", str(path)],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and str(path) in bad.stderr and "runtimes" in bad.stderr
