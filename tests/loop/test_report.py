"""farm report: PNGs, index.md and --json from a store of real HELP rows and a registry of real predictors.

The store: 60 NAS-Bench-201 archs (52 trainable, 8 of the held-out slice) of four
HELP devices imported with ``farm import``, plus rows of a device ``cpu-local``
that carry what a farm campaign records (CV, ok / unstable / failed, a confidence
interval). Those ``cpu-local`` rows are constructed in this test from a HELP
device's latencies, not measured. The registry holds a ``layerwise`` base and a
``layerwise`` predictor transferred to ``pixel2`` on 20 trainable rows, both
trained and registered through the real registry code.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from farm import spaces
from farm.cli import build_parser, main
from farm.importer import import_table
from farm.store import Store
from loop.report import INDEX, JSON_FILE, register
from trainer import holdout, registry
from trainer.data import choose
from trainer.evaluate import clone
from trainer.models import get_method
from trainer.versions import BASE, PredictorRegistry

SPACE = "nasbench201"
DEVICES = ("pixel2", "raspi4", "1080ti_1", "gold_6226")
TARGET = "pixel2"
TRAINED_ON = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def farm_report(argv: list[str]) -> int:
    return main(["report", *argv], parser=build_parser(extra=[register]))


@pytest.fixture(scope="module")
def archs() -> list[str]:
    """52 trainable archs and 8 of the held-out slice, so every figure has enough held-out rows."""
    pool = spaces.get(SPACE).sample(600, seed=5)
    held = [a for a in pool if holdout.is_held_out(SPACE, a)][:8]
    trainable = [a for a in pool if not holdout.is_held_out(SPACE, a)][:52]
    return sorted(held + trainable)


@pytest.fixture(scope="module")
def help_rows(help_table_path: Path, archs: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(help_table_path, filters=[("search_space", "=", SPACE), ("device", "in", list(DEVICES))])
    return frame[frame["arch"].isin(archs)].reset_index(drop=True)


def farm_like_rows(help_rows: pd.DataFrame) -> pd.DataFrame:
    """Rows shaped like a farm campaign's for device ``cpu-local`` (constructed, not measured)."""
    base = help_rows[help_rows["device"] == "raspi4"].sort_values("arch").reset_index(drop=True)
    n = len(base)
    rng = np.random.default_rng(0)
    status = np.array(["ok"] * n, dtype=object)
    status[:6], status[6:9] = "unstable", "failed"
    latency = base["latency_ms"].to_numpy() * rng.uniform(0.9, 1.1, n)
    cv = rng.uniform(0.005, 0.04, n)
    cv[:6] = rng.uniform(0.06, 0.2, 6)
    failed = status == "failed"
    return pd.DataFrame({
        "campaign_id": "constructed", "measured_at": pd.Timestamp("2026-01-01", tz="UTC"), "source": "farm",
        "device": "cpu-local", "device_kind": "cpu", "runtime": "torch", "search_space": SPACE, "arch": base["arch"],
        "batch_size": 1, "input_size": 32, "protocol": "interleaved",
        "latency_ms": np.where(failed, np.nan, latency), "cv": np.where(failed, np.nan, cv),
        "ci_low_ms": np.where(failed, np.nan, latency * 0.98), "ci_high_ms": np.where(failed, np.nan, latency * 1.03),
        "status": status, "error": np.where(failed, "RunFailed: constructed", None), "host": "test",
        "farm_version": "test",
    })


@pytest.fixture(scope="module")
def store(help_rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report_store")
    help_rows.to_parquet(folder / "help_slice.parquet")
    import_table(folder / "help_slice.parquet", folder / "store")
    Store(folder / "store").append(farm_like_rows(help_rows))
    return folder / "store"


def pixel2_series(help_rows: pd.DataFrame) -> pd.Series:
    rows = help_rows[help_rows["device"] == TARGET]
    return pd.Series(rows["latency_ms"].to_numpy(dtype="float64"), index=rows["arch"].to_numpy()).sort_index()


@pytest.fixture(scope="module")
def registry_root(help_rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("report_registry")
    predictor = get_method("layerwise")(SPACE)
    base_dir = registry.save(predictor, work / "base", registry.ManifestUpdate("pretrain", event=holdout.MARKER))
    base_manifest = registry.read_manifest(base_dir)
    trainable, _ = holdout.split(pixel2_series(help_rows), SPACE)
    samples = trainable.loc[choose(list(trainable.index), TRAINED_ON, seed=0)]
    predictor.transfer(TARGET, samples)
    update = registry.ManifestUpdate("transfer", target=TARGET, samples={TARGET: TRAINED_ON}, event=holdout.MARKER)
    target_dir = registry.save(predictor, work / "pixel2", update, previous=base_manifest)
    versions = PredictorRegistry(work / "registry")
    for target, folder in ((BASE, base_dir), (TARGET, target_dir)):
        version = versions.add(SPACE, target, folder)
        versions.promote(SPACE, target, version.number, reason="test")
    return work / "registry"


@pytest.fixture(scope="module")
def report(store: Path, registry_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("report_out") / "reports"
    capture = pytest.MonkeyPatch()
    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        code = farm_report(["--store", str(store), "--registry", str(registry_root), "--out", str(out), "--json",
                            "--samples", "5,10,20,500", "--seeds", "0,1"])
    finally:
        capture.undo()
    assert code == 0
    return json.loads(stdout.getvalue()), out, stderr.getvalue()


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def figure(payload: dict, kind: str) -> dict:
    return next(f for f in payload["figures"] if f["kind"] == kind)


def test_every_figure_is_a_readable_png_listed_in_the_index(report):
    payload, out, _ = report
    kinds = sorted(f["kind"] for f in payload["figures"])
    assert kinds == ["latency_histograms", "predicted_vs_measured", "samples_curve", "spearman_heatmap", "stability"]
    index = (out / INDEX).read_text()
    for entry in payload["figures"]:
        path = out / entry["file"]
        width, height = png_size(path)
        assert 400 <= width <= 4000 and 300 <= height <= 4000, (entry["file"], width, height)
        assert path.stat().st_size > 15_000
        assert f"[{entry['file']}]({entry['file']}): {entry['caption']}" in index
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f["file"] for f in payload["figures"])
    assert json.loads((out / JSON_FILE).read_text()) == payload
    assert not list(out.glob(".*")), "temporary files left behind"


def test_heatmap_numbers_are_scipys_spearman_over_shared_archs(report, help_rows):
    data = figure(report[0], "spearman_heatmap")["data"]
    assert sorted(data["targets"]) == sorted([*DEVICES, "cpu-local"])
    wide = help_rows.pivot(index="arch", columns="device", values="latency_ms")
    pair = next(p for p in data["pairs"] if {p["a"], p["b"]} == {"pixel2", "gold_6226"})
    expected = stats.spearmanr(wide["pixel2"], wide["gold_6226"]).statistic
    assert pair["spearman"] == pytest.approx(expected, abs=1e-12) and pair["n"] == 60
    assert pair["ci95"][0] < pair["spearman"] < pair["ci95"][1]
    i, j = data["targets"].index("pixel2"), data["targets"].index("gold_6226")
    assert data["spearman"][i][j] == pytest.approx(expected, abs=1e-12) and data["shared_archs"][i][j] == 60
    # cpu-local has 51 ok rows (6 unstable, 3 failed): only those count.
    k = data["targets"].index("cpu-local")
    assert data["shared_archs"][k][i] == 51


def test_stability_and_histograms_count_what_the_store_holds(report, help_rows):
    payload = report[0]
    local = figure(payload, "stability")["data"]["targets"]["cpu-local"]
    assert local["counts"] == {"ok": 51, "unstable": 6, "failed": 3} and local["share"]["failed"] == 0.05
    rows = farm_like_rows(help_rows)
    measured = rows[rows["status"] != "failed"]
    assert local["cv"]["median"] == pytest.approx(float(np.median(measured["cv"])))
    half = (measured["ci_high_ms"] - measured["ci_low_ms"]) / 2 / measured["latency_ms"]
    assert local["ci_relative_half_width"]["median"] == pytest.approx(float(np.median(half)))
    imported = figure(payload, "stability")["data"]["targets"]["pixel2"]
    assert imported["counts"]["ok"] == 60 and imported["cv"]["n"] == 0
    histogram = figure(payload, "latency_histograms")["data"]["targets"]["cpu-local"]
    assert sum(histogram["ok_counts"]) == 51 and sum(histogram["unstable_counts"]) == 6
    assert len(histogram["edges_ms"]) == len(histogram["ok_counts"]) + 1


def test_predictor_figures_match_a_direct_computation(report, help_rows, registry_root):
    payload, _, stderr = report
    (entry,) = payload["predictors"]
    assert entry["error"] is None and entry["version"] == "v1" and entry["method"] == "layerwise"
    trainable, held_out = holdout.split(pixel2_series(help_rows), SPACE)
    assert len(held_out) == 8
    current, _ = registry.load(PredictorRegistry(registry_root).current(SPACE, TARGET).path)
    expected = stats.spearmanr(current.predict(list(held_out.index), TARGET), held_out.to_numpy()).statistic
    scatter = figure(payload, "predicted_vs_measured")["data"]
    assert scatter["spearman"] == pytest.approx(expected) and scatter["n"] == 8
    assert scatter["held_out"]["arch"] == list(held_out.index)
    curve = figure(payload, "samples_curve")["data"]["curve"]
    assert [p["samples"] for p in curve] == [5, 10, 20]  # 500 is more than the 52 trainable rows
    base, _ = registry.load(PredictorRegistry(registry_root).current(SPACE, BASE).path)
    adapted = clone(base)
    adapted.transfer(TARGET, trainable.loc[choose(list(trainable.index), 10, seed=1)])
    direct = stats.spearmanr(adapted.predict(list(held_out.index), TARGET), held_out.to_numpy()).statistic
    point = curve[1]
    assert point["spearman"][1] == pytest.approx(direct)
    assert point["mean"] == pytest.approx(np.mean(point["spearman"])) and point["min"] <= point["mean"] <= point["max"]
    assert entry["current"]["trained_on_samples"] == TRAINED_ON
    # One progress line per step (stderr is not a terminal here): 1 scatter + 3 counts x 2 seeds.
    lines = [line for line in stderr.splitlines() if line.startswith("report: predictor curves")]
    assert len(lines) == 7 and lines[-1].startswith("report: predictor curves 7/7:")


def test_without_registry_only_store_figures(store, tmp_path, capsys):
    assert farm_report(["--store", str(store), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == [
        "nasbench201-latency-histograms.png", "nasbench201-spearman.png", "nasbench201-stability.png"]
    assert f"index: {tmp_path / 'r' / INDEX}" in printed.out


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_store", "no such folder"),
        ("empty_store", "the store is empty"),
        ("unwritable_out", "cannot write there"),
        ("unknown_space", "holds no rows of it"),
        ("missing_registry", "--registry"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_work(case, expected, store, tmp_path, capsys):
    out = tmp_path / "out"
    argv = {
        "no_store": ["--store", str(tmp_path / "nowhere"), "--out", str(out)],
        "empty_store": ["--store", str(tmp_path), "--out", str(out)],
        "unwritable_out": ["--store", str(store), "--out", str(tmp_path / "a_file" / "reports")],
        "unknown_space": ["--store", str(store), "--space", "fbnet", "--out", str(out)],
        "missing_registry": ["--store", str(store), "--registry", str(tmp_path / "no_registry"), "--out", str(out)],
    }[case]
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        farm_report(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_a_target_without_base_predictor(store, help_rows, tmp_path, capsys):
    """layerwise learns from target samples only: without a registered base the curve starts from a fresh one."""
    trainable, _ = holdout.split(pixel2_series(help_rows), SPACE)
    predictor = get_method("layerwise")(SPACE)
    predictor.transfer(TARGET, trainable.iloc[:TRAINED_ON])
    update = registry.ManifestUpdate("transfer", target=TARGET, samples={TARGET: TRAINED_ON}, event=holdout.MARKER)
    versions = PredictorRegistry(tmp_path / "registry")
    version = versions.add(SPACE, TARGET, registry.save(predictor, tmp_path / "p", update))
    assert farm_report(["--store", str(store), "--registry", str(tmp_path / "registry"), "--out", str(tmp_path / "r"),
                        "--samples", "5", "--seeds", "0", "--json", "--quiet"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["predictors"]
    assert entry["error"].endswith("no current version (none promoted yet)") and entry["files"] == []
    versions.promote(SPACE, TARGET, version.number, reason="test")
    assert farm_report(["--store", str(store), "--registry", str(tmp_path / "registry"), "--out", str(tmp_path / "r"),
                        "--samples", "5", "--seeds", "0", "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (entry,) = payload["predictors"]
    assert entry["error"] is None and [p["samples"] for p in entry["curve"]] == [5]
    assert "Not drawn" not in (tmp_path / "r" / INDEX).read_text()
