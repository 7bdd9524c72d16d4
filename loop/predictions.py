"""The predictions table: one Parquet file per (space, target, predictor version), written atomically.

Layout (hive-style, so ``pyarrow.dataset`` reads a whole folder as one table)::

    predictions/space=nasbench201/target=pixel7/20261123T140201Z-v3.parquet

Columns ``arch`` (canonical string) and ``predicted_ms`` (float64); the file's
schema metadata (keys ``latfarm.*``) says which predictor made it: space,
target, registry version, method, the predictor directory, creation time.
:func:`latest` finds the newest file of a target.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> path = write_predictions(root, PredictionInfo("nasbench201", "pixel7", 3, "layerwise", "registry/v3"),
    ...                          ["a", "b"], [1.5, 2.5])
    >>> read_predictions(path)[1]["version"], latest(root, "nasbench201", "pixel7") == path
    ('3', True)
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from farm.atomic import write_atomic

_METADATA_PREFIX = "latfarm."
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


@dataclass(frozen=True)
class PredictionInfo:
    """What the metadata of a predictions file records."""

    space: str
    target: str
    version: int
    method: str
    predictor: str
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


def folder_of(root: str | os.PathLike[str], space: str, target: str) -> Path:
    """``root/space=<space>/target=<target>`` (characters a path should not hold become ``_``)."""
    return Path(root) / f"space={_UNSAFE.sub('_', space)}" / f"target={_UNSAFE.sub('_', target)}"


def write_predictions(
    root: str | os.PathLike[str], info: PredictionInfo, archs: Sequence[str], predicted_ms: Sequence[float] | np.ndarray
) -> Path:
    """Write one predictions file under ``root`` and return its path."""
    values = np.asarray(predicted_ms, dtype="float64")
    if len(archs) != len(values):
        raise ValueError(f"{len(archs)} archs but {len(values)} predictions")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder_of(root, info.space, info.target) / f"{stamp}-v{info.version}.parquet"
    table = pa.table({"arch": pa.array(list(archs), pa.string()), "predicted_ms": pa.array(values, pa.float64())})
    metadata = {f"{_METADATA_PREFIX}{k}".encode(): str(v).encode() for k, v in asdict(info).items()}
    table = table.replace_schema_metadata(metadata)
    return write_atomic(path, lambda handle: pq.write_table(table, handle))


def read_predictions(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """(frame with arch and predicted_ms, metadata without the ``latfarm.`` prefix)."""
    table = pq.read_table(path)
    metadata = {k.decode()[len(_METADATA_PREFIX):]: v.decode() for k, v in (table.schema.metadata or {}).items()
                if k.decode().startswith(_METADATA_PREFIX)}
    return table.to_pandas(), metadata


def latest(root: str | os.PathLike[str], space: str, target: str) -> Path | None:
    """The newest predictions file of a target (file names start with a UTC timestamp), or None."""
    files = sorted(p for p in folder_of(root, space, target).glob("*.parquet") if not p.name.startswith("."))
    return files[-1] if files else None


__all__ = ["PredictionInfo", "folder_of", "latest", "read_predictions", "write_predictions"]
