"""Few-shot evaluation: metrics, the test set, the sampler's blindness to latencies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from farm.errors import UserError
from trainer.data import TargetTable, load_table
from trainer.evaluate import TASKS, Metrics, evaluate_method


def test_metrics_on_known_vectors():
    measured = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = Metrics.compute(measured, measured)
    assert (perfect.spearman, perfect.kendall, perfect.within_5, perfect.within_10) == (1.0, 1.0, 1.0, 1.0)
    off_by_7 = Metrics.compute(measured * 1.07, measured)
    assert off_by_7.spearman == 1.0 and off_by_7.within_5 == 0.0 and off_by_7.within_10 == 1.0
    reversed_ = Metrics.compute(measured[::-1], measured)
    assert reversed_.spearman == -1.0 and reversed_.kendall == -1.0
    assert Metrics.compute(np.ones(4), measured).spearman == 0.0  # constant prediction: no ranking


@pytest.fixture(scope="module")
def table(store_dir) -> TargetTable:
    return load_table(store_dir, "nasbench201")


def test_runs_cover_every_target_and_seed_and_test_on_the_rest(table, tmp_path):
    result = evaluate_method(table, "nasbench201", ["1080ti_1", "pixel3"], ["raspi4", "gold_6226"], samples=15,
                             seeds=(0, 1, 2), method="flops", plots_dir=tmp_path)
    assert [(r.target, r.seed) for r in result.runs] == [(t, s) for s in (0, 1, 2) for t in ("raspi4", "gold_6226")]
    assert all(r.metrics.n == 300 - 15 and len(r.samples) == 15 for r in result.runs)
    assert result.runs[0].samples != result.runs[2].samples  # another seed, other samples
    per_target = result.per_target()
    assert per_target["raspi4"].spearman == pytest.approx(np.mean([r.metrics.spearman for r in result.runs if r.target == "raspi4"]))
    assert result.mean().spearman == pytest.approx(np.mean([m.spearman for m in per_target.values()]))
    json.dumps(result.to_dict())
    assert "mean" in result.summary()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gold_6226.png", "raspi4.png"]


def test_samples_do_not_depend_on_target_latencies(table):
    """Shuffle the target's latencies: the sampler picks the same archs (it sees arch strings only)."""
    shuffled = table.latencies.copy()
    values = shuffled["raspi4"].dropna()
    shuffled.loc[values.index, "raspi4"] = np.random.default_rng(0).permutation(values.to_numpy())
    other = TargetTable(table.space, shuffled, table.keys, table.origin)
    for sampler in ("cosine", "kmeans", "random"):
        a = evaluate_method(table, "nasbench201", ["pixel3"], ["raspi4"], samples=10, seeds=(1,), method="layerwise", sampler=sampler)
        b = evaluate_method(other, "nasbench201", ["pixel3"], ["raspi4"], samples=10, seeds=(1,), method="layerwise", sampler=sampler)
        assert a.runs[0].samples == b.runs[0].samples


def test_layerwise_beats_flops_on_the_real_slice(table):
    kwargs = dict(samples=20, seeds=(0, 1))
    flops = evaluate_method(table, "nasbench201", ["pixel3"], ["raspi4", "gold_6226"], method="flops", **kwargs)
    layerwise = evaluate_method(table, "nasbench201", ["pixel3"], ["raspi4", "gold_6226"], method="layerwise", **kwargs)
    assert layerwise.mean().spearman > flops.mean().spearman


def test_bad_requests_are_user_errors(table):
    with pytest.raises(UserError, match="also among --sources"):
        evaluate_method(table, "nasbench201", ["raspi4"], ["raspi4"], method="flops")
    with pytest.raises(UserError, match="too few for 299 samples"):
        evaluate_method(table, "nasbench201", ["pixel3"], ["raspi4"], samples=299, method="flops")
    with pytest.raises(UserError, match="needs at least 2 target samples"):
        evaluate_method(table, "nasbench201", ["pixel3"], ["raspi4"], samples=1, method="flops")
    with pytest.raises(UserError, match="unknown device or target 'tpu'"):
        evaluate_method(table, "nasbench201", ["tpu"], ["raspi4"], method="flops")


def test_tasks_match_the_issue():
    assert TASKS["ND"].targets == ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")
    assert "1080ti_64" in TASKS["FD"].sources and "1080ti_256" not in TASKS["FD"].sources
    assert TASKS["FD"].targets == ("fpga", "raspi4", "eyeriss") and len(TASKS["FD"].sources) == 9
