"""trainer.workflow, the library API behind the CLI verbs, on a store imported from the real HELP table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from farm.errors import UserError
from trainer import registry, workflow
from trainer.data import load_table
from trainer.models.training import EpochProgress

SOURCES = ["1080ti_1", "pixel3", "gold_6226"]
TINY_MULTIPREDICT = {"epochs": 3, "gcn_hidden": [16], "gcn_head": [16]}


@pytest.fixture(scope="module")
def table(store_dir: Path):
    return load_table(store_dir, "nasbench201")


def test_pretrain_announces_archs_per_source_then_reports_every_epoch(table, tmp_path):
    lines: list[str] = []
    epochs: list[EpochProgress] = []

    def hook(progress: EpochProgress) -> None:
        assert lines, "the archs-per-source line comes before training starts"
        epochs.append(progress)

    result = workflow.pretrain(table, SOURCES, method="multipredict", source_samples=40, seed=1,
                               hyper=TINY_MULTIPREDICT, progress=hook, say=lines.append)
    assert lines == ["pretrain multipredict on 3 source(s) of nasbench201, 40 archs each "
                     "(the same seeded archs for every source)"]
    assert [(p.epoch, p.epochs, p.finished) for p in epochs] == [(1, 3, False), (2, 3, False), (3, 3, False), (3, 3, True)]
    assert result.archs_per_source == {name: 40 for name in SOURCES} and result.sources == SOURCES
    assert result.seconds > 0 and set(result.fit) <= set(SOURCES)
    described = json.loads(json.dumps(result.to_dict()))
    assert described["action"] == "pretrain" and described["archs_per_source"]["pixel3"] == 40

    folder = workflow.save(result, tmp_path / "pred")
    manifest = registry.read_manifest(folder)
    assert manifest["sources"] == SOURCES and manifest["samples"]["sources"] == result.archs_per_source


def test_transfer_then_predict_match_a_reloaded_predictor(table, tmp_path):
    base = workflow.save(workflow.pretrain(table, SOURCES, method="layerwise", source_samples=50, progress=False),
                         tmp_path / "base")
    predictor, manifest = registry.load(base)
    adapted = workflow.transfer(predictor, table, "pixel2", manifest=manifest)
    assert (adapted.target, adapted.samples) == ("pixel2", 20) and -1 <= adapted.fit["spearman"] <= 1
    folder = workflow.save(adapted, tmp_path / "adapted")
    reloaded, saved = registry.load(folder)
    assert saved["targets"] == ["pixel2"] and [e["action"] for e in saved["history"]] == ["pretrain", "transfer"]
    assert workflow.predict_target(reloaded, saved) == "pixel2"
    archs = table.archs("raspi4")[:25]
    np.testing.assert_array_equal(workflow.predict(reloaded, archs, "pixel2"), workflow.predict(adapted.predictor, archs, "pixel2"))


def test_transfer_refuses_a_source_and_a_target_with_too_few_rows(table, tmp_path):
    result = workflow.pretrain(table, SOURCES, method="layerwise", progress=False)
    predictor, manifest = registry.load(workflow.save(result, tmp_path / "p"))
    with pytest.raises(UserError, match="one of the predictor's sources"):
        workflow.transfer(predictor, table, "pixel3", manifest=manifest)
    with pytest.raises(UserError, match="unknown device or target"):
        workflow.transfer(predictor, table, "nokia3310", manifest=manifest)


def test_preset_sample_counts_are_capped_at_the_shared_archs_explicit_ones_are_not(table):
    lines: list[str] = []
    result = workflow.pretrain(table, SOURCES, method="flops", source_samples=900, cap_source_samples=True,
                               progress=False, say=lines.append)
    assert lines == ["pretrain flops on 3 source(s) of nasbench201, 300 archs each (the 900 asked for, lowered to the "
                     "archs the sources share)"]
    assert result.archs_per_source == {name: 300 for name in SOURCES}
    assert workflow.capped_source_samples(table, SOURCES, 900) == 300
    with pytest.raises(UserError, match="share only 300"):
        workflow.pretrain(table, SOURCES, method="layerwise", source_samples=900, progress=False)


def test_sample_is_deterministic_and_reads_no_latencies():
    first = workflow.sample("nasbench201", 5, seed=2)
    assert first == workflow.sample("nasbench201", 5, seed=2) and len(set(first)) == 5
    pool = first + workflow.sample("nasbench201", 5, seed=3)
    assert set(workflow.sample("nasbench201", 3, sampler="random", candidates=pool)) <= set(pool)
