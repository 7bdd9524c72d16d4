"""Test stores built by importing a small slice of the real HELP table (``farm import``).

The slice: 300 NAS-Bench-201 archs (``space.sample(300, seed=1)``) on three
source devices and one evaluation target (``raspi4``); the "new device"
``pixel2`` has only 20 of those archs in the store, as after measuring the
archs a sampler named.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from farm import spaces
from farm.importer import import_table

SOURCES = ("1080ti_1", "pixel3", "gold_6226")
EVAL_TARGET = "raspi4"
NEW_DEVICE = "pixel2"
N_ARCHS = 300
NEW_DEVICE_SAMPLES = 20


@pytest.fixture(scope="session")
def nb201_slice(help_table_path: Path) -> pd.DataFrame:
    """HELP rows of 300 NB201 archs on the source devices, ``raspi4`` and ``pixel2``."""
    archs = spaces.get("nasbench201").sample(N_ARCHS, seed=1)
    frame = pd.read_parquet(
        help_table_path,
        filters=[("search_space", "=", "nasbench201"), ("device", "in", [*SOURCES, EVAL_TARGET, NEW_DEVICE])],
    )
    return frame[frame["arch"].isin(archs)].reset_index(drop=True)


def write_and_import(frame: pd.DataFrame, folder: Path, name: str, store: Path) -> int:
    """Write ``frame`` as ``folder/name`` and import it into ``store``."""
    path = folder / name
    frame.to_parquet(path)
    return import_table(path, store)


@pytest.fixture(scope="session")
def store_without_new_device(nb201_slice: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sources and ``raspi4`` only: no row of ``pixel2`` at all."""
    folder = tmp_path_factory.mktemp("store_a")
    write_and_import(nb201_slice[nb201_slice["device"] != NEW_DEVICE], folder, "sources.parquet", folder / "store")
    return folder / "store"


@pytest.fixture(scope="session")
def store_dir(nb201_slice: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sources, ``raspi4`` (300 archs) and ``pixel2`` with 20 archs."""
    folder = tmp_path_factory.mktemp("store_b")
    store = folder / "store"
    write_and_import(nb201_slice[nb201_slice["device"] != NEW_DEVICE], folder, "sources.parquet", store)
    new_rows = nb201_slice[nb201_slice["device"] == NEW_DEVICE].sort_values("arch").head(NEW_DEVICE_SAMPLES)
    write_and_import(new_rows, folder, "pixel2.parquet", store)
    return store
