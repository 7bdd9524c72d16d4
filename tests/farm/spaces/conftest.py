"""Fixtures for the search-space tests: the public HELP latency table, per space and device."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch


@pytest.fixture(scope="session")
def help_latencies(help_table_path: Path) -> Callable[[str, str], pd.DataFrame]:
    """``help_latencies(space, device)`` -> rows (arch_index, arch, latency_ms) sorted by arch_index."""
    if not help_table_path.is_file():
        pytest.skip(f"{help_table_path} not found")
    cache: dict[tuple[str, str], pd.DataFrame] = {}

    def load(space: str, device: str) -> pd.DataFrame:
        if (space, device) not in cache:
            table = pd.read_parquet(
                help_table_path,
                columns=["arch_index", "arch", "latency_ms"],
                filters=[("search_space", "==", space), ("device", "==", device)],
            )
            cache[space, device] = table.sort_values("arch_index").reset_index(drop=True)
        return cache[space, device]

    return load


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run these tests on one intra-op thread (restored after): on a shared 2-core machine,
    two threads spinning against other processes' work made forward passes ~5x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
