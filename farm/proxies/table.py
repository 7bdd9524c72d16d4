"""The ``encodings`` Parquet table: one row per (space, arch, proxy, input spec, version), next to the measurements.

It lives in ``<store>/_encodings/``, hive-partitioned by ``space``::

    measurements/_encodings/space=nasbench201/part-<utc>-<uuid>.parquet

The leading underscore keeps it out of the measurement dataset: the store's
reader ignores ``_`` folders (as it does ``_campaigns``), while a plain
``encodings/`` folder would be read as measurement rows without a status.
Writes are append-only and atomic through the store's own writer
(``farm.store.write_part_file``: a dot-prefixed temporary file, fsync,
rename), so a crash never leaves half a file and no file is ever rewritten.

Columns:

| column | type | meaning |
| --- | --- | --- |
| arch | string | canonical arch string |
| proxy | string | proxy name (``farm.proxies.NAMES``) |
| value | float64, nullable | the proxy's value; null unless ``status`` is ``ok`` |
| status | string | ``ok``; ``undefined`` (no finite value for this arch: not retried); ``failed`` (retried by a re-run) |
| error | string, nullable | why, when not ``ok`` |
| input_spec | string | :attr:`farm.proxies.inputs.InputSpec.key` |
| version | int32 | the proxy's definition version |
| computed_at | timestamp[us, UTC] | when the value was computed |
| host | string | the machine that computed it |
| torch_version, farm_version | string | provenance (initialisation draws depend on PyTorch) |
| space | string (partition) | search space |

Example:
    >>> import tempfile
    >>> table = EncodingsTable(tempfile.mkdtemp())
    >>> table.read().empty, table.root.name
    (True, '_encodings')
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from farm.store import StoreError, write_part_file

__all__ = ["DONE_STATUSES", "ENCODINGS_DIR", "EncodingsTable", "SCHEMA", "STATUSES"]

ENCODINGS_DIR = "_encodings"
STATUSES: tuple[str, ...] = ("ok", "undefined", "failed")
#: Outcomes a re-run keeps: ``failed`` ones are computed again.
DONE_STATUSES: tuple[str, ...] = ("ok", "undefined")

SCHEMA = pa.schema(
    [
        ("space", pa.string()),
        ("arch", pa.string()),
        ("proxy", pa.string()),
        ("value", pa.float64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("input_spec", pa.string()),
        ("version", pa.int32()),
        ("computed_at", pa.timestamp("us", tz="UTC")),
        ("host", pa.string()),
        ("torch_version", pa.string()),
        ("farm_version", pa.string()),
    ]
)
_NULLABLE = frozenset({"value", "error"})
_FILE_SCHEMA = pa.schema([field for field in SCHEMA if field.name != "space"])
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class EncodingsTable:
    """The encodings table of the store at ``store_root`` (see the module docstring)."""

    def __init__(self, store_root: str | os.PathLike[str]) -> None:
        self.root = Path(store_root) / ENCODINGS_DIR

    def files(self) -> list[Path]:
        """The committed Parquet files (temporary dot files excluded)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*.parquet") if not p.name.startswith((".", "_")))

    def append(self, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
        """Append ``rows`` as one new file per space; :class:`~farm.store.StoreError` names a bad row, writing nothing."""
        if not rows:
            return []
        frame = _conform(pd.DataFrame(list(rows)))
        tables = []
        for space, part in frame.groupby("space", sort=True):
            try:
                table = pa.Table.from_pandas(part.drop(columns=["space"]), schema=_FILE_SCHEMA, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                raise StoreError(f"encodings rows do not fit the schema: {error}") from error
            tables.append((self.root / f"space={space}", table))
        return [write_part_file(folder, table) for folder, table in tables]

    def read(self, space: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows as a pandas frame (all spaces, or one); :class:`~farm.store.StoreError` if a file cannot be read."""
        wanted = list(columns) if columns is not None else SCHEMA.names
        if not self.files():
            return pa.schema([SCHEMA.field(c) for c in wanted]).empty_table().to_pandas()
        dataset = ds.dataset(
            str(self.root),
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("space", pa.string())]), flavor="hive"),
            schema=SCHEMA,
            ignore_prefixes=[".", "_"],
        )
        expression = ds.field("space") == space if space is not None else None
        try:
            return dataset.to_table(columns=wanted, filter=expression).to_pandas()
        except (pa.ArrowInvalid, OSError) as error:
            raise StoreError(f"{self.root}: cannot read the encodings table: {error}") from error

    def done_keys(self, space: str, input_spec: str) -> set[tuple[str, str, int]]:
        """``(arch, proxy, version)`` already ``ok`` or ``undefined`` for ``space`` and ``input_spec``."""
        frame = self.read(space, columns=["arch", "proxy", "version", "status", "input_spec"])
        frame = frame[(frame["input_spec"] == input_spec) & frame["status"].isin(DONE_STATUSES)]
        return set(zip(frame["arch"], frame["proxy"], frame["version"].astype(int)))


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    unknown = sorted(set(frame.columns) - set(SCHEMA.names))
    if unknown:
        raise StoreError(f"encodings: unknown column(s) {', '.join(unknown)}; columns: {', '.join(SCHEMA.names)}")
    for name in SCHEMA.names:
        if name not in frame.columns:
            if name not in _NULLABLE:
                raise StoreError(f"encodings: missing column {name!r}: every row needs it")
            frame[name] = None
        elif name not in _NULLABLE and frame[name].isna().any():
            raise StoreError(f"encodings: column {name!r} is empty in {int(frame[name].isna().sum())} row(s)")
    bad_status = sorted(set(frame["status"]) - set(STATUSES))
    if bad_status:
        raise StoreError(f"encodings: status {bad_status[0]!r} is not one of {', '.join(STATUSES)}")
    ok = frame["status"] == "ok"
    if any(value is None or not math.isfinite(float(value)) for value in frame.loc[ok, "value"]):
        raise StoreError("encodings: an ok row needs a finite value")
    if frame.loc[~ok, "value"].notna().any():
        raise StoreError("encodings: only ok rows carry a value")
    bad_space = [s for s in frame["space"].unique() if not _SLUG.fullmatch(str(s))]
    if bad_space:
        raise StoreError(f"encodings: space {bad_space[0]!r} is not slug-like (letters, digits, . _ -)")
    frame["computed_at"] = pd.to_datetime(frame["computed_at"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    return frame[SCHEMA.names]
