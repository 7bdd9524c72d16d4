"""The versioned registry on real predictor directories (flops predictors fitted on HELP rows)."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from tests.trainer.registry_fixtures import SPACE, latencies, saved_predictor
from trainer import registry
from trainer.versions import BASE, CURRENT, HISTORY, PredictorRegistry, VersionError

TARGET = "raspi4"


@pytest.fixture()
def samples(nb201_slice):
    return latencies(nb201_slice, TARGET)


def add(reg: PredictorRegistry, tmp_path: Path, samples, n: int, name: str) -> int:
    return reg.add(SPACE, TARGET, saved_predictor(tmp_path / name, TARGET, samples.iloc[:n]), metrics={"n": n}).number


def test_add_numbers_versions_and_promote_switches_current(tmp_path, samples):
    reg = PredictorRegistry(tmp_path / "registry")
    assert reg.current(SPACE, TARGET) is None and reg.versions(SPACE, TARGET) == [] and reg.entries() == []
    source = saved_predictor(tmp_path / "a", TARGET, samples.iloc[:20])
    first = reg.add(SPACE, TARGET, source, metrics={"spearman": 0.9}, note="first")
    assert not source.exists(), "add moves the directory"
    assert (first.number, first.note, first.metrics) == (1, "first", {"spearman": 0.9})
    assert first.summary["method"] == "flops" and first.summary["targets"] == [TARGET]
    assert reg.current(SPACE, TARGET) is None, "added, not promoted"

    reg.promote(SPACE, TARGET, 1, reason="first version")
    second = add(reg, tmp_path, samples, 40, "b")
    assert second == 2 and reg.current(SPACE, TARGET).number == 1
    reg.promote(SPACE, TARGET, 2, reason="better")

    folder = reg.folder(SPACE, TARGET)
    assert os.readlink(folder / CURRENT) == "v2", "a relative symlink, so the registry can move"
    predictor, manifest = registry.load(folder / CURRENT)
    assert manifest["samples"]["targets"] == {TARGET: 40} and TARGET in predictor.targets()
    assert [v.number for v in reg.versions(SPACE, TARGET)] == [1, 2]
    assert reg.entries() == [(SPACE, TARGET)]
    actions = [(e["action"], e["version"]) for e in reg.history(SPACE, TARGET)]
    assert actions == [("add", 1), ("promote", 1), ("add", 2), ("promote", 2)]
    assert reg.history(SPACE, TARGET)[-1]["previous"] == 1 and reg.history(SPACE, TARGET)[-1]["reason"] == "better"


def test_add_refuses_a_predictor_that_did_not_exclude_the_held_out_slice(tmp_path, samples):
    reg = PredictorRegistry(tmp_path / "registry")
    plain = saved_predictor(tmp_path / "plain", TARGET, samples.iloc[:20], marked=False)
    with pytest.raises(VersionError, match="does not record excluding the held-out slice"):
        reg.add(SPACE, TARGET, plain)
    assert plain.is_dir() and reg.versions(SPACE, TARGET) == [], "a refused predictor stays where it was"
    with pytest.raises(VersionError, match="space 'nasbench201', not 'fbnet'"):
        reg.add("fbnet", TARGET, saved_predictor(tmp_path / "b", TARGET, samples.iloc[:20]))


def test_add_refuses_a_corrupt_predictor(tmp_path, samples):
    folder = saved_predictor(tmp_path / "a", TARGET, samples.iloc[:20])
    (folder / registry.WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(registry.RegistryError, match="checksum"):
        PredictorRegistry(tmp_path / "registry").add(SPACE, TARGET, folder)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "-flag", ""])
def test_names_that_are_not_one_safe_path_component_are_refused(tmp_path, name):
    with pytest.raises(VersionError, match="not a valid name"):
        PredictorRegistry(tmp_path).versions(SPACE, name)


def test_rollback_goes_to_the_newest_older_version_that_was_current(tmp_path, samples):
    reg = PredictorRegistry(tmp_path / "registry")
    with pytest.raises(VersionError, match="nothing is current"):
        reg.rollback(SPACE, TARGET)
    for number, n in enumerate((10, 20, 30, 40), start=1):
        assert add(reg, tmp_path, samples, n, f"p{n}") == number
    reg.promote(SPACE, TARGET, 1, reason="first")
    reg.promote(SPACE, TARGET, 2, reason="better")
    reg.promote(SPACE, TARGET, 4, reason="better")  # v3 was a refused candidate: never current
    assert reg.rollback(SPACE, TARGET).number == 2
    assert reg.rollback(SPACE, TARGET).number == 1
    with pytest.raises(VersionError, match="no version older than v1 was ever current"):
        reg.rollback(SPACE, TARGET)
    assert reg.rollback(SPACE, TARGET, to=3).number == 3
    with pytest.raises(VersionError, match="no version v9"):
        reg.rollback(SPACE, TARGET, to=9)
    last = reg.history(SPACE, TARGET)[-1]
    assert (last["action"], last["version"], last["previous"]) == ("rollback", 3, 1)


def test_history_skips_a_torn_last_line_and_a_leftover_temporary_pointer_changes_nothing(tmp_path, samples):
    reg = PredictorRegistry(tmp_path / "registry")
    add(reg, tmp_path, samples, 20, "a")
    reg.promote(SPACE, TARGET, 1, reason="first")
    folder = reg.folder(SPACE, TARGET)
    with open(folder / HISTORY, "a") as handle:
        handle.write('{"action": "prom')  # a writer killed mid-line
    os.symlink("v7", folder / ".current.tmp-deadbeef")  # a writer killed before its os.replace
    assert [e["action"] for e in reg.history(SPACE, TARGET)] == ["add", "promote"]
    assert reg.current(SPACE, TARGET).number == 1 and reg.entries() == [(SPACE, TARGET)]


def test_the_base_predictor_is_a_target_like_any_other(tmp_path, samples):
    reg = PredictorRegistry(tmp_path / "registry")
    number = reg.add(SPACE, BASE, saved_predictor(tmp_path / "base", TARGET, samples.iloc[:20])).number
    reg.promote(SPACE, BASE, number, reason="first")
    assert reg.entries() == [(SPACE, BASE)] and reg.current(SPACE, BASE).path.name == "v1"


def _add_three(root: str, folders: list[str]) -> list[int]:
    reg = PredictorRegistry(root)
    return [reg.add(SPACE, TARGET, Path(f)).number for f in folders]


def test_concurrent_writers_never_share_a_version_number(tmp_path, samples):
    folders = [str(saved_predictor(tmp_path / f"p{i}", TARGET, samples.iloc[: 10 + i])) for i in range(6)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        numbers = pool.starmap(_add_three, [(str(tmp_path / "registry"), folders[:3]), (str(tmp_path / "registry"), folders[3:])])
    assert sorted(numbers[0] + numbers[1]) == [1, 2, 3, 4, 5, 6]
    records = [json.loads((v.path / "version.json").read_text())["version"] for v in PredictorRegistry(tmp_path / "registry").versions(SPACE, TARGET)]
    assert records == [1, 2, 3, 4, 5, 6]
