"""``trainer nightly`` on real stores imported from the HELP table (``farm.importer``), real registries.

The store: three sources (``1080ti_1``, ``pixel3``, ``gold_6226``: 300 archs each, so >= the
automatic threshold of 200) and the target ``raspi4`` with its held-out archs plus a few
trainable ones; later imports add real rows (better) or random latencies (worse). Method
``layerwise`` keeps training instant; the kill and lock tests use a deliberately long
``multipredict`` run in a subprocess (``python -m trainer nightly``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.farm.scripted_agent import local_ray
from tests.trainer.conftest import write_and_import
from tests.trainer.registry_fixtures import SPACE
from trainer import holdout, registry
from trainer.cli import main
from trainer.nightly import LOCK_FILE, NightlyFailed, run
from trainer.nightly_config import NightlyConfig
from trainer.versions import BASE, PredictorRegistry
from trainer.watermark import WATERMARK_FILE

REPO = Path(__file__).resolve().parents[2]
TARGET = "raspi4"
FIRST_ROWS = 8


def trainable_rows(frame: pd.DataFrame, device: str) -> pd.DataFrame:
    rows = frame[frame["device"] == device].sort_values("arch")
    return rows[~holdout.held_out_mask(SPACE, rows["arch"])]


def make_farm(nb201_slice: pd.DataFrame, tmp_path: Path, first_rows: int = FIRST_ROWS) -> tuple[Path, Path, pd.DataFrame]:
    """(store, registry, the raspi4 rows not yet imported): sources + raspi4's held-out and first trainable rows."""
    store, folder = tmp_path / "store", tmp_path / "imports"
    folder.mkdir()
    target = nb201_slice[nb201_slice["device"] == TARGET]
    held = target[holdout.held_out_mask(SPACE, target["arch"])]
    later = trainable_rows(nb201_slice, TARGET)
    first = pd.concat([nb201_slice[~nb201_slice["device"].isin([TARGET, "pixel2"])], held, later.head(first_rows)])
    write_and_import(first, folder, "first.parquet", store)
    return store, tmp_path / "registry", later.iloc[first_rows:]


@pytest.fixture()
def farm(nb201_slice, tmp_path):
    """A store whose raspi4 predictor from 8 rows is already good (held-out Spearman ~0.92)."""
    return make_farm(nb201_slice, tmp_path)


def nightly(store: Path, reg: Path, **options) -> dict:
    return run(NightlyConfig.build(store, reg, method=options.pop("method", "layerwise"), **options), say=lambda _: None).summary


def add_rows(rows: pd.DataFrame, store: Path, name: str) -> None:
    write_and_import(rows, store.parent / "imports", name, store)


def test_first_run_promotes_the_base_and_each_target_and_a_rerun_changes_nothing(farm):
    store, reg_dir, _ = farm
    summary = nightly(store, reg_dir)
    entry = summary["spaces"][SPACE]
    assert summary["ok"] and entry["sources"] == ["1080ti_1", "gold_6226", "pixel3"]
    assert entry["base"]["action"] == "promoted" and entry["targets"][TARGET]["action"] == "promoted"
    step = entry["targets"][TARGET]
    assert step["rows"] == FIRST_ROWS and step["held_out"]["n"] >= holdout.MIN_SCORED
    reg = PredictorRegistry(reg_dir)
    manifest = registry.load(reg.current(SPACE, TARGET).path)[1]
    assert holdout.unmarked_reason(manifest) is None, "every training step records the held-out exclusion"
    assert manifest["samples"]["targets"][TARGET] == FIRST_ROWS, "held-out rows were not trained on"
    assert all(n == 300 - entry["base"]["held_out"]["per_target"][s]["n"]
               for s, n in registry.read_manifest(reg.current(SPACE, BASE).path)["samples"]["sources"].items())
    assert json.loads((reg_dir / WATERMARK_FILE).read_text())["spaces"][SPACE]["targets"][TARGET]["rows"] == FIRST_ROWS

    again = nightly(store, reg_dir)["spaces"][SPACE]
    assert again["base"]["action"] == "unchanged" and again["targets"][TARGET]["action"] == "unchanged"
    assert [v.number for v in reg.versions(SPACE, TARGET)] == [1]
    runs = [json.loads(line) for line in (reg_dir / "nightly.jsonl").read_text().splitlines()]
    assert [r["ok"] for r in runs] == [True, True]


def test_new_rows_that_make_the_predictor_better_are_promoted(nb201_slice, tmp_path):
    # Four rows give a poor layer-wise table (held-out Spearman ~0.1); 140 more give ~0.9.
    store, reg_dir, later = make_farm(nb201_slice, tmp_path, first_rows=4)
    nightly(store, reg_dir)
    add_rows(later.head(140), store, "more.parquet")
    step = nightly(store, reg_dir)["spaces"][SPACE]["targets"][TARGET]
    assert step["action"] == "promoted", step
    assert step["held_out"]["spearman"] > step["current_held_out"]["spearman"]
    assert step["held_out"]["n"] == step["current_held_out"]["n"], "both scored on the same held-out rows"
    assert "+140 trainable rows" in step["trigger"]
    reg = PredictorRegistry(reg_dir)
    assert reg.current(SPACE, TARGET).number == 2 and reg.current(SPACE, BASE).number == 1
    assert reg.history(SPACE, TARGET)[-1]["reason"].startswith("better on the held-out slice")


def test_noise_that_makes_the_predictor_worse_is_not_promoted(farm):
    store, reg_dir, later = farm
    nightly(store, reg_dir)
    noise = later.head(150).copy()  # 8 + 150 + 32 held-out rows: still under the 200 that make a source
    noise["latency_ms"] = np.random.default_rng(0).uniform(noise["latency_ms"].min(), noise["latency_ms"].max(), len(noise))
    add_rows(noise, store, "noise.parquet")
    summary = nightly(store, reg_dir)
    step = summary["spaces"][SPACE]["targets"][TARGET]
    assert step["action"] == "refused", step
    assert step["held_out"]["spearman"] < step["current_held_out"]["spearman"]
    reg = PredictorRegistry(reg_dir)
    assert reg.current(SPACE, TARGET).number == 1 and [v.number for v in reg.versions(SPACE, TARGET)] == [1, 2]
    refusal = reg.history(SPACE, TARGET)[-1]
    assert refusal["action"] == "refuse" and refusal["version"] == 2 and "not better" in refusal["reason"]
    assert summary["ok"], "a refusal is a normal outcome, not a failure"


def test_targets_without_enough_rows_and_spaces_without_sources_are_skipped_with_a_reason(farm):
    store, reg_dir, _ = farm
    summary = nightly(store, reg_dir, min_source_archs=1000)
    assert "no source" in summary["spaces"][SPACE]["base"]["reason"] and summary["ok"]
    assert PredictorRegistry(reg_dir).entries() == []
    (reg_dir / "registry.yaml").write_text(f"spaces:\n  {SPACE}:\n    sources: [1080ti_1, pixel3]\n    targets: [{TARGET}]\n")
    entry = nightly(store, reg_dir, method="flops")["spaces"][SPACE]
    assert entry["sources"] == ["1080ti_1", "pixel3"] and list(entry["targets"]) == [TARGET]


def test_a_corrupt_base_fails_the_run_leaves_current_and_the_watermark(farm, capsys):
    store, reg_dir, later = farm
    nightly(store, reg_dir)
    mark = (reg_dir / WATERMARK_FILE).read_text()
    reg = PredictorRegistry(reg_dir)
    (reg.current(SPACE, BASE).path / registry.WEIGHTS).write_bytes(b"bit rot")
    add_rows(later.head(50), store, "more.parquet")
    with pytest.raises(NightlyFailed, match="checksum"):
        nightly(store, reg_dir)
    assert reg.current(SPACE, TARGET).number == 1 and (reg_dir / WATERMARK_FILE).read_text() == mark
    code = main(["nightly", "--store", str(store), "--registry", str(reg_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("trainer: error: nightly failed: 1 step(s) failed, first nasbench201/raspi4")


def test_bad_registry_yaml_is_one_line_and_exit_2_before_anything_runs(farm, capsys):
    store, reg_dir, _ = farm
    reg_dir.mkdir()
    (reg_dir / "registry.yaml").write_text(f"spaces:\n  {SPACE}:\n    source: [1080ti_1]\n")
    with pytest.raises(SystemExit) as exit_:
        main(["nightly", "--store", str(store), "--registry", str(reg_dir)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert "registry.yaml: field 'spaces.nasbench201': unknown key 'source'" in err
    (reg_dir / "registry.yaml").write_text(f"spaces:\n  {SPACE}:\n    sources: [nosuchdevice]\n")
    with pytest.raises(SystemExit):
        main(["nightly", "--store", str(store), "--registry", str(reg_dir)])
    assert "'nosuchdevice' is not a target of the store" in capsys.readouterr().err
    assert not (reg_dir / WATERMARK_FILE).exists() and PredictorRegistry(reg_dir).entries() == []


SLOW = ["--method", "multipredict", "--epochs", "100000"]


def start_slow_run(store: Path, reg_dir: Path) -> subprocess.Popen:
    """A real ``python -m trainer nightly`` that re-pre-trains the base for a long time."""
    return subprocess.Popen([sys.executable, "-m", "trainer", "nightly", "--store", str(store), "--registry", str(reg_dir),
                             *SLOW], cwd=REPO, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen, needle: str, timeout_s: float = 240) -> list[str]:
    seen, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if needle in line:
            return seen
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never saw {needle!r}; got {seen}")


def test_kill_9_mid_run_leaves_current_intact_and_loadable(farm):
    store, reg_dir, later = farm
    nightly(store, reg_dir)
    add_rows(later.head(60), store, "more.parquet")
    reg = PredictorRegistry(reg_dir)
    before = {name: os.readlink(reg.folder(SPACE, name) / "current") for name in (BASE, TARGET)}
    mark = (reg_dir / WATERMARK_FILE).read_text()
    process = start_slow_run(store, reg_dir)
    try:
        wait_for_line(process, "pretrain multipredict")
        time.sleep(2.0)  # well inside the training loop
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    for name, pointer in before.items():
        assert os.readlink(reg.folder(SPACE, name) / "current") == pointer
        predictor, manifest = registry.load(reg.folder(SPACE, name) / "current")
        assert predictor.predict([later["arch"].iloc[0]], TARGET if name == TARGET else "pixel3").shape == (1,)
    assert (reg_dir / WATERMARK_FILE).read_text() == mark
    # The lock died with the process: the next run starts, finishes the work and cleans the killed run's files.
    summary = nightly(store, reg_dir)
    assert summary["ok"] and summary["spaces"][SPACE]["targets"][TARGET]["action"] in ("promoted", "refused")
    assert not (reg_dir / ".nightly-work").exists()


def test_a_concurrent_run_is_refused_naming_the_holder(farm, capsys):
    store, reg_dir, _ = farm
    nightly(store, reg_dir)
    process = start_slow_run(store, reg_dir)
    try:
        wait_for_line(process, "pretrain multipredict")
        capsys.readouterr()
        code = main(["nightly", "--store", str(store), "--registry", str(reg_dir), "--method", "layerwise"])
        err = capsys.readouterr().err.strip()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        process.stderr.close()
    assert code == 3 and len(err.splitlines()) == 1, err
    assert f"another nightly run holds {reg_dir / LOCK_FILE}: pid {process.pid} on host" in err
    assert "trainer nightly" in err


@pytest.fixture()
def ray_cluster():
    yield from local_ray()


def test_ray_fans_out_one_task_per_target(nb201_slice, tmp_path, ray_cluster):
    store = tmp_path / "store"
    (tmp_path / "imports").mkdir()
    few = pd.concat([trainable_rows(nb201_slice, d).head(30) for d in (TARGET, "pixel2")])
    write_and_import(pd.concat([nb201_slice[~nb201_slice["device"].isin([TARGET, "pixel2"])], few]),
                     tmp_path / "imports", "all.parquet", store)
    summary = nightly(store, tmp_path / "registry", use_ray=True)
    steps = summary["spaces"][SPACE]["targets"]
    assert summary["ray"] and {name: step["action"] for name, step in steps.items()} == {TARGET: "promoted", "pixel2": "promoted"}
    assert PredictorRegistry(tmp_path / "registry").current(SPACE, "pixel2").summary["targets"] == ["pixel2"]
