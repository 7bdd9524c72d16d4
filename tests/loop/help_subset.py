"""A small slice of the real HELP table for the loop tests (not a test module).

``write_subset`` writes the NB201 rows of a few HELP devices on a fixed set of
archs to a Parquet file, the shape ``farm import`` and replay devices read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from farm import spaces
from trainer import holdout

SPACE = "nasbench201"


def subset_archs(n_trainable: int, n_held_out: int = 0, seed: int = 3) -> list[str]:
    """``n_trainable`` archs outside the held-out slice and ``n_held_out`` inside it, sorted."""
    pool = spaces.get(SPACE).sample(4000, seed=seed)
    trainable = [a for a in pool if not holdout.is_held_out(SPACE, a)][:n_trainable]
    held = [a for a in pool if holdout.is_held_out(SPACE, a)][:n_held_out]
    return sorted(trainable + held)


def write_subset(help_table: Path, path: Path, devices: Sequence[str], archs: Sequence[str] | None = None) -> Path:
    """NB201 rows of ``devices`` (on ``archs`` when given) of the HELP table, written to ``path``."""
    frame = pd.read_parquet(help_table, filters=[("search_space", "=", SPACE), ("device", "in", list(devices))])
    if archs is not None:
        frame = frame[frame["arch"].isin(set(archs))]
    frame.reset_index(drop=True).to_parquet(path)
    return path
