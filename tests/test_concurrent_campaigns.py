"""Two real ``measure.py`` campaigns started together on one store (issue 13, class 13): no row is stored twice.

Before the store lock both planned before either had stored a row, and every row
was duplicated (32 of 32). Here both start at once with ``--wait-for-lock``: one
measures, the other waits (saying for whom), then plans against the first's rows
and measures nothing again. A third, started while the lock is held and without
``--wait-for-lock``, is refused with one line naming the holder (exit 2) and
leaves the store as it was. The devices are replay devices (a simulation: the
public HELP table answers, after a real sleep per run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from farm.spaces import get
from farm.store import RESUME_KEY, Store
from farm.store_lock import store_lock_path
from farm.summary import load_records

REPO = Path(__file__).resolve().parents[1]
DEVICES = ("pixel2", "raspi4")
ARCH_COUNT = 6


def start_measure(argv: list[str], ray_dir: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_TMPDIR": ray_dir}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "measure.py", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(600)
def test_two_campaigns_started_together_never_duplicate_a_row(tmp_path: Path, help_table_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("devices:\n" + "".join(
        f"  - name: replay-{name}\n    kind: replay\n    protocol: {{max_ci: 10.0}}\n"
        f"    replay: {{table: {help_table_path}, device: {name}, delay_ms: 1000}}\n"
        for name in DEVICES
    ))
    archs = get("nasbench201").sample(ARCH_COUNT, seed=11)
    arch_file = tmp_path / "archs.txt"
    arch_file.write_text("\n".join(archs) + "\n")
    store = tmp_path / "store"
    common = ["--inventory", str(inventory), "--archs", str(arch_file), "--store", str(store), "--no-anchors",
              "--warmup", "1", "--runs", "2", "--rounds", "1", "--job-size", "2"]
    ray_dirs = [tempfile.mkdtemp(prefix="rcc", dir="/tmp") for _ in range(3)]
    processes = [start_measure([*common, "--wait-for-lock", "400"], ray_dirs[i]) for i in range(2)]
    refused = None
    try:
        deadline = time.monotonic() + 120
        while not (store_lock_path(store).exists() and store_lock_path(store).read_text()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "no campaign took the lock"
            time.sleep(0.1)
        holder = json.loads(store_lock_path(store).read_text())
        refused = start_measure(common, ray_dirs[2])  # no --wait-for-lock: refuse at once
        refused_out, refused_err = refused.communicate(timeout=120)
        outputs = [p.communicate(timeout=480) for p in processes]
    finally:
        for process in [*processes, refused]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for folder in ray_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    # the third campaign: one line naming the holder, exit 2, before anything started
    assert refused.returncode == 2, refused_err[-2000:]
    assert len(refused_err.strip().splitlines()) == 1 and "Traceback" not in refused_err
    assert re.search(rf"store {re.escape(str(store))} is locked by campaign \S+ \(pid \d+ on host ", refused_err)
    assert f"campaign {holder['campaign_id']} (pid {holder['pid']} " in refused_err
    assert "--wait-for-lock SECONDS" in refused_err and refused_out == ""

    # both waiting campaigns finished; one of them waited and said for whom
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    waits = [err for _, err in outputs if "waiting up to " in err]
    assert len(waits) == 1 and re.search(r"waiting up to \d+ s for store .* locked by campaign \S+ \(pid \d+", waits[0])

    frame = Store(store).read()
    duplicates = int(frame.duplicated(subset=list(RESUME_KEY)).sum())
    print(f"two campaigns at once: {len(frame)} rows, {duplicates} duplicate resume keys")
    assert duplicates == 0
    assert len(frame) == ARCH_COUNT * len(DEVICES) and set(frame["status"]) == {"ok"}
    for device in DEVICES:  # every requested arch measured exactly once on every device
        assert sorted(frame[frame["device"] == f"replay-{device}"]["arch"]) == sorted(archs)
    assert frame["campaign_id"].nunique() == 1  # all by the campaign that got the lock first

    records = {r.campaign_id: r for r in load_records(store)}
    assert len(records) == 2  # the refused campaign left no record
    second = next(r for cid, r in records.items() if cid not in set(frame["campaign_id"]))
    assert [(d.measured, d.skipped) for d in second.devices] == [(0, ARCH_COUNT)] * len(DEVICES)

    # issue 12: without a terminal and without --quiet, the measuring campaign printed one line per stored job
    first_err = next(err for _, err in outputs if "waiting up to " not in err)
    progress = re.findall(r"campaign \S+: (\d+)/(\d+) archs \(ok \d+, failed \d+\): .* elapsed, ETA ", first_err)
    assert len(progress) == ARCH_COUNT * len(DEVICES) // 2  # jobs of 2 archs
    assert progress[-1] == (str(ARCH_COUNT * len(DEVICES)),) * 2
