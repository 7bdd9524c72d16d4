"""A small slice of the real HELP NAS-Bench-201 latencies for the neural-predictor tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from farm import spaces

DEVICES = ("1080ti_1", "pixel3", "silver_4114", "raspi4", "gold_6226")


@pytest.fixture(scope="session")
def nb201_latency(help_table_path: Path) -> pd.DataFrame:
    """[240 archs x 5 devices] latency (ms) of archs drawn with ``space.sample(240, seed=3)``."""
    archs = spaces.get("nasbench201").sample(240, seed=3)
    frame = pd.read_parquet(
        help_table_path,
        columns=["arch", "device", "latency_ms"],
        filters=[("search_space", "=", "nasbench201"), ("device", "in", list(DEVICES))],
    )
    table = frame[frame["arch"].isin(archs)].pivot(index="arch", columns="device", values="latency_ms")
    return table.loc[archs, list(DEVICES)]
