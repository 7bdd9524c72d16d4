"""SIGKILL a campaign mid-run, run it again: every arch exactly once, ok, and every Parquet file readable.

The campaign runs ``measure.py`` in a subprocess on two devices: this machine's CPU (real
NB201 models through the local agent) and a replay device (a simulation of pixel2 from the
HELP table, slowed down so the kill lands mid-run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from farm.spaces import get
from farm.store import Store
from farm.summary import load_records

REPO = Path(__file__).resolve().parents[2]
N_ARCHS = 12

pytestmark = pytest.mark.timeout(400)


def write_inventory(folder: Path, table: Path) -> Path:
    inventory = folder / "inventory.yaml"
    inventory.write_text(
        f"""devices:
  - name: cpu-local
    kind: cpu
    runtimes: [torch]
    protocol: {{max_ci: 10.0}}    # never 'unstable' on this shared CPU: the test is about resume
  - name: replay-pixel2
    kind: replay
    protocol: {{max_ci: 10.0}}
    replay: {{table: {table}, device: pixel2, delay_ms: 150}}
"""
    )
    return inventory


def command(inventory: Path, archs: Path, store: Path) -> list[str]:
    return [sys.executable, "measure.py", "--inventory", str(inventory), "--archs", str(archs), "--store", str(store),
            "--warmup", "1", "--runs", "2", "--rounds", "1", "--job-size", "2", "--quiet"]


def kill_ray_left_over(temp_root: str) -> None:
    """Kill Ray processes the killed driver left behind (they run under ``temp_root``; we started them)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if temp_root in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


def test_sigkill_mid_campaign_then_resume(tmp_path: Path, help_table_path: Path) -> None:
    archs = get("nasbench201").sample(N_ARCHS, seed=11)
    arch_file = tmp_path / "archs.txt"
    arch_file.write_text("\n".join(archs) + "\n")
    inventory = write_inventory(tmp_path, help_table_path)
    store = tmp_path / "measurements"
    temp_root = tempfile.mkdtemp(prefix="rk", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": temp_root}
    env.pop("RAY_ADDRESS", None)

    first = subprocess.Popen(command(inventory, arch_file, store), cwd=REPO, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not Store(store).files() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, "the campaign ended before it could be killed"
        assert Store(store).files(), "no results streamed into the store within 240 s"
        os.killpg(first.pid, signal.SIGKILL)  # the driver and everything in its session
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        kill_ray_left_over(temp_root)
    partial = Store(store).read()
    assert 0 < len(partial) < 2 * N_ARCHS, "the kill should land mid-campaign"

    second = subprocess.run(command(inventory, arch_file, store), cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    kill_ray_left_over(temp_root)
    assert second.returncode == 0, second.stderr[-2000:]

    for path in Store(store).files():
        assert pq.read_table(path).num_rows > 0  # every committed file is complete and readable
    rows = Store(store).read()
    assert set(rows["status"]) == {"ok"}
    anchors = rows["is_anchor"].fillna(False).astype(bool)
    assert anchors.any() and rows[anchors]["anchor_ms"].notna().all()  # every job measured its drift anchors too
    rows = rows[~anchors]
    counts = rows.groupby(["device", "arch"]).size()
    assert len(counts) == 2 * N_ARCHS and counts.eq(1).all()  # each requested arch exactly once per device
    assert set(rows["arch"]) == set(archs)
    assert set(rows[rows["device"] == "replay-pixel2"]["device_kind"]) == {"replay"}
    assert rows["campaign_id"].nunique() == 2  # some rows from the killed run survived, the rest resumed
    # the killed campaign's record says it never finished; the resumed one finished
    assert [r.status for r in load_records(store)] == ["running", "finished"]
