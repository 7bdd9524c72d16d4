"""make demo's job (loop.demo) end to end with a replay device (a simulation of HELP's pixel3) instead of this CPU.

Real local Ray, real Parquet stores; the base is a tiny multipredict pre-trained on three
public devices. The demo's ground truth must be disjoint from the device's samples and
held-out archs, land in its own store, rank like the replayed latencies, and a second run
must measure nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from farm.store import Store
from loop.demo import DemoOptions, render, run_demo
from tests.farm.scripted_agent import local_ray
from tests.loop.help_subset import SPACE, write_subset
from trainer.holdout import is_held_out

DEVICE = "replay-pixel3-simulation"
SOURCES = ("pixel2", "samsung_a50", "silver_4114")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    yield from local_ray()


def test_demo_with_a_replay_device(ray_cluster: None, tmp_path: Path, help_table_path: Path) -> None:
    table = write_subset(help_table_path, tmp_path / "sources.parquet", SOURCES)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"devices:\n  - name: {DEVICE}\n    kind: replay\n"
                         f"    replay: {{table: {help_table_path}, device: pixel3}}\n")
    options = DemoOptions(root=tmp_path / "demo", table=table, inventory=inventory, device=DEVICE, samples=10, truth=30,
                          sources=SOURCES, source_samples=200, method="multipredict", epochs=3, progress=False)
    summary = run_demo(options, stream=None)

    assert summary["truth_archs"] == 30 and summary["truth_missing"] == 0
    assert summary["spearman"]["rho"] >= 0.8 and summary["spearman"]["low"] <= summary["spearman"]["rho"]
    samples = set(summary["add_device"]["selection"]["samples"])
    device_archs = set(Store(options.folder("store")).read(device=DEVICE, columns=["arch"])["arch"])
    truth = set(Store(options.folder("truth")).read(device=DEVICE, columns=["arch"])["arch"])
    assert samples <= device_archs
    asked = truth - device_archs  # the truth store also holds its campaigns' drift anchors
    assert len(asked) == 30 and not any(is_held_out(SPACE, a) for a in asked)
    assert Path(summary["scatter"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((options.folder("reports") / "demo.json").read_text())["spearman"] == summary["spearman"]
    assert "Spearman" in render(summary) and "wall time" in render(summary)

    truth_rows = len(Store(options.folder("truth")).read(columns=["arch"]))
    again = run_demo(options, stream=None)
    assert again["add_device"]["campaign"]["new_rows"] == 0 and again["spearman"] == summary["spearman"]
    assert len(Store(options.folder("truth")).read(columns=["arch"])) == truth_rows
    assert again["timings"]["base"] < summary["timings"]["base"]  # the registered base is reused
