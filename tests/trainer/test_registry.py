"""Predictor directories: manifest + safetensors, identical predictions after load, clear corruption errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer import registry
from trainer.data import load_table
from trainer.models import get_method
from trainer.registry import ManifestUpdate, RegistryError


@pytest.fixture(scope="module")
def fitted(store_dir):
    table = load_table(store_dir, "nasbench201")
    predictor = get_method("layerwise")("nasbench201", seed=2, ridge=0.05)
    predictor.pretrain({"pixel3": table.series("pixel3")})
    predictor.transfer("pixel2", table.series("pixel2"))
    return predictor, table


def test_save_load_gives_identical_predictions_and_a_full_manifest(fitted, tmp_path):
    predictor, table = fitted
    folder = registry.save(predictor, tmp_path / "p", ManifestUpdate("transfer", target="pixel2", samples={"pixel2": 20}, snapshot="abc"),
                           previous={"sources": ["pixel3"], "targets": [], "history": [{"action": "pretrain", "at": "t0"}]})
    loaded, manifest = registry.load(folder)
    archs = table.archs()
    for target in ("pixel2", "pixel3"):
        np.testing.assert_array_equal(loaded.predict(archs, target), predictor.predict(archs, target))
    for key in ("method", "space", "sources", "targets", "normalisation", "samples", "data_snapshot", "metrics",
                "created_at", "package_version", "weights"):
        assert key in manifest
    assert manifest["sources"] == ["pixel3"] and manifest["targets"] == ["pixel2"]
    assert manifest["hyper"] == {"ridge": 0.05} and manifest["seed"] == 2
    assert [event["action"] for event in manifest["history"]] == ["pretrain", "transfer"]
    assert (folder / "weights.safetensors").is_file()


def test_saving_again_replaces_atomically(fitted, tmp_path):
    predictor, _ = fitted
    registry.save(predictor, tmp_path / "p", ManifestUpdate("pretrain"))
    first = json.loads((tmp_path / "p" / "manifest.json").read_text())["history"]
    registry.save(predictor, tmp_path / "p", ManifestUpdate("transfer", target="x"), previous={"sources": [], "targets": [], "history": first})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no staging or aside folders left
    assert registry.read_manifest(tmp_path / "p")["targets"] == ["x"]


def _corrupt(folder: Path, how: str) -> None:
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if how == "no manifest":
        manifest_path.unlink()
    elif how == "bad json":
        manifest_path.write_text("{")
    elif how == "missing field":
        del manifest["method"]
        manifest_path.write_text(json.dumps(manifest))
    elif how == "unknown method":
        manifest["method"] = "oracle"
        manifest_path.write_text(json.dumps(manifest))
    elif how == "future format":
        manifest["format"] = 99
        manifest_path.write_text(json.dumps(manifest))
    elif how == "weights edited":
        weights = folder / "weights.safetensors"
        weights.write_bytes(weights.read_bytes() + b"\0")
    elif how == "weights missing":
        (folder / "weights.safetensors").unlink()
    elif how == "config broken":
        del manifest["config"]["parameters"]
        manifest_path.write_text(json.dumps(manifest))
    elif how.startswith("manifest "):  # "manifest FIELD=JSON": one field replaced (issue 13, class 6)
        field, _, value = how[len("manifest "):].partition("=")
        outer, _, inner = field.partition(".")
        if inner:
            manifest[outer][inner] = json.loads(value)
        else:
            manifest[outer] = json.loads(value)
        manifest_path.write_text(json.dumps(manifest))
    elif how == "weights symlink":
        outside = folder.parent / "outside.safetensors"
        (folder / "weights.safetensors").rename(outside)
        (folder / "weights.safetensors").symlink_to(outside)
    elif how == "deep json":
        manifest_path.write_text("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    "how, message",
    [
        ("no manifest", "manifest.json: missing"),
        ("bad json", "not valid JSON"),
        ("missing field", "field 'method' is missing"),
        ("unknown method", "unknown method 'oracle'"),
        ("future format", "field 'format'"),
        ("weights edited", "checksum does not match"),
        ("weights missing", "weights.safetensors: missing"),
        ("config broken", "field 'config' does not rebuild"),
        # issue 13, class 6: weights only from inside the folder; malformed fields are one line, not AttributeError
        ('manifest weights.file="../outside.safetensors"', "field 'weights.file': '../outside.safetensors' is not a file name"),
        ('manifest weights.file="/etc/passwd"', "field 'weights.file': '/etc/passwd' is not a file name"),
        ('manifest weights.file="sub/w.safetensors"', "field 'weights.file'"),
        ('manifest weights.file=".."', "field 'weights.file'"),
        ("weights symlink", "is a symbolic link"),
        ('manifest weights=["w"]', "field 'weights': expected an object"),
        ("manifest weights.sha256=7", "field 'weights.sha256'"),
        ('manifest sources="pixel3"', "field 'sources': expected a list of target names"),
        ("manifest targets=[1]", "field 'targets'"),
        ("manifest method=3", "field 'method': expected a name"),
        ("manifest config=[]", "field 'config': expected an object"),
        ("manifest samples=[]", "field 'samples': expected an object"),
        ('manifest samples={"targets": [1]}', "field 'samples.targets': expected an object"),
        ('manifest history={"a": 1}', "field 'history': expected a list"),
        ("manifest seed=true", "field 'seed'"),
        ("deep json", r"not valid JSON \(RecursionError"),
    ],
)
def test_corrupt_directory_is_a_clear_error(fitted, tmp_path, how, message):
    folder = registry.save(fitted[0], tmp_path / "p", ManifestUpdate("pretrain"))
    _corrupt(folder, how)
    with pytest.raises(RegistryError, match=message) as error:
        registry.load(folder)
    assert str(folder) in str(error.value) and "\n" not in str(error.value)


def test_not_a_directory(tmp_path):
    with pytest.raises(RegistryError, match="no such predictor directory"):
        registry.load(tmp_path / "nothing")


def test_names_match_whole_strings_a_trailing_newline_is_refused() -> None:
    """Issue 13, class 7: ``$`` also matches before a final newline; names are matched with fullmatch."""
    from farm.device_records import DeviceRecordError, record_path
    from trainer.targets import parse_label
    from trainer.versions import VersionError, check_name

    assert parse_label("pixel2:torch:b1") == ("pixel2", "torch", 1, None) and parse_label("pixel2:torch:b1\n") is None
    assert check_name("target", "pixel2") == "pixel2"
    with pytest.raises(VersionError):
        check_name("target", "pixel2\n")
    with pytest.raises(DeviceRecordError):
        record_path("store", "pi4\n")
