"""loop.crossval: expected Spearman from k-fold cross-validation (real HELP latencies, layerwise)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy import stats

from loop.crossval import cross_validate
from tests.loop.help_subset import SPACE, subset_archs
from trainer.models import get_method


def test_pooled_out_of_fold_spearman(help_table_path: Path) -> None:
    archs = subset_archs(20)
    frame = pd.read_parquet(help_table_path, filters=[("search_space", "=", SPACE), ("device", "=", "pixel3")])
    samples = frame.set_index("arch")["latency_ms"].loc[archs]
    base = get_method("layerwise")(SPACE)
    result = cross_validate(base, "pixel3", samples, folds=5, seed=0)
    assert result.folds == 5 and len(result.per_fold) == 5 and result.pooled.n == 20
    assert 0.5 < result.pooled.rho <= 1 and result.pooled.low <= result.pooled.rho <= result.pooled.high
    assert base.targets() == []  # every fold transferred a copy, never the base
    assert cross_validate(base, "pixel3", samples, folds=5, seed=0).pooled == result.pooled


def test_too_few_samples_give_no_estimate() -> None:
    samples = pd.Series([1.0, 2.0, 3.0], index=subset_archs(3))
    result = cross_validate(get_method("layerwise")(SPACE), "t", samples)
    assert result.folds == 0 and result.pooled.n == 3


def test_noise_gives_a_low_estimate(help_table_path: Path) -> None:
    archs = subset_archs(30)
    noise = pd.Series(range(30), index=archs, dtype="float64").sample(frac=1.0, random_state=0)
    noise.index = archs
    result = cross_validate(get_method("layerwise")(SPACE), "noise", noise, folds=5)
    assert result.pooled.rho < 0.6
    assert stats.spearmanr(range(30), noise).statistic < 0.6
