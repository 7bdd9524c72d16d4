"""farm.inventory: the default file, every field, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from farm.inventory import Device, Inventory, InventoryError, ProtocolSettings, load, loads

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as caught:
        load(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "inventory.yaml"))
    return message


def test_default_inventory_is_this_machines_cpu() -> None:
    inventory = load(REPO / "inventory.yaml")
    assert inventory.names() == ["cpu-local"]
    device = inventory.get("cpu-local")
    assert device.kind == "cpu"
    assert device.runtimes == ["torch", "torchscript"]
    assert device.protocol.name == "interleaved"
    assert device.ssh is None and device.adb is None and device.replay is None


def test_commented_examples_in_default_inventory_are_valid(tmp_path: Path) -> None:
    """Uncommenting the examples must give a valid inventory, or the file teaches wrong syntax.

    ``loads`` checks the syntax only: on this host the examples' key files and replay table (relative to
    ``tmp_path``) do not exist, which ``load`` reports (tested below).
    """
    lines = (REPO / "inventory.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- Examples"))
    body = [line for line in lines[:start]]
    for line in lines[start + 1 :]:
        if line.startswith("#  ") or line.startswith("#    "):
            body.append(line[1:])
    inventory = loads("\n".join(body) + "\n", base_dir=tmp_path)
    assert {d.kind for d in inventory.devices} == {"cpu", "cuda", "ssh", "adb", "replay"}
    assert inventory.get("pi4-a").ssh.user == "pi"
    assert inventory.get("pi4-a").hygiene.affinity == [0, 1, 2, 3]
    assert inventory.get("pixel7").adb.benchmark_binaries == {"tflite": "/data/local/tmp/benchmark_model"}
    assert inventory.get("gpu0").batch_sizes == [1, 64]
    assert inventory.get("jetson-orin").cuda.index == 0 and inventory.get("pixel7").tflite_layout == "nhwc"
    # relative replay tables are resolved against the inventory's folder
    assert inventory.get("replay-pixel3").replay.table == str((tmp_path / "data/help_latency.parquet").resolve())


def test_every_field_round_trips(tmp_path: Path) -> None:
    text = """
devices:
  - name: pi4-a
    kind: ssh
    platform: raspberrypi4
    runtimes: [tflite, torchscript]
    batch_sizes: [1, 4]
    threads: 4
    input_size: 224
    node: pi-host
    protocol: {name: help, warmup: 5, runs: 7, trim: 0.2, max_ci: 0.08, max_repeats: 3}
    hygiene: {affinity: [2, 3], cooldown_s: 1.5, max_temperature_c: 60, cooldown_timeout_s: 30}
    ssh: {host: 127.0.0.1, port: 2222, user: pi, key_file: /k, known_hosts: /kh, trust_on_first_use: true,
          python: python3.11, workdir: /tmp/x}
"""
    device = load(write(tmp_path, text)).get("pi4-a")
    assert device.platform == "raspberrypi4" and device.node == "pi-host" and device.input_size == 224
    assert device.protocol == ProtocolSettings(name="help", warmup=5, runs=7, trim=0.2, max_ci=0.08, max_repeats=3)
    assert device.hygiene.cooldown_s == 1.5 and device.hygiene.max_temperature_c == 60
    assert (device.ssh.port, device.ssh.python, device.ssh.trust_on_first_use) == (2222, "python3.11", True)
    assert device.ray_resource == "device:pi4-a"


def test_cuda_device_gets_default_index() -> None:
    device = loads("devices:\n  - name: gpu\n    kind: cuda\n").get("gpu")
    assert device.cuda is not None and device.cuda.index == 0


def test_ssh_board_gpu_index_reaches_the_ssh_agent() -> None:
    """``cuda: {index: N}`` on an ssh device (a Jetson) is the GPU the SSH agent runs TorchScript on."""
    from agents.ssh import SSHAgent

    text = ("devices:\n  - name: jetson\n    kind: ssh\n    runtimes: [torchscript, tflite]\n"
            "    ssh: {host: 127.0.0.1, user: nvidia}\n    cuda: {index: 1}\n"
            "  - name: pi\n    kind: ssh\n    runtimes: [torchscript]\n    ssh: {host: 127.0.0.1, user: pi}\n")
    inventory = loads(text)
    assert inventory.get("jetson").cuda.index == 1 and inventory.get("pi").cuda is None
    assert SSHAgent.from_device(inventory.get("jetson"), campaign_id="c1").cuda_index == 1
    assert SSHAgent.from_device(inventory.get("pi"), campaign_id="c1").cuda_index is None  # CPU only


def test_tflite_layout_defaults_to_nchw_and_accepts_nhwc() -> None:
    text = ("devices:\n  - name: a\n    kind: cpu\n    runtimes: [tflite]\n"
            "  - name: b\n    kind: adb\n    runtimes: [tflite]\n    tflite_layout: nhwc\n    adb: {serial: X}\n")
    inventory = loads(text)
    assert inventory.get("a").tflite_layout == "nchw" and inventory.get("b").tflite_layout == "nhwc"


BAD = [
    # (yaml, expected fragments: device, field, problem)
    ("devices:\n  - name: a\n    kind: cpu\n    treads: 2\n", ["device 'a'", "field 'treads'", "unknown key", "'threads'", "line 4"]),
    ("devices:\n  - name: a\n    kind: cpu\n  - name: a\n    kind: cpu\n", ["field 'name'", "duplicate name 'a'", "line 4"]),
    ("devices:\n  - name: a\n    kind: cpu\n    threads: many\n", ["device 'a'", "field 'threads'", "integer", "'many'"]),
    ("devices:\n  - name: pi\n    kind: ssh\n", ["device 'pi'", "field 'ssh'", "kind ssh needs"]),
    ("devices:\n  - name: ph\n    kind: adb\n", ["device 'ph'", "field 'adb'", "kind adb needs"]),
    ("devices:\n  - name: r\n    kind: replay\n", ["device 'r'", "field 'replay'", "kind replay needs"]),
    ("devices:\n  - name: pi\n    kind: ssh\n    ssh: {host: x}\n", ["field 'ssh.user'", "missing"]),
    ("devices:\n  - name: Pi 4\n    kind: cpu\n", ["field 'name'", "not a slug"]),
    ("devices:\n  - name: a\n    kind: gpu\n", ["field 'kind'", "'cpu', 'cuda', 'ssh', 'adb' or 'replay'", "'gpu'"]),
    ("devices:\n  - name: a\n    kind: cpu\n    runtimes: [torch, onnx]\n", ["field 'runtimes[1]'", "'onnx'"]),
    ("devices:\n  - name: a\n    kind: cpu\n    ssh: {host: x, user: u}\n", ["field 'ssh'", "only used with kind ssh"]),
    ("devices:\n  - name: p\n    kind: ssh\n    ssh: {host: x, user: u, password: s}\n", ["field 'ssh.password'", "key_file"]),
    ("devices:\n  - name: a\n    kind: cpu\n    protocol: {name: help, rounds: 3}\n", ["field 'protocol.rounds'", "interleaved"]),
    ("devices:\n  - name: a\n    kind: cpu\n    protocol: {name: latbench, quantile: 0.5}\n",
     ["field 'protocol.quantile'", "interleaved"]),
    ("devices:\n  - name: a\n    kind: cpu\n    protocol: {quantile: 2}\n", ["field 'protocol.quantile'", "1"]),
    ("devices:\n  - name: a\n    kind: cpu\n    protocol: {trim: 0.7}\n", ["field 'protocol.trim'", "0.5"]),
    ("devices:\n  - name: a\n    kind: cpu\n    hygiene: {affinity: []}\n", ["field 'hygiene.affinity'", "empty"]),
    ("devices:\n  - name: a\n    kind: cpu\n    batch_sizes: [0]\n", ["field 'batch_sizes'", ">= 1"]),
    ("devices:\n  - name: a\n    kind: cpu\n    threads: 0\n", ["field 'threads'", "greater than or equal to 1"]),
    ("devices:\n  - kind: cpu\n", ["device #1", "field 'name'", "missing"]),
    ("devices:\n  - just-a-string\n", ["device #1", "valid dictionary"]),
    ("device:\n  - name: a\n", ["field 'device'", "did you mean 'devices'"]),
    ("devices:\n  - name: a\n    kind: [cpu\n", ["YAML error at line 4", "fix the YAML"]),
    ("devices:\n  - name: a\n    kind: cpu\n    kind: cuda\n", ["YAML error at line 4", "duplicate key 'kind'"]),
    ("", ["empty", "devices:"]),
    ("- a\n", ["top level is a list"]),
    # names match as whole strings: a trailing newline is not part of a slug (issue 13, class 7)
    ('devices:\n  - name: "pi4\\n"\n    kind: cpu\n', ["field 'name'", "not a slug", "'pi4\\n'"]),
    # everything checkable without the device is checked here (class 10)
    ("devices:\n  - name: ph\n    kind: adb\n    adb: {port: 5555}\n", ["device 'ph'", "field 'adb'", "neither serial"]),
    ("devices:\n  - name: ph\n    kind: adb\n    adb: {serial: X, big_core_mask: f0g}\n",
     ["field 'adb.big_core_mask'", "'f0g' is not a non-zero hex CPU mask"]),
    ("devices:\n  - name: ph\n    kind: adb\n    adb: {serial: X, big_core_mask: \"f0; reboot\"}\n",
     ["field 'adb.big_core_mask'", "hex"]),
    ('devices:\n  - name: ph\n    kind: adb\n    adb: {serial: X, big_core_mask: "00"}\n', ["non-zero hex"]),
    # a campaign needs at least one device (class 11)
    ("devices: []\n", ["field 'devices'", "is empty", "at least one device"]),
    # a board's GPU (issue 12): only on kind cuda or ssh, only for TorchScript on ssh, a valid index
    ("devices:\n  - name: c\n    kind: cpu\n    cuda: {index: 0}\n",
     ["device 'c'", "field 'cuda'", "only used with kind cuda or ssh", "line 4"]),
    ("devices:\n  - name: j\n    kind: ssh\n    runtimes: [tflite]\n    ssh: {host: h, user: u}\n    cuda: {index: 0}\n",
     ["device 'j'", "field 'cuda'", "only TorchScript runs on the board's GPU", "add torchscript", "line 6"]),
    ("devices:\n  - name: j\n    kind: ssh\n    runtimes: [torchscript]\n    ssh: {host: h, user: u}\n"
     "    cuda: {index: -1}\n", ["field 'cuda.index'", "greater than or equal to 0", "-1"]),
    ("devices:\n  - name: j\n    kind: ssh\n    runtimes: [torchscript]\n    ssh: {host: h, user: u}\n"
     "    cuda: {idx: 0}\n", ["field 'cuda.idx'", "unknown key", "'index'"]),
    # the .tflite input layout (issue 12): one of two, and only where tflite is measured
    ("devices:\n  - name: p\n    kind: cpu\n    runtimes: [tflite]\n    tflite_layout: NHWC\n",
     ["device 'p'", "field 'tflite_layout'", "'nchw' or 'nhwc'", "'NHWC'", "line 5"]),
    ("devices:\n  - name: p\n    kind: cpu\n    runtimes: [torch]\n    tflite_layout: nhwc\n",
     ["device 'p'", "field 'tflite_layout'", "only applies to the tflite runtime", "add tflite to runtimes"]),
]


@pytest.mark.parametrize("text, fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_gives_one_line_naming_device_and_field(tmp_path: Path, text: str, fragments: list[str]) -> None:
    message = error_of(tmp_path, text)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="nope.yaml: file not found"):
        load(tmp_path / "nope.yaml")


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_bytes("devices:\n  - name: caf\u00e9\n    kind: cpu\n".encode("latin-1"))
    with pytest.raises(InventoryError, match=r"inventory.yaml: not UTF-8 text \(byte 0xe9 on line 2\); save the file"):
        load(path)
    with pytest.raises(InventoryError, match="is a folder, not a file"):
        load(tmp_path)


def replay_text(table: Path, device: str = "pixel3") -> str:
    return f"devices:\n  - name: r\n    kind: replay\n    replay: {{table: {table}, device: {device}}}\n"


def test_replay_table_is_checked_by_the_loader(tmp_path: Path, help_table_path: Path) -> None:
    """Issue 13, class 10: a replay table that is missing, not Parquet or lacks the device is refused here."""
    assert load(write(tmp_path, replay_text(help_table_path))).get("r").replay.table == str(help_table_path)
    assert "does not exist" in error_of(tmp_path, replay_text(tmp_path / "gone.parquet"))
    (tmp_path / "text.parquet").write_text("not parquet")
    assert "is not a readable Parquet file" in error_of(tmp_path, replay_text(tmp_path / "text.parquet"))
    message = error_of(tmp_path, replay_text(help_table_path, device="pixel33"))
    assert "device 'r': field 'replay.device'" in message and "holds no rows of 'pixel33'" in message
    assert "did you mean 'pixel3'?" in message


def test_key_files_and_known_hosts_are_checked_by_the_loader(tmp_path: Path) -> None:
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    ssh = f"devices:\n  - name: pi\n    kind: ssh\n    ssh: {{host: h, user: u, key_file: {key}, known_hosts: {known}}}\n"
    assert "field 'ssh.key_file'" in error_of(tmp_path, ssh) and "does not exist" in error_of(tmp_path, ssh)
    key.write_text("k")
    message = error_of(tmp_path, ssh)
    assert "field 'ssh.known_hosts'" in message and "ssh-keyscan -p 22 h" in message
    known.write_text("")
    assert load(write(tmp_path, ssh)).get("pi").ssh.key_file == str(key)
    adb = f"devices:\n  - name: ph\n    kind: adb\n    adb: {{serial: S, key_file: {tmp_path / 'adbkey'}}}\n"
    assert "field 'adb.key_file'" in error_of(tmp_path, adb) and "adb keygen" in error_of(tmp_path, adb)
    # a device attached to another Ray node keeps its files there: not checked on this host
    assert load(write(tmp_path, adb.replace("    adb:", "    node: elsewhere\n    adb:"))).get("ph").node == "elsewhere"


def test_relative_key_files_are_resolved_against_the_inventorys_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "lab"
    (folder / "devices").mkdir(parents=True)
    for name in ("pi.key", "known_hosts", "adbkey"):
        (folder / "devices" / name).write_text("k")
    text = ("devices:\n  - name: pi\n    kind: ssh\n"
            "    ssh: {host: h, user: u, key_file: devices/pi.key, known_hosts: devices/known_hosts}\n"
            "  - name: ph\n    kind: adb\n    adb: {serial: S, key_file: devices/adbkey}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the inventory's folder: a cwd-relative reading would miss every file
    inventory = load(write(folder, text))
    assert inventory.get("pi").ssh.key_file == str(folder / "devices" / "pi.key")
    assert inventory.get("pi").ssh.known_hosts == str(folder / "devices" / "known_hosts")
    assert inventory.get("ph").adb.key_file == str(folder / "devices" / "adbkey")
    (folder / "devices" / "pi.key").unlink()
    message = error_of(folder, text)
    assert "field 'ssh.key_file'" in message and f"{folder / 'devices' / 'pi.key'} does not exist" in message
    # "~" still means the home folder, not a folder under the inventory's
    home = loads(text.replace("devices/pi.key", "~/pi.key"), base_dir=folder)
    assert home.get("pi").ssh.key_file == "~/pi.key"


def test_get_and_select_unknown_device_list_known_names() -> None:
    inventory = Inventory(devices=[Device(name="a", kind="cpu"), Device(name="b", kind="cpu")])
    assert [d.name for d in inventory.select(["b", "a"])] == ["b", "a"]
    assert inventory.select() == inventory.devices
    with pytest.raises(InventoryError, match="unknown device 'c'; known devices: a, b"):
        inventory.select(["a", "c"])


def test_models_built_in_code_are_validated_too() -> None:
    with pytest.raises(ValueError, match="kind ssh needs"):
        Device(name="pi", kind="ssh")
    with pytest.raises(ValueError, match="duplicate name"):
        Inventory(devices=[Device(name="a", kind="cpu"), Device(name="a", kind="cpu")])


def test_cli_style_failure_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """The exit-2 contract end to end, in a real interpreter."""
    path = write(tmp_path, "devices:\n  - name: a\n    kind: cpu\n    treads: 2\n")
    script = (
        "import sys\n"
        "from farm.errors import exit_on_user_error\n"
        "from farm.inventory import load\n"
        "exit_on_user_error(lambda: load(sys.argv[1]))()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "device 'a': field 'treads': unknown key" in done.stderr


def test_max_ci_defaults_to_the_measured_limit_and_legacy_max_cv_still_loads(tmp_path: Path) -> None:
    from farm import protocol as protocols
    from farm.intervals import DEFAULT_MAX_CI

    inventory = loads("devices:\n  - name: old\n    kind: cpu\n    protocol: {max_cv: 10.0}\n  - name: new\n    kind: cpu\n")
    old, new = inventory.get("old"), inventory.get("new")
    assert old.protocol.max_cv == 10.0 and old.protocol.max_ci == DEFAULT_MAX_CI
    assert protocols.make(old.protocol).max_ci == DEFAULT_MAX_CI  # max_cv no longer judges anything
    assert new.protocol.max_cv is None and protocols.make(new.protocol, max_cv=0.3).max_ci == DEFAULT_MAX_CI
