"""farm.host_files: at ``ray up`` time, the files a host's devices need are on that host, else one line."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from farm.errors import UserError
from farm.host_files import check_host_files

REPO = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, help_table_path: Path, *, key: bool) -> Path:
    """A project folder whose inventory names a replay table and an SSH key under devices/."""
    (tmp_path / "devices").mkdir()
    shutil.copy(help_table_path, tmp_path / "devices" / "help.parquet")
    key_file = tmp_path / "devices" / "pi4-a.key"
    if key:
        key_file.write_text("not read by this check\n")
    (tmp_path / "devices" / "known_hosts").write_text("")
    (tmp_path / "inventory.yaml").write_text(f"""
devices:
  - {{name: replay-pixel3, kind: replay, replay: {{table: devices/help.parquet, device: pixel3}}}}
  - name: pi4-a
    kind: ssh
    node: 10.0.0.20
    ssh: {{host: 10.0.0.42, user: pi, key_file: {key_file}, known_hosts: {tmp_path}/devices/known_hosts}}
""")
    return tmp_path / "inventory.yaml"


def test_files_in_place_pass_for_head_and_worker(tmp_path: Path, help_table_path: Path) -> None:
    inventory = project(tmp_path, help_table_path, key=True)
    assert check_host_files(str(inventory), {"10.0.0.10"}, head=True, host="head") == 1
    assert check_host_files(str(inventory), {"10.0.0.20"}, head=False, host="usb-box") == 1


def test_a_missing_key_names_the_host_device_field_path_and_the_convention(tmp_path: Path,
                                                                          help_table_path: Path) -> None:
    inventory = project(tmp_path, help_table_path, key=False)
    assert check_host_files(str(inventory), {"10.0.0.10"}, head=True, host="head") == 1  # not the head's device
    with pytest.raises(UserError) as caught:
        check_host_files(str(inventory), {"10.0.0.20"}, head=False, host="usb-box")
    message = str(caught.value)
    assert message.startswith("host usb-box: ") and "\n" not in message
    assert "'pi4-a'" in message and "ssh.key_file" in message and str(tmp_path / "devices" / "pi4-a.key") in message
    assert "devices/ folder" in message


def test_command_line_exits_2_with_one_line(tmp_path: Path, help_table_path: Path) -> None:
    inventory = project(tmp_path, help_table_path, key=False)
    (tmp_path / "devices" / "help.parquet").unlink()
    result = subprocess.run([sys.executable, "-m", "farm.host_files", "--inventory", str(inventory), "--head"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert f"host {socket.gethostname()}: " in line and "replay.table" in line and "help.parquet" in line
