"""``trainer registry list|show|rollback``, ``trainer evaluate --predictor`` through the real parser."""

from __future__ import annotations

import json

import pytest

from tests.trainer.registry_fixtures import SPACE, latencies, saved_predictor
from tests.trainer.test_cli import run
from trainer import holdout
from trainer.versions import PredictorRegistry

TARGET = "raspi4"


@pytest.fixture()
def registry_dir(nb201_slice, tmp_path):
    """raspi4 with v1 (current before), v2 (current), v3 (refused), trained on trainable rows only."""
    trainable, _ = holdout.split(latencies(nb201_slice, TARGET), SPACE)
    reg = PredictorRegistry(tmp_path / "registry")
    for number, n in enumerate((5, 40, 60), start=1):
        reg.add(SPACE, TARGET, saved_predictor(tmp_path / f"p{n}", TARGET, trainable.iloc[:n]), note=f"{n} rows")
    reg.promote(SPACE, TARGET, 1, reason="first")
    reg.promote(SPACE, TARGET, 2, reason="better")
    reg.record(SPACE, TARGET, {"action": "refuse", "version": 3, "reason": "not better"})
    return tmp_path / "registry"


def test_rollback_and_its_json(capsys, registry_dir):
    code, out, _ = run(capsys, "registry", "rollback", TARGET, "--registry", str(registry_dir), "--json")
    data = json.loads(out)
    assert code == 0 and (data["previous"], data["current"]["version"], data["space"]) == (2, 1, SPACE)
    assert PredictorRegistry(registry_dir).current(SPACE, TARGET).number == 1
    code, out, _ = run(capsys, "registry", "rollback", TARGET, "--to", "v3", "--registry", str(registry_dir))
    assert code == 0 and out.strip() == f"{SPACE}/{TARGET}: current is now v3 (was v1)"
    code, _, err = run(capsys, "registry", "rollback", TARGET, "--to", "v9", "--registry", str(registry_dir))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no version v9" in err and "versions: v1, v2, v3" in err


def test_list_and_show(capsys, registry_dir):
    code, out, _ = run(capsys, "registry", "list", "--registry", str(registry_dir), "--json")
    entries = json.loads(out)["entries"]
    assert code == 0 and [(e["space"], e["target"], e["versions"], e["current"]["version"]) for e in entries] == [(SPACE, TARGET, 3, 2)]
    code, out, _ = run(capsys, "registry", "list", TARGET, "--registry", str(registry_dir))
    lines = out.splitlines()
    assert code == 0 and [line[:4] for line in lines] == ["  v1", "* v2", "  v3"], out
    assert "40 rows" in lines[1] and "held-out Spearman" not in lines[1], "added without metrics: none shown"
    code, out, _ = run(capsys, "registry", "show", TARGET, "--registry", str(registry_dir), "--json")
    shown = json.loads(out)
    assert shown["current"]["version"] == 2 and shown["history"][-1]["action"] == "refuse"
    code, _, err = run(capsys, "registry", "show", "nosuch", "--registry", str(registry_dir))
    assert code == 2 and f"registered: {SPACE}/{TARGET}" in err


def test_evaluate_predictor_scores_the_held_out_slice(capsys, registry_dir, store_dir):
    # store_dir (tests/trainer/conftest.py) holds raspi4's 300 archs: ~30 of them held out.
    current = registry_dir / SPACE / TARGET / "current"
    code, out, _ = run(capsys, "evaluate", "--predictor", str(current), "--store", str(store_dir), "--json")
    data = json.loads(out)
    score = data["targets"][TARGET]
    assert code == 0 and data["holdout"]["excluded_in_training"] and data["holdout"]["version"] == holdout.VERSION
    assert 20 <= score["n"] <= 45 and 0.0 < score["spearman"] <= 1.0 and len(score["spearman_ci95"]) == 2
    code, out, _ = run(capsys, "evaluate", "--predictor", str(current), "--store", str(store_dir), "--target", TARGET)
    assert code == 0 and out.splitlines()[1].startswith(TARGET) and "Spearman" in out
    code, _, err = run(capsys, "evaluate", "--predictor", str(current), "--store", str(store_dir), "--target", "pixel3")
    assert code == 2 and "unknown to the predictor" in err


def test_evaluate_warns_about_a_predictor_that_may_have_trained_on_the_slice(capsys, nb201_slice, store_dir, tmp_path):
    plain = saved_predictor(tmp_path / "plain", TARGET, latencies(nb201_slice, TARGET), marked=False)
    code, out, _ = run(capsys, "evaluate", "--predictor", str(plain), "--store", str(store_dir))
    assert code == 0 and "warning:" in out and "scores can be optimistic" in out
