"""loop.correlation: known devices ranked by Spearman against a new device's samples (real HELP rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy import stats

from loop.correlation import MIN_COMMON, most_correlated
from tests.loop.help_subset import SPACE, subset_archs
from trainer.data import TargetTable

DEVICES = ["pixel2", "pixel3", "1080ti_1", "gold_6226"]


def test_ranking_matches_scipy_and_skips_excluded_and_sparse_targets(help_table_path: Path) -> None:
    archs = subset_archs(40)
    frame = pd.read_parquet(help_table_path, filters=[("search_space", "=", SPACE), ("device", "in", DEVICES)])
    frame = frame[frame["arch"].isin(archs)]
    sparse = frame[frame["device"] == "pixel2"].head(MIN_COMMON - 1).assign(device="sparse")
    table = TargetTable.from_long(pd.concat([frame, sparse]), SPACE)
    samples = table.series("pixel3").iloc[:20]
    found = most_correlated(table, samples, exclude=["pixel3"])
    assert [c.target for c in found] and "pixel3" not in [c.target for c in found] and "sparse" not in [c.target for c in found]
    rhos = [c.estimate.rho for c in found]
    assert rhos == sorted(rhos, reverse=True)
    first = found[0]
    expected = stats.spearmanr(samples, table.latencies[first.target].loc[samples.index]).statistic
    assert abs(first.estimate.rho - expected) < 1e-12 and first.estimate.n == 20
    assert len(most_correlated(table, samples, exclude=["pixel3"], top=2)) == 2
