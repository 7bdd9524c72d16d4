"""The append-only Parquet latency store.

One row per measurement, in the schema of ``DESIGN.md``, hive-partitioned by
``search_space`` and ``device``::

    measurements/search_space=nasbench201/device=cpu-local/part-<utc>-<uuid>.parquet

Every :meth:`Store.append` writes new files only: each is written under a
dot-prefixed temporary name in its partition folder, flushed, then renamed
into place, so a reader (or a crash) never sees a half-written file and no
existing file is ever rewritten.

Example:
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> store.read().empty
    True
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

PARTITION_COLUMNS: tuple[str, ...] = ("search_space", "device")

#: The resume key: a key already ``ok`` in the store is not measured again.
RESUME_KEY: tuple[str, ...] = (
    "device",
    "runtime",
    "batch_size",
    "input_size",
    "search_space",
    "arch",
    "protocol",
)

SCHEMA = pa.schema(
    [
        ("measurement_id", pa.string()),
        ("campaign_id", pa.string()),
        ("measured_at", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("device", pa.string()),
        ("device_kind", pa.string()),
        ("platform", pa.string()),
        ("runtime", pa.string()),
        ("search_space", pa.string()),
        ("arch", pa.string()),
        ("batch_size", pa.int32()),
        ("input_size", pa.int32()),
        ("threads", pa.int32()),
        ("protocol", pa.string()),
        ("warmup_runs", pa.int32()),
        ("runs", pa.int32()),
        ("trim", pa.float32()),
        ("latency_ms", pa.float64()),
        ("median_ms", pa.float64()),
        ("std_ms", pa.float64()),
        ("min_ms", pa.float64()),
        ("max_ms", pa.float64()),
        ("cv", pa.float64()),
        ("ci_low_ms", pa.float64()),
        ("ci_high_ms", pa.float64()),
        ("samples_ms", pa.list_(pa.float32())),
        ("temperature_start_c", pa.float32()),
        ("temperature_end_c", pa.float32()),
        ("cpu_freq_start_mhz", pa.float32()),
        ("cpu_freq_end_mhz", pa.float32()),
        ("governor", pa.string()),
        ("telemetry_dropped", pa.string()),
        ("job_id", pa.string()),
        ("anchor_ms", pa.float64()),
        ("is_anchor", pa.bool_()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("host", pa.string()),
        ("farm_version", pa.string()),
    ]
)

#: Columns a row may leave out: they are filled with null.
NULLABLE: frozenset[str] = frozenset(
    {
        "platform",
        "threads",
        "latency_ms",
        "median_ms",
        "std_ms",
        "min_ms",
        "max_ms",
        "cv",
        "ci_low_ms",
        "ci_high_ms",
        "samples_ms",
        "temperature_start_c",
        "temperature_end_c",
        "cpu_freq_start_mhz",
        "cpu_freq_end_mhz",
        "governor",
        "telemetry_dropped",
        "job_id",
        "anchor_ms",
        "is_anchor",
        "error",
        "warmup_runs",
        "runs",
        "trim",
    }
)

_FILE_SCHEMA = pa.schema([f for f in SCHEMA if f.name not in PARTITION_COLUMNS])
_PARTITION_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StoreError(ValueError):
    """Rows that do not fit the schema, or a store that cannot be read."""


def new_measurement_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """A Parquet dataset rooted at ``root``. Appends new files; never rewrites one."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # ----------------------------------------------------------------- write
    def append(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> list[Path]:
        """Append ``rows`` (one file per partition) and return the new files.

        Raises :class:`StoreError` naming the column when a row misses a
        required field, has a value of the wrong type, or a partition value is
        not slug-like. Every partition's rows are converted before anything is
        written, so a bad row writes nothing. Naive ``measured_at`` values are
        taken as UTC.
        """
        frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        if frame.empty:
            return []
        frame = _conform(frame)
        tables: list[tuple[Path, pa.Table]] = []
        for (space, device), part in frame.groupby(list(PARTITION_COLUMNS), sort=True):
            try:
                table = pa.Table.from_pandas(
                    part.drop(columns=list(PARTITION_COLUMNS)), schema=_FILE_SCHEMA, preserve_index=False
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise StoreError(f"rows do not fit the schema (DESIGN.md): {_arrow_message(exc)}") from exc
            tables.append((self.root / f"search_space={space}" / f"device={device}", table))
        return [_write_new_file(folder, table) for folder, table in tables]

    # ------------------------------------------------------------------ read
    def files(self) -> list[Path]:
        """The committed Parquet files (temporary files excluded)."""
        if not self.root.exists():
            return []
        return sorted(p for p in self.root.rglob("*.parquet") if not p.name.startswith((".", "_")))

    def read(
        self,
        *,
        search_space: str | Iterable[str] | None = None,
        device: str | Iterable[str] | None = None,
        status: str | None = None,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Rows as a pandas frame, filtered by partition, status and column equality.

        ``where`` maps a column to a value or a list of values.

        Example:
            >>> import tempfile
            >>> Store(tempfile.mkdtemp()).read(search_space="fbnet", status="ok").shape[1] == len(SCHEMA)
            True
        """
        wanted = list(columns) if columns is not None else SCHEMA.names
        if not self.files():
            return _empty_frame(wanted)
        dataset = ds.dataset(
            str(self.root),
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([(c, pa.string()) for c in PARTITION_COLUMNS]), flavor="hive"
            ),
            schema=SCHEMA,
            ignore_prefixes=[".", "_"],
        )
        conditions: dict[str, Any] = dict(where or {})
        if search_space is not None:
            conditions["search_space"] = search_space
        if device is not None:
            conditions["device"] = device
        if status is not None:
            conditions["status"] = status
        expression = None
        for column, value in conditions.items():
            if column not in SCHEMA.names:
                raise StoreError(f"unknown column {column!r} in filter; columns: {', '.join(SCHEMA.names)}")
            term = ds.field(column).isin(_filter_values(value))
            expression = term if expression is None else expression & term
        try:
            table = dataset.to_table(columns=wanted, filter=expression)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"{self.root}: cannot read the store: {exc}") from exc
        return table.to_pandas()

    def done_keys(self, **filters: Any) -> set[tuple[Any, ...]]:
        """Resume keys (:data:`RESUME_KEY`) already measured with status ``ok``."""
        frame = self.read(status="ok", columns=list(RESUME_KEY), **filters)
        return set(zip(*(frame[column].tolist() for column in RESUME_KEY)))


def _write_new_file(folder: Path, table: pa.Table) -> Path:
    """Write ``table`` under a dot-prefixed name, fsync, rename into place, fsync the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    temporary = folder / f".tmp-{final.name}"
    with open(temporary, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def _arrow_message(exc: Exception) -> str:
    parts = exc.args if exc.args else (str(exc),)
    return "; ".join(str(part) for part in reversed(parts))


def _filter_values(value: Any) -> list[Any]:
    """A filter value as a list of plain Python values (a scalar, numpy scalar or collection)."""
    values = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
    return [v.item() if hasattr(v, "item") else v for v in values]


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pa.schema([SCHEMA.field(c) for c in columns]).empty_table().to_pandas()


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    unknown = sorted(set(frame.columns) - set(SCHEMA.names))
    if unknown:
        raise StoreError(f"unknown column(s) {', '.join(unknown)}; the schema is in DESIGN.md")
    for name in SCHEMA.names:
        if name not in frame.columns:
            if name == "measurement_id":
                frame[name] = [new_measurement_id() for _ in range(len(frame))]
            elif name in NULLABLE:
                frame[name] = None
            else:
                raise StoreError(f"missing column {name!r}: every row needs it")
        elif name not in NULLABLE and frame[name].isna().any():
            raise StoreError(f"column {name!r} is empty in {int(frame[name].isna().sum())} row(s)")
    for column in PARTITION_COLUMNS:
        bad = [v for v in frame[column].unique() if not _PARTITION_VALUE.match(str(v))]
        if bad:
            raise StoreError(f"column {column!r}: {bad[0]!r} is not slug-like (letters, digits, . _ -)")
    frame["measured_at"] = pd.to_datetime(frame["measured_at"], utc=True)
    return frame[SCHEMA.names]
