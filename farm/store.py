"""The append-only Parquet latency store.

One row per measurement, in the schema of ``DESIGN.md``, hive-partitioned by
``search_space`` and ``device``::

    measurements/search_space=nasbench201/device=cpu-local/part-<utc>-<uuid>.parquet

Every :meth:`Store.append` writes new files only: each is written under a
dot-prefixed temporary name in its partition folder, flushed, then renamed
into place, so a reader (or a crash) never sees a half-written file and no
existing file is ever rewritten.

Readers outlive accidents: a part file that cannot be read (truncated,
corrupt) or that is not one of the store's (other columns, other types) is
left out with one warning naming it and ``farm check --store DIR --repair``
(:mod:`farm.store_check`), which moves such files to ``_quarantine/``;
folders whose name starts with ``_`` or ``.`` (``_quarantine``, ``_campaigns``)
are never read. The fast path is one Arrow dataset scan over every part file;
only when it fails, or returns rows without the store's required values, are
the files read one by one to find the damaged ones.

Example:
    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> store.read().empty
    True
"""

from __future__ import annotations

import logging
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
#: A partition value (space or device name): a whole slug, matched with ``fullmatch`` (no trailing newline).
PARTITION_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Prefix of the temporary name a part file is written under before its rename (:func:`write_part_file`).
TEMPORARY_PREFIX = ".tmp-"
#: Where ``farm check --repair`` moves damaged and foreign files; readers never look inside.
QUARANTINE_DIR = "_quarantine"
#: Arrow's errors for a file it cannot read or convert to the store's schema.
_READ_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError)
#: A store row always has these, so a null one means the row came from a file the store did not write.
_REQUIRED = [name for name in SCHEMA.names if name not in NULLABLE and name not in PARTITION_COLUMNS]
_SENTINEL = "farm_version"

logger = logging.getLogger(__name__)
#: Warnings already given in this process, so a command that reads the store several times warns once.
_warned: set[tuple[str, str]] = set()


class StoreError(ValueError):
    """Rows that do not fit the schema, or a store that cannot be read."""


class _ForeignRows(Exception):
    """The fast scan returned rows with empty required values: some file is not the store's."""


def part_file_problem(path: str | os.PathLike[str], *, read_data: bool = True) -> str | None:
    """Why the Parquet file at ``path`` is not a usable part file of a store, or None when it is.

    The file must be readable Parquet (with ``read_data``, every page is decoded, which finds
    damage inside the file; without, only the footer is read) whose columns are the
    schema's (``DESIGN.md``, partition columns excluded) with the schema's types, holding
    every required column. A column added to the schema later may be missing (it reads as null).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> pq.write_table(pa.table({"x": [1]}), folder / "foreign.parquet")
        >>> part_file_problem(folder / "foreign.parquet")
        "foreign: column 'x' is not in the store's schema"
        >>> _ = (folder / "text.parquet").write_text("hello")
        >>> part_file_problem(folder / "text.parquet").startswith("unreadable: ")
        True
    """
    try:
        handle = pq.ParquetFile(path)
        schema = handle.schema_arrow
        if read_data:
            handle.read()
    except (*_READ_ERRORS, pa.ArrowException) as error:
        return f"unreadable: {_short(error, Path(path))}"
    for field in schema:
        if field.name not in _FILE_SCHEMA.names:
            return f"foreign: column {field.name!r} is not in the store's schema"
        expected = _FILE_SCHEMA.field(field.name).type
        if field.type != expected:
            return f"foreign: column {field.name!r} is {field.type}, the store's schema says {expected}"
    missing = [name for name in _REQUIRED if name not in schema.names]
    if missing:
        return f"foreign: required column {missing[0]!r} is missing"
    return None


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
        return [write_part_file(folder, table) for folder, table in tables]

    # ------------------------------------------------------------------ read
    def files(self) -> list[Path]:
        """The committed part files, ``search_space=*/device=*/*.parquet``.

        Temporary (dot-prefixed) files and anything under a ``_`` folder (``_quarantine``)
        are excluded. Their content is not opened here: :meth:`read` leaves out a damaged
        one, and ``farm check`` (:mod:`farm.store_check`) lists them.
        """
        if not self.root.is_dir():
            return []
        return sorted(
            path
            for path in self.root.glob("search_space=*/device=*/*.parquet")
            if not path.name.startswith((".", "_")) and path.is_file()
        )

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
        unknown = [c for c in wanted if c not in SCHEMA.names]
        if unknown:
            raise StoreError(f"unknown column {unknown[0]!r}; columns: {', '.join(SCHEMA.names)}")
        paths = self.files()
        if not paths:
            return _empty_frame(wanted)
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
        # A foreign file's rows read as nulls in the required columns; farm_version is the cheapest
        # required column to add (one dictionary value per file) when none is wanted.
        checked = list(dict.fromkeys([*wanted, _SENTINEL]))
        try:
            table = self._dataset(paths).to_table(columns=checked, filter=expression)
            if any(table.column(c).null_count for c in checked if c in _REQUIRED):
                raise _ForeignRows()
        except (*_READ_ERRORS, _ForeignRows):
            table = self._read_file_by_file(paths, checked, expression)
        return table.select(wanted).to_pandas()

    def _dataset(self, paths: Sequence[Path]) -> ds.Dataset:
        return ds.dataset(
            [str(p) for p in paths],
            format="parquet",
            partitioning=ds.partitioning(pa.schema([(c, pa.string()) for c in PARTITION_COLUMNS]), flavor="hive"),
            partition_base_dir=str(self.root),
            schema=SCHEMA,
        )

    def _read_file_by_file(self, paths: Sequence[Path], columns: list[str], expression: Any) -> pa.Table:
        """The slow path: each file on its own; damaged or foreign ones are left out with one warning."""
        tables, skipped = [], []
        for path in paths:
            problem = part_file_problem(path, read_data=False)
            if problem is None:
                try:
                    table = self._dataset([path]).to_table(columns=columns, filter=expression)
                except _READ_ERRORS as error:
                    problem = f"unreadable: {_short(error, path)}"
            if problem is not None:
                skipped.append((path, problem))
            else:
                tables.append(table)
        if skipped:
            self._warn_skipped(skipped)
        if not tables:
            return pa.schema([SCHEMA.field(c) for c in columns]).empty_table()
        return pa.concat_tables(tables)

    def _warn_skipped(self, skipped: Sequence[tuple[Path, str]]) -> None:
        root = str(self.root.resolve())
        if all((root, str(path)) in _warned for path, _ in skipped):
            return
        _warned.update((root, str(path)) for path, _ in skipped)
        first_path, first_reason = skipped[0]
        more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
        logger.warning(
            "%s: left out %d damaged or foreign part file(s), %s (%s)%s; list and quarantine them with "
            "`farm check --store %s --repair`",
            self.root, len(skipped), first_path.relative_to(self.root), first_reason, more, self.root,
        )

    def done_keys(self, **filters: Any) -> set[tuple[Any, ...]]:
        """Resume keys (:data:`RESUME_KEY`) already measured with status ``ok``."""
        frame = self.read(status="ok", columns=list(RESUME_KEY), **filters)
        return set(zip(*(frame[column].tolist() for column in RESUME_KEY)))


def write_part_file(folder: Path, table: pa.Table) -> Path:
    """Write ``table`` under a dot-prefixed name, fsync, rename into place, fsync the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    temporary = folder / f"{TEMPORARY_PREFIX}{final.name}"
    with open(temporary, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    fsync_folder(folder)
    return final


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or new file in it) to disk."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _arrow_message(exc: Exception) -> str:
    parts = exc.args if exc.args else (str(exc),)
    return "; ".join(str(part) for part in reversed(parts))


def _short(error: Exception, path: Path) -> str:
    """Arrow's message on one line, without the path it repeats, at most 200 characters."""
    message = " ".join(_arrow_message(error).split()).replace(f"'{path}'", "").replace(str(path), path.name)
    return message[:200]


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
        bad = [v for v in frame[column].unique() if not PARTITION_VALUE.fullmatch(str(v))]
        if bad:
            raise StoreError(f"column {column!r}: {bad[0]!r} is not slug-like (letters, digits, . _ -)")
    frame["measured_at"] = pd.to_datetime(frame["measured_at"], utc=True)
    return frame[SCHEMA.names]
