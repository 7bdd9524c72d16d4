"""The ``trainer`` verbs end to end on a store imported from the real HELP table.

Round trips use the closed-form methods (fast); ``trainer-neural`` adds tiny-epoch
round trips of the neural methods through the same verbs (``--epochs``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farm import spaces
from farm.store import Store
from trainer import registry
from trainer.cli import main
from trainer.data import load_table

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main(argv) in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def pretrain(capsys: pytest.CaptureFixture[str], store: Path, out: Path, method: str = "layerwise", *extra: str) -> None:
    code, _, err = run(capsys, "pretrain", "--store", str(store), "--space", "nasbench201",
                       "--sources", "1080ti_1,pixel3,gold_6226", "--method", method, "--out", str(out), *extra)
    assert code == 0, err


_TINY_GCN = ["--epochs", "2", "--hyper", "gcn_hidden=[16]", "--hyper", "gcn_head=[16]"]
TINY = {"multipredict": _TINY_GCN, "stack": _TINY_GCN}


@pytest.mark.parametrize("method", ["flops", "layerwise", "multipredict", "stack"])
def test_pretrain_sample_transfer_predict_round_trip(capsys, store_dir, tmp_path, method):
    pretrain(capsys, store_dir, tmp_path / "pred", method, "--source-samples", "100", "--seed", "3", *TINY.get(method, []))
    manifest = registry.read_manifest(tmp_path / "pred")
    assert manifest["method"] == method and manifest["space"] == "nasbench201"
    assert manifest["samples"]["sources"] == {"1080ti_1": 100, "pixel3": 100, "gold_6226": 100}
    assert manifest["targets"] == []

    code, out, _ = run(capsys, "sample", "--predictor", str(tmp_path / "pred"), "--n", "20", "--seed", "1")
    picked = out.split()
    assert code == 0 and len(set(picked)) == 20
    space = spaces.get("nasbench201")
    assert all(space.canonical(a) == a for a in picked)

    code, out, err = run(capsys, "transfer", "--predictor", str(tmp_path / "pred"), "--store", str(store_dir),
                         "--target", "pixel2", "--out", str(tmp_path / "pred2"))
    assert code == 0, err
    transferred = registry.read_manifest(tmp_path / "pred2")
    assert transferred["targets"] == ["pixel2"]
    assert transferred["samples"]["targets"] == {"pixel2": 20}
    assert [e["action"] for e in transferred["history"]] == ["pretrain", "transfer"]
    if method == "multipredict":  # the default blend: its weight was chosen by cross-validation and saved
        (target,) = transferred["config"]["targets"]
        assert target["transfer"]["blend_weight"] in (0.0, 0.25, 0.5, 0.75, 1.0) and "layerwise" in target["transfer"]
    if method == "stack":  # the blend's weights over its five components, chosen by cross-validation and saved
        assert "blend of pixel2: " in out and "network row initialised from " in out
        (target,) = transferred["config"]["targets"]
        assert sum(target["transfer"]["stack_weights"].values()) == pytest.approx(1.0)
        assert len(transferred["config"]["source_tables"]) == 3

    code, _, err = run(capsys, "predict", "--predictor", str(tmp_path / "pred2"), "--all", "--out", str(tmp_path / "all.parquet"))
    assert code == 0, err
    everything = pd.read_parquet(tmp_path / "all.parquet")
    assert list(everything.columns) == ["arch", "predicted_ms"]
    assert len(everything) == 15_625 and everything["arch"].is_unique
    assert np.isfinite(everything["predicted_ms"]).all()

    # --archs FILE predicts the same values as --all for those archs, and matches the loaded predictor.
    subset = list(everything["arch"].iloc[::997])
    (tmp_path / "archs.txt").write_text("# a comment\n" + "\n".join(subset) + "\n\n")
    code, _, err = run(capsys, "predict", "--predictor", str(tmp_path / "pred2"), "--target", "pixel2",
                       "--archs", str(tmp_path / "archs.txt"), "--out", str(tmp_path / "some.parquet"))
    assert code == 0, err
    some = pd.read_parquet(tmp_path / "some.parquet")
    assert list(some["arch"]) == subset
    np.testing.assert_array_equal(some["predicted_ms"].to_numpy(), everything.set_index("arch").loc[subset, "predicted_ms"].to_numpy())
    loaded, _ = registry.load(tmp_path / "pred2")
    np.testing.assert_array_equal(loaded.predict(subset, "pixel2"), some["predicted_ms"].to_numpy())


def test_transfer_uses_exactly_the_targets_rows(capsys, store_dir, tmp_path):
    pretrain(capsys, store_dir, tmp_path / "pred")
    assert run(capsys, "transfer", "--predictor", str(tmp_path / "pred"), "--store", str(store_dir),
               "--target", "pixel2", "--out", str(tmp_path / "pred2"))[0] == 0
    rows = Store(store_dir).read(device="pixel2", columns=["arch", "latency_ms"]).set_index("arch")["latency_ms"]
    predictor, manifest = registry.load(tmp_path / "pred2")
    from trainer.data import snapshot_hash

    assert manifest["data_snapshot"]["targets"]["pixel2"] == snapshot_hash({"pixel2": rows})
    # The layer-wise fit of pixel2 is the closed form on those 20 rows and nothing else.
    reference = type(predictor)("nasbench201")
    reference.transfer("pixel2", rows)
    assert reference.parameters["pixel2"] == predictor.parameters["pixel2"]


def test_evaluate_json_and_plots(capsys, store_dir, tmp_path):
    code, out, err = run(capsys, "evaluate", "--store", str(store_dir), "--space", "nasbench201",
                         "--sources", "1080ti_1,pixel3", "--targets", "raspi4,gold_6226", "--samples", "20",
                         "--seeds", "0,1", "--method", "layerwise", "--json", str(tmp_path / "r.json"),
                         "--plots", str(tmp_path / "plots"))
    assert code == 0, err
    assert "raspi4" in out and "mean" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result["per_target"]) == {"raspi4", "gold_6226"}
    assert len(result["runs"]) == 4 and all(r["n"] == 280 for r in result["runs"])
    assert -1.0 <= result["mean"]["spearman"] <= 1.0
    for name in ("raspi4", "gold_6226"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_json_to_stdout_is_pure_json(capsys, store_dir):
    code, out, err = run(capsys, "evaluate", "--store", str(store_dir), "--space", "nasbench201", "--sources", "pixel3",
                         "--targets", "raspi4", "--samples", "5", "--seeds", "0", "--method", "flops", "--json", "-")
    assert code == 0 and json.loads(out)["method"] == "flops" and "spearman" in err


def test_task_preset_names_help_devices(capsys, store_dir, tmp_path):
    code, _, err = run(capsys, "pretrain", "--store", str(store_dir), "--task", "ND", "--method", "flops",
                       "--out", str(tmp_path / "p"))
    # The test store lacks most ND sources: the preset was applied and the unknown device reported.
    assert code == 2 and "unknown device or target '1080ti_32'" in err


@pytest.fixture()
def predictor_dir(capsys, store_dir, tmp_path) -> Path:
    pretrain(capsys, store_dir, tmp_path / "pred")
    return tmp_path / "pred"


def _fbnet_only_store(folder: Path) -> Path:
    Store(folder).append([{
        "campaign_id": "c", "measured_at": pd.Timestamp.now(tz="UTC"), "source": "test", "device": "pi",
        "device_kind": "external", "runtime": "external", "search_space": "fbnet", "arch": "x", "batch_size": 1,
        "input_size": 32, "protocol": "external", "latency_ms": 1.0, "status": "ok", "host": "h", "farm_version": "0",
    }])
    return folder


def _one_row_target_store(store_dir: Path, folder: Path) -> Path:
    frame = Store(store_dir).read(device="pixel2").head(1).assign(device="lonely")
    Store(folder).append(frame)
    return folder


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown device", "unknown device or target 'nokia3310'"),
        ("empty store", "the store is empty"),
        ("space mismatch", "the store holds fbnet"),
        ("too few samples", "needs at least 2"),
        ("corrupt predictor", "manifest.json: not valid JSON"),
        ("bad arch line", "line 2"),
        ("unknown target for predict", "unknown to the predictor"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, store_dir, predictor_dir, tmp_path, case, expected):
    out = str(tmp_path / "out")
    pred = str(predictor_dir)
    if case == "unknown device":
        argv = ["transfer", "--predictor", pred, "--store", str(store_dir), "--target", "nokia3310", "--out", out]
    elif case == "empty store":
        (tmp_path / "empty").mkdir()
        argv = ["transfer", "--predictor", pred, "--store", str(tmp_path / "empty"), "--target", "pixel2", "--out", out]
    elif case == "space mismatch":
        argv = ["transfer", "--predictor", pred, "--store", str(_fbnet_only_store(tmp_path / "fb")), "--target", "pi", "--out", out]
    elif case == "too few samples":
        store = _one_row_target_store(store_dir, tmp_path / "one")
        argv = ["transfer", "--predictor", pred, "--store", str(store), "--target", "lonely", "--out", out]
    elif case == "corrupt predictor":
        (predictor_dir / "manifest.json").write_text("{not json")
        argv = ["sample", "--predictor", pred, "--n", "3"]
    elif case == "bad arch line":
        (tmp_path / "a.txt").write_text("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n|conv~0|+|\n")
        argv = ["predict", "--predictor", pred, "--target", "pixel3", "--archs", str(tmp_path / "a.txt"), "--out", out]
    else:
        argv = ["predict", "--predictor", pred, "--target", "pixel2", "--all", "--out", out]
    code, stdout, err = run(capsys, *argv)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not Path(out).exists()


def test_console_entry_exits_2_without_traceback(store_dir, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "trainer", "pretrain", "--store", str(store_dir), "--space", "nasbench201",
         "--sources", "1080ti_1,nokia3310", "--method", "flops", "--out", str(tmp_path / "p")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("trainer: error: ") and "nokia3310" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_include_unstable_lets_transfer_use_rows_the_farm_flagged(capsys, store_dir, tmp_path):
    """A device whose every row is ``unstable`` is unknown to the trainer unless asked for."""
    store = tmp_path / "store"
    shutil.copytree(store_dir, store)
    raspi = load_table(store, "nasbench201").series("raspi4").iloc[:20]
    Store(store).append([
        {"campaign_id": "c", "measured_at": pd.Timestamp("2026-01-01", tz="UTC"), "source": "farm", "device": "shaky-cpu",
         "device_kind": "cpu", "runtime": "torch", "search_space": "nasbench201", "arch": arch, "batch_size": 1,
         "input_size": 32, "protocol": "interleaved", "latency_ms": 2.0 * float(ms), "status": "unstable", "host": "h",
         "farm_version": "0"}
        for arch, ms in raspi.items()
    ])
    pretrain(capsys, store, tmp_path / "pred", "layerwise", "--source-samples", "50")
    transfer = ["transfer", "--predictor", str(tmp_path / "pred"), "--store", str(store), "--target", "shaky-cpu",
                "--out", str(tmp_path / "pred2")]
    code, _, err = run(capsys, *transfer)
    assert code == 2 and "--target 'shaky-cpu': 0 measured archs" in err and "20 unstable rows were skipped" in err
    code, out, err = run(capsys, *transfer, "--include-unstable")
    assert code == 0, err
    assert registry.read_manifest(tmp_path / "pred2")["samples"]["targets"] == {"shaky-cpu": 20}
    assert "target shaky-cpu (the device's only configuration): 20 rows used (20 archs); skipped none" in out


def test_transfer_names_its_target_and_the_explicit_form_works(capsys, store_dir, predictor_dir, tmp_path):
    code, out, err = run(capsys, "transfer", "--predictor", str(predictor_dir), "--store", str(store_dir),
                         "--target", "pixel2:external:b1", "--out", str(tmp_path / "p2"), "--json")
    assert code == 0, err
    described = json.loads(out)
    assert described["target"] == "pixel2" and described["choice"]["rule"] == "named explicitly"
    assert "target pixel2:external:b1 -> pixel2 (named explicitly): 20 rows used (20 archs); skipped none" in err


def test_json_flags_describe_each_verb_and_send_human_lines_to_stderr(capsys, store_dir, tmp_path):
    pred, pred2 = tmp_path / "pred", tmp_path / "pred2"
    code, out, err = run(capsys, "pretrain", "--store", str(store_dir), "--space", "nasbench201", "--sources",
                         "1080ti_1,pixel3", "--method", "layerwise", "--source-samples", "30", "--out", str(pred), "--json")
    assert code == 0, err
    described = json.loads(out)
    assert described["action"] == "pretrain" and described["archs_per_source"] == {"1080ti_1": 30, "pixel3": 30}
    assert described["out"] == str(pred) and "30 archs each" in err and "pre-trained layerwise" in err

    code, out, err = run(capsys, "sample", "--predictor", str(pred), "--n", "4", "--json")
    sampled = json.loads(out)
    assert code == 0 and sampled["n"] == 4 and len(set(sampled["archs"])) == 4 and sampled["sampler"] == "cosine"

    code, out, err = run(capsys, "transfer", "--predictor", str(pred), "--store", str(store_dir), "--target", "pixel2",
                         "--out", str(pred2), "--json")
    assert code == 0, err
    transferred = json.loads(out)
    assert (transferred["target"], transferred["samples"]) == ("pixel2", 20) and "transferred layerwise" in err

    code, out, err = run(capsys, "predict", "--predictor", str(pred2), "--archs", str(_arch_file(tmp_path, sampled["archs"])),
                         "--out", str(tmp_path / "p.csv"), "--json")
    assert code == 0, err
    predicted = json.loads(out)
    assert (predicted["format"], predicted["archs"], predicted["target"]) == ("csv", 4, "pixel2")
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["arch", "predicted_ms"] and list(frame["arch"]) == sampled["archs"]
    assert predicted["predicted_ms"]["min"] == pytest.approx(frame["predicted_ms"].min())


def _arch_file(folder: Path, archs: list[str]) -> Path:
    path = folder / "archs.txt"
    path.write_text("\n".join(archs) + "\n")
    return path


def test_predict_out_dash_is_csv_on_stdout_and_refuses_json(capsys, predictor_dir, store_dir, tmp_path):
    archs = load_table(store_dir, "nasbench201").archs("raspi4")[:3]
    argv = ["predict", "--predictor", str(predictor_dir), "--target", "pixel3", "--archs", str(_arch_file(tmp_path, archs))]
    code, out, err = run(capsys, *argv, "--out", "-")
    assert code == 0, err
    assert out.splitlines()[0] == "arch,predicted_ms" and [line.split(",")[0] for line in out.splitlines()[1:]] == archs
    assert "predicted 3 archs" in err
    code, out, err = run(capsys, *argv, "--out", "-", "--json")
    assert code == 2 and "--json and --out - both write to stdout" in err and out == ""


def test_a_predictor_directory_cannot_go_to_stdout(capsys, store_dir):
    code, _, err = run(capsys, "pretrain", "--store", str(store_dir), "--space", "nasbench201", "--sources", "pixel3",
                       "--method", "flops", "--out", "-")
    assert code == 2 and "a predictor is a directory" in err and len(err.strip().splitlines()) == 1


def test_task_preset_uses_the_published_source_sample_count(capsys, store_dir, tmp_path):
    """ND asks 900 archs per source; the test store's sources share 300, so the preset is lowered to them."""
    from trainer import cli

    args = cli.build_parser().parse_args(["pretrain", "--store", "s", "--task", "FD", "--out", "o"])
    cli._apply_task(args, with_targets=False)
    assert (args.source_samples, args.preset_samples) == (4000, True)
    args = cli.build_parser().parse_args(["pretrain", "--store", "s", "--task", "ND", "--source-samples", "7", "--out", "o"])
    cli._apply_task(args, with_targets=False)
    assert (args.source_samples, args.preset_samples) == (7, False)


def test_several_store_options_are_read_as_their_union(capsys, store_dir, tmp_path):
    """Issue 12: `--store local --store pulled` sees every row of both, each measurement once."""
    rows = Store(store_dir).read()
    local, pulled = Store(tmp_path / "local"), Store(tmp_path / "pulled")
    local.append(rows[rows["device"].isin(["1080ti_1", "pixel3"])])
    pulled.append(rows[rows["device"].isin(["pixel3", "gold_6226", "pixel2"])])  # pixel3 is in both
    both = ["--store", str(local.root), "--store", str(pulled.root)]
    code, _, err = run(capsys, "pretrain", "--store", str(local.root), "--space", "nasbench201",
                       "--sources", "1080ti_1,pixel3,gold_6226", "--method", "layerwise", "--out", str(tmp_path / "p0"))
    assert code == 2 and "gold_6226" in err  # one store alone lacks a source
    code, _, err = run(capsys, "pretrain", *both, "--space", "nasbench201", "--sources", "1080ti_1,pixel3,gold_6226",
                       "--method", "layerwise", "--out", str(tmp_path / "p"))
    assert code == 0, err
    pretrain(capsys, store_dir, tmp_path / "reference")
    sources = registry.read_manifest(tmp_path / "p")["samples"]["sources"]
    assert sources == registry.read_manifest(tmp_path / "reference")["samples"]["sources"]
    code, out, err = run(capsys, "transfer", "--predictor", str(tmp_path / "p"), *both, "--target", "pixel2",
                         "--out", str(tmp_path / "p2"), "--json")
    assert code == 0, err
    assert json.loads(out)["samples"] == len(rows[rows["device"] == "pixel2"])


def test_help_round_trip_measures_the_archs_sample_names(capsys, help_table_path, tmp_path):
    """HELP through the CLI as a user runs it: pretrain, sample (reference archs first), measure those, transfer, predict."""
    from tests.trainer.conftest import SOURCES, write_and_import
    from trainer.models.help_references import reference_archs

    refs = list(reference_archs("nasbench201"))
    frame = pd.read_parquet(help_table_path, filters=[("search_space", "=", "nasbench201"),
                                                      ("device", "in", [*SOURCES, "pixel2"])])
    pool = [*spaces.get("nasbench201").sample(120, seed=1), *refs]
    store = tmp_path / "store"
    write_and_import(frame[frame["arch"].isin(pool) & (frame["device"] != "pixel2")], tmp_path, "sources.parquet", store)
    code, _, err = run(capsys, "pretrain", "--store", str(store), "--space", "nasbench201", "--sources", ",".join(SOURCES),
                       "--method", "help", "--source-samples", "100", "--out", str(tmp_path / "pred"),
                       "--epochs", "3", "--hyper", "hidden=8", "--hyper", "meta_batch=2", "--hyper", "mc_samples=2")
    assert code == 0, err
    code, out, _ = run(capsys, "sample", "--predictor", str(tmp_path / "pred"), "--n", "20", "--seed", "1")
    named = out.split()
    assert code == 0 and named[:10] == refs and len(set(named)) == 20
    write_and_import(frame[frame["arch"].isin(named) & (frame["device"] == "pixel2")], tmp_path, "pixel2.parquet", store)
    code, _, err = run(capsys, "transfer", "--predictor", str(tmp_path / "pred"), "--store", str(store),
                       "--target", "pixel2", "--out", str(tmp_path / "pred2"))
    assert code == 0, err
    assert registry.read_manifest(tmp_path / "pred2")["samples"]["targets"] == {"pixel2": 20}
    code, out, err = run(capsys, "predict", "--predictor", str(tmp_path / "pred2"), "--all", "--out", str(tmp_path / "all.parquet"))
    assert code == 0, err
    predicted = pd.read_parquet(tmp_path / "all.parquet")
    assert len(predicted) == 15_625 and np.isfinite(predicted["predicted_ms"]).all()
