"""Store and device locks (issue 13, class 13): real files, real flock, a second real process as the other campaign."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from farm.errors import UserError
from farm.inventory import Device
from farm.store_lock import (
    LockBusy,
    LockHolder,
    WaitNotice,
    device_lock_path,
    local_devices,
    lock_campaign,
    store_lock_path,
)

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)

#: A second campaign process: takes the locks of ``store`` (and of a local cpu device), says so, holds them until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from farm.inventory import Device
    from farm.store_lock import lock_campaign
    store, lock_dir, campaign, hold_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    locks = lock_campaign(store, [Device(name="cpu-a", kind="cpu")], campaign, lock_dir=lock_dir)
    print("locked", flush=True)
    time.sleep(hold_s)
    locks.release()
    print("released", flush=True)
    """
)


def start_holder(store: Path, lock_dir: Path, campaign: str, hold_s: float = 60.0) -> subprocess.Popen[str]:
    """Start a real process holding the store and device locks; return once it holds them."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store), str(lock_dir), campaign, str(hold_s)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n", process.stderr.read()  # type: ignore[union-attr]
    return process


@pytest.fixture()
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "locks"


def test_second_campaign_is_refused_with_one_line_naming_the_holder(tmp_path: Path, lock_dir: Path) -> None:
    store = tmp_path / "store"
    holder = start_holder(store, lock_dir, "first-campaign")
    try:
        with pytest.raises(LockBusy) as refused:
            lock_campaign(store, [], "second-campaign", lock_dir=lock_dir)
    finally:
        holder.kill()
        holder.wait()
    message = str(refused.value)
    assert "\n" not in message and isinstance(refused.value, UserError)  # exit 2 through farm.errors
    assert message.startswith(f"{store_lock_path(store)}: store {store} is locked by campaign first-campaign ")
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert "--wait-for-lock SECONDS" in message
    assert refused.value.holder is not None and refused.value.holder.pid == holder.pid


def test_a_local_device_is_locked_across_stores(tmp_path: Path, lock_dir: Path) -> None:
    holder = start_holder(tmp_path / "store-a", lock_dir, "on-store-a")
    cpu = Device(name="cpu-a", kind="cpu")
    try:
        with pytest.raises(LockBusy, match=r"device cpu-a is locked by campaign on-store-a .*same cores"):
            lock_campaign(tmp_path / "store-b", [cpu], "on-store-b", lock_dir=lock_dir)
        # the refusal released the store lock it had taken: another campaign on store-b, with no local device, runs
        with lock_campaign(tmp_path / "store-b", [], "store-b-only", lock_dir=lock_dir):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_never_blocks(tmp_path: Path, lock_dir: Path) -> None:
    """kill -9 leaves the lock file (with the dead holder's name) behind; the kernel has dropped the flock."""
    store = tmp_path / "store"
    holder = start_holder(store, lock_dir, "killed")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert json.loads(store_lock_path(store).read_text())["campaign_id"] == "killed"  # stale name still there
    started = time.monotonic()
    with lock_campaign(store, [Device(name="cpu-a", kind="cpu")], "next", lock_dir=lock_dir) as locks:
        assert time.monotonic() - started < 1.0
        assert json.loads(store_lock_path(store).read_text())["campaign_id"] == "next"
        assert locks.paths == [store_lock_path(store), device_lock_path("cpu-a", lock_dir)]
    assert store_lock_path(store).read_text() == ""  # released: no name left to mislead a reader


def test_a_waiting_campaign_says_whom_it_waits_for_then_gets_the_lock(tmp_path: Path, lock_dir: Path) -> None:
    store = tmp_path / "store"
    holder = start_holder(store, lock_dir, "short-one", hold_s=1.5)
    notices: list[WaitNotice] = []
    started = time.monotonic()
    try:
        with lock_campaign(store, [], "patient", wait_s=60, on_wait=notices.append, lock_dir=lock_dir, poll_s=0.05):
            waited = time.monotonic() - started
            assert json.loads(store_lock_path(store).read_text())["campaign_id"] == "patient"
    finally:
        holder.wait(timeout=30)
    assert 0.0 < waited < 30
    assert len(notices) == 1 and notices[0].holder is not None and notices[0].holder.pid == holder.pid
    line = notices[0].render()
    assert line.startswith("waiting up to ") and "campaign short-one (pid" in line and "\n" not in line


def test_waiting_is_bounded(tmp_path: Path, lock_dir: Path) -> None:
    store = tmp_path / "store"
    holder = start_holder(store, lock_dir, "long-one")
    started = time.monotonic()
    try:
        with pytest.raises(LockBusy, match=r"is still locked after waiting 1 s by campaign long-one"):
            lock_campaign(store, [], "impatient", wait_s=0.6, lock_dir=lock_dir, poll_s=0.05)
    finally:
        holder.kill()
        holder.wait()
    assert 0.6 <= time.monotonic() - started < 10


def test_the_same_process_cannot_lock_twice(tmp_path: Path, lock_dir: Path) -> None:
    """flock belongs to the open file, so a second campaign in one process is refused too."""
    with lock_campaign(tmp_path, [], "one", lock_dir=lock_dir):
        with pytest.raises(LockBusy, match="campaign one"):
            lock_campaign(tmp_path, [], "two", lock_dir=lock_dir)


def test_only_devices_measured_on_this_host_get_a_device_lock() -> None:
    devices = [
        Device(name="gpu0", kind="cuda"),
        Device(name="cpu-b", kind="cpu"),
        Device(name="cpu-far", kind="cpu", node="worker-1"),  # its actor runs on that node, not here
        Device(name="pi", kind="ssh", ssh={"host": "10.0.0.7", "user": "pi"}),
    ]
    assert [d.name for d in local_devices(devices)] == ["cpu-b", "gpu0"]


def test_hostile_lock_files_are_one_line_errors(tmp_path: Path, lock_dir: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    store = tmp_path / "store"
    store.mkdir()
    store_lock_path(store).symlink_to(target)
    with pytest.raises(UserError, match=r"\.lock: is a symbolic link; remove it"):
        lock_campaign(store, [], "c", lock_dir=lock_dir)
    assert target.read_text() == "keep me\n"  # never written through the link

    lock_dir.mkdir(mode=0o777)
    lock_dir.chmod(0o777)
    with pytest.raises(UserError, match="writable by others; run: chmod 700"):
        lock_campaign(tmp_path / "other", [Device(name="cpu-a", kind="cpu")], "c", lock_dir=lock_dir)
    assert not (tmp_path / "other").exists()  # checked before anything is created


@pytest.mark.parametrize("text", ["", "not json", '{"pid": true}', "[1]", '{"pid": 5, "host": 7}', "[" * 100_000])
def test_a_garbled_holder_file_reads_as_unknown(text: str) -> None:
    assert LockHolder.from_text(text) is None


def test_a_holder_file_is_made_one_safe_line() -> None:
    data = {"pid": 7, "host": "h\nx", "campaign_id": "c" * 1000, "store": "s", "started_at": "t"}
    holder = LockHolder.from_text(json.dumps(data))
    assert holder is not None and "\n" not in holder.describe() and len(holder.campaign_id) < 300
