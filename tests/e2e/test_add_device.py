"""``farm add-device`` end to end, against a replay device (a simulation of a held-out public device).

A store holds four public NB201 devices imported from the HELP table; a small
multipredict base is pre-trained on them and registered. The inventory gets a
replay device backed by HELP's pixel3, which is not among the sources (a
simulation: its "measurements" are pixel3's published latencies). ``farm
add-device`` runs in-process on a real local Ray with real Parquet files; the
predictions must cover all 15,625 NB201 archs and rank them like pixel3's
published latencies (Spearman >= 0.85), the report must exist, and a second
run must measure nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from scipy import stats

from farm.store import Store
from loop.base import BaseOptions, import_space, pretrain_base
from loop.cli import main
from loop.predictions import latest, read_predictions
from tests.farm.scripted_agent import local_ray

SOURCES = ["1080ti_1", "silver_4114", "samsung_a50", "pixel2"]
HELD_OUT_DEVICE = "pixel3"
DEVICE = "replay-pixel3-simulation"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    yield from local_ray()


@pytest.fixture(scope="module")
def farm_dirs(tmp_path_factory: pytest.TempPathFactory, help_table_path: Path) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("add_device")
    dirs = {name: work / name for name in ("store", "registry", "predictions", "reports")}
    assert import_space(help_table_path, dirs["store"], "nasbench201", devices=SOURCES) == len(SOURCES) * 15625
    pretrain_base(BaseOptions(dirs["store"], dirs["registry"], sources=SOURCES, source_samples=300,
                              method="multipredict", hyper={"epochs": 5}), say=lambda _: None)
    inventory = work / "inventory.yaml"
    inventory.write_text(
        f"devices:\n  - name: {DEVICE}\n    kind: replay\n    platform: pixel3\n"
        f"    replay: {{table: {help_table_path}, device: {HELD_OUT_DEVICE}}}\n"
    )
    dirs["inventory"] = inventory
    return dirs


def add_device(dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> dict:
    argv = ["add-device", DEVICE, "--inventory", str(dirs["inventory"]), "--samples", "20", "--json", "--epochs", "5"]
    for name in ("store", "registry", "predictions", "reports"):
        argv += [f"--{name}", str(dirs[name])]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_add_device_predicts_the_whole_space_and_a_rerun_measures_nothing(
    ray_cluster: None, farm_dirs: dict[str, Path], help_table_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = add_device(farm_dirs, capsys)

    assert report["campaign"]["new_rows"] == 20 and report["campaign"]["already_stored"] == 0
    # the 20 sampled archs plus the campaign's drift anchors (real rows of the device), held-out ones dropped
    assert report["transfer"]["samples"] >= 20
    assert report["version"]["number"] == 1 and report["version"]["promoted"]
    predictions, metadata = read_predictions(latest(farm_dirs["predictions"], "nasbench201", DEVICE))
    assert len(predictions) == predictions["arch"].nunique() == 15625
    assert metadata["version"] == "1" and metadata["method"] == "multipredict"

    help_table = pd.read_parquet(help_table_path, filters=[("search_space", "==", "nasbench201"),
                                                           ("device", "==", HELD_OUT_DEVICE)])
    truth = help_table.set_index("arch")["latency_ms"]
    rho = stats.spearmanr(predictions["predicted_ms"], truth.loc[predictions["arch"]].to_numpy()).statistic
    assert rho >= 0.85, f"Spearman {rho:.3f} against the replayed pixel3 latencies"
    print(f"Spearman of the predictions against the replayed pixel3 latencies: {rho:.4f}", file=sys.stderr)

    files = report["files"]
    for key in ("markdown", "json", "histogram"):
        assert Path(files[key]).stat().st_size > 200
    assert Path(files["histogram"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["correlated"] and report["correlated"][0]["target"] in SOURCES
    expected = report["expected_spearman"]["pooled"]
    assert expected["n"] == report["transfer"]["samples"] and expected["low"] <= expected["rho"] <= expected["high"]
    assert set(report["timings"]) == {"probe", "sample", "measure", "transfer", "predict", "evaluate", "report"}

    rows_before = len(Store(farm_dirs["store"]).read(device=DEVICE, columns=["measurement_id"]))
    again = add_device(farm_dirs, capsys)
    assert again["campaign"]["new_rows"] == 0 and again["campaign"]["already_stored"] == 20
    assert len(Store(farm_dirs["store"]).read(device=DEVICE, columns=["measurement_id"])) == rows_before
    assert again["selection"]["samples"] == report["selection"]["samples"]
    assert again["version"] == {**again["version"], "number": 1, "registered": False}  # same rows: nothing new
    assert again["predictions"]["version"] == 1


def test_a_device_whose_probe_fails_is_one_line_and_exit_2(
    ray_cluster: None, farm_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("devices:\n  - name: replay-gone\n    kind: replay\n"
                         f"    replay: {{table: {tmp_path / 'missing.parquet'}, device: pixel3}}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["add-device", "replay-gone", "--inventory", str(inventory), "--store", str(farm_dirs["store"]),
              "--registry", str(farm_dirs["registry"]), "--predictions", str(tmp_path / "p"),
              "--reports", str(tmp_path / "r")])
    error = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(error.splitlines()) == 1
    # the inventory loader now finds the missing table before Ray starts (issue 13, class 10)
    assert "device 'replay-gone': field 'replay.table'" in error and "missing.parquet does not exist" in error
    assert not Store(farm_dirs["store"]).read(device="replay-gone", columns=["arch"]).shape[0]
