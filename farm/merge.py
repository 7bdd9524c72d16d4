"""Merge one farm store folder into another by ``measurement_id``: what ``farm pull`` and ``farm import DIR`` do.

The source is untrusted (it came from another host), so every one of its Parquet
files is checked before anything is written, with the checks ``farm import``
makes, and a bad file or row is refused with one line naming the file, the row
and the column (:class:`~farm.errors.UserError`, exit 2):

* the layout is the store's: ``search_space=<space>/device=<name>/<part>.parquet``
  with a known space and a slug-like device name; no symlinked or stray file;
* the columns are the schema's (``DESIGN.md``): a column this version does not
  know is refused rather than dropped, and a file without a newer column reads it as null;
* required columns are filled; ``measurement_id`` is unique; ``status`` is
  ``ok``, ``unstable`` or ``failed``; a measured row's ``latency_ms`` is a
  positive finite number; no float is infinite; batch and input sizes are not negative;
* arch strings parse in their space and are stored in canonical form.

Then the rows whose ``measurement_id`` the destination does not hold are
appended through :meth:`farm.store.Store.append` (new, atomically renamed part
files; nothing is rewritten), so a second merge adds nothing and a merge
interrupted half-way is completed by running it again; two merges into one
store at once take turns (an advisory lock, ``<store>/.merge.lock``). The campaign records
(``_campaigns/*.json``, :mod:`farm.summary`) are copied when the destination
lacks them, or holds the same campaign unfinished while the source's has finished;
the device records (``_devices/*.json``, :mod:`farm.device_records`) when absent
or older. A record that does not parse is skipped and named in the result; the rows never are.

Example:
    >>> import tempfile
    >>> from farm.store import Store
    >>> source, destination = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "home"
    >>> _ = Store(source).append([{"measurement_id": "m1", "campaign_id": "c1", "measured_at": "2026-01-02T03:04:05Z",
    ...     "source": "farm", "device": "cpu-local", "device_kind": "cpu", "runtime": "torch",
    ...     "search_space": "nasbench201", "arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ...     "batch_size": 1, "input_size": 32, "protocol": "interleaved", "latency_ms": 1.5, "status": "ok",
    ...     "host": "head", "farm_version": "0.1.0"}])
    >>> merge_stores(source, destination).line(), merge_stores(source, destination).line()
    ('1 new rows (0 already here)', '0 new rows (1 already here)')
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from farm.atomic import write_bytes_atomic
from farm import spaces
from farm.device_records import DEVICES_DIR, DeviceRecord, DeviceRecordError
from farm.errors import UserError
from farm.importer import canonical_archs
from farm.store import NULLABLE, PARTITION_COLUMNS, SCHEMA, Store, StoreError
from farm.summary import RECORDS_DIR, CampaignSummary
from farm.user_files import check_store

__all__ = ["MERGE_LOCK", "MergeResult", "STATUSES", "is_store_folder", "merge_lock", "merge_stores", "read_store_rows"]

#: The statuses a farm row can have.
STATUSES: frozenset[str] = frozenset({"ok", "unstable", "failed"})
#: Rows with these statuses were measured: their ``latency_ms`` must be a positive finite number.
MEASURED: frozenset[str] = frozenset({"ok", "unstable"})
#: A campaign or device record larger than this is not one the farm wrote.
MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_ID_LENGTH = 200
#: Serialises merges into one store (``farm pull``, ``farm import DIR``); dot-prefixed, so no reader looks at it.
MERGE_LOCK = ".merge.lock"

_FILE_SCHEMA = pa.schema([f for f in SCHEMA if f.name not in PARTITION_COLUMNS])
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ID = re.compile(r"[!-~]{1,%d}" % MAX_ID_LENGTH)  # printable ASCII, no space
_FLOAT_COLUMNS = [f.name for f in _FILE_SCHEMA if pa.types.is_floating(f.type)]
_SIZE_COLUMNS = {"batch_size": 1, "input_size": 0, "threads": 1, "warmup_runs": 0, "runs": 0}


@dataclass
class MergeResult:
    """What a merge did: rows added and already present, records copied, records skipped (with why)."""

    added: int = 0
    already: int = 0
    campaigns_copied: int = 0
    devices_copied: int = 0
    skipped_records: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``"N new rows (M already here)"``, the core of ``farm pull``'s and ``farm import``'s summary."""
        return f"{self.added} new rows ({self.already} already here)"


def is_store_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder laid out as a farm store: partitions, campaign records or device records.

    Example:
        >>> import tempfile
        >>> is_store_folder(tempfile.mkdtemp())
        False
    """
    root = Path(path)
    if not root.is_dir():
        return False
    return any(root.glob("search_space=*")) or (root / RECORDS_DIR).is_dir() or (root / DEVICES_DIR).is_dir()


def merge_stores(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> MergeResult:
    """Append the rows of the store ``source`` that ``destination`` lacks, then copy its records.

    Everything in ``source`` is checked first (see the module docstring); a bad
    file or row raises :class:`UserError` and nothing is written. ``destination``
    is created when missing.
    """
    source_root, destination_root = Path(source), Path(destination)
    if not source_root.is_dir():
        raise UserError(f"{source_root}: no such folder; pass a farm store folder (search_space=*/device=*/*.parquet)")
    if not is_store_folder(source_root):
        raise UserError(f"{source_root}: not a farm store (no search_space=* partitions, {RECORDS_DIR} or "
                        f"{DEVICES_DIR} folder); pass the folder measure.py wrote, or a Parquet table")
    if destination_root.resolve() == source_root.resolve():
        raise UserError(f"--store {destination_root}: is the store being merged; pass another --store")
    check_store("--store", destination_root)
    rows = read_store_rows(source_root)
    store = Store(destination_root)
    with merge_lock(destination_root):  # two merges at once must not both add the rows neither held yet
        try:
            present = set(store.read(columns=["measurement_id"])["measurement_id"])
        except StoreError as error:
            raise UserError(f"--store {destination_root}: {error}") from None
        new = rows[~rows["measurement_id"].isin(present)]
        if len(new):
            try:
                store.append(new)
            except StoreError as error:  # checked above, so the schema changed between the checks and the store
                raise UserError(f"{source_root}: {error}") from None
        result = MergeResult(added=len(new), already=len(rows) - len(new))
        _copy_records(source_root / RECORDS_DIR, destination_root / RECORDS_DIR, _campaign_wins, result, "campaigns")
        _copy_records(source_root / DEVICES_DIR, destination_root / DEVICES_DIR, _device_wins, result, "devices")
    return result


@contextmanager
def merge_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<root>/.merge.lock`` (waiting for another merge or import to finish).

    The kernel drops it when the process ends, however it ends, so a killed merge never blocks the next one.
    """
    root.mkdir(parents=True, exist_ok=True)
    handle = os.open(root / MERGE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def read_store_rows(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Every row of the store at ``root``, file by file, checked as an untrusted source (module docstring).

    Raises :class:`UserError` naming the file (and the row and column) of the first problem.
    """
    root = Path(root)
    frames = [_read_file(root, path) for path in _part_files(root)]
    if not frames:
        return pa.schema(list(SCHEMA)).empty_table().to_pandas()
    rows = pd.concat(frames, ignore_index=True)
    duplicated = rows["measurement_id"].duplicated(keep=False).to_numpy()
    if duplicated.any():
        first = rows.loc[duplicated, ["measurement_id", "_file"]].drop_duplicates()
        identifier = first["measurement_id"].iloc[0]
        files = sorted(set(first.loc[first["measurement_id"] == identifier, "_file"]))
        raise UserError(f"{root}: measurement_id {identifier!r} is on {int((rows['measurement_id'] == identifier).sum())} "
                        f"rows ({', '.join(files)}); a store holds each measurement once: remove the damaged copy")
    return rows.drop(columns=["_file"])[SCHEMA.names]


def _part_files(root: Path) -> list[Path]:
    """The store's committed part files; a file outside the partition layout, or a symlink, is refused."""
    files = []
    for path in sorted(root.rglob("*.parquet")):
        relative = path.relative_to(root)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue  # temporary files, quarantined files, records: the store's reader skips them too
        if path.is_symlink() or not path.is_file():
            raise UserError(f"{path}: a symlink or special file in a store; a store holds plain part files only")
        space, device = (relative.parts[0], relative.parts[1]) if len(relative.parts) == 3 else ("", "")
        if not (space.startswith("search_space=") and device.startswith("device=")):
            raise UserError(f"{path}: outside the store layout search_space=<space>/device=<name>/<part>.parquet; "
                            "move or remove it")
        files.append(path)
    return files


def _read_file(root: Path, path: Path) -> pd.DataFrame:
    """One part file as checked store rows, with its partition values and a ``_file`` column."""
    space, device = (part.split("=", 1)[1] for part in path.relative_to(root).parts[:2])
    if space not in spaces.NAMES:
        raise UserError(f"{path}: search space {space!r} is unknown; known spaces: {', '.join(spaces.NAMES)}")
    if not _SLUG.fullmatch(device):
        raise UserError(f"{path}: device {device!r} is not a name (letters, digits, '.', '_' or '-')")
    try:
        unknown = sorted(set(pq.read_schema(path).names) - set(_FILE_SCHEMA.names))
        table = ds.dataset(str(path), format="parquet", schema=_FILE_SCHEMA).to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as error:
        detail = " ".join(str(error).split())
        raise UserError(f"{path}: not a store part file of this schema ({type(error).__name__}: {detail})") from None
    if unknown:
        raise UserError(f"{path}: column {unknown[0]!r} is unknown to this latfarm version; upgrade latfarm here "
                        "to the version that wrote the store")
    frame = table.to_pandas()
    frame["search_space"], frame["device"] = space, device
    _check_rows(frame, path)
    frame["arch"] = canonical_archs(frame, path)
    frame["_file"] = str(path)
    return frame


def _check_rows(frame: pd.DataFrame, path: Path) -> None:
    """Refuse the first row of ``frame`` that no farm writes (one line naming file, row and column)."""

    def refuse(bad: np.ndarray, column: str, why: str) -> None:
        if bad.any():
            row = int(np.argmax(bad))
            value = frame[column].iloc[row]
            shown = value.item() if isinstance(value, np.generic) else value
            raise UserError(f"{path}: column {column!r} in row {row} is {shown!r}; {why}")

    for column in SCHEMA.names:
        if column not in NULLABLE:
            refuse(frame[column].isna().to_numpy(), column, "a store row needs it")
    refuse(~frame["measurement_id"].map(lambda v: _ID.fullmatch(str(v)) is not None).to_numpy(dtype=bool),
           "measurement_id", f"ids are 1 to {MAX_ID_LENGTH} printable characters without spaces")
    refuse(~frame["status"].isin(STATUSES).to_numpy(), "status", f"a row is {', '.join(sorted(STATUSES))}")
    latency = frame["latency_ms"].to_numpy(dtype="float64")
    measured = frame["status"].isin(MEASURED).to_numpy()
    refuse(measured & ~(np.isfinite(latency) & (latency > 0)), "latency_ms", "a measured row's latency is positive ms")
    for column in _FLOAT_COLUMNS:
        refuse(np.isinf(frame[column].to_numpy(dtype="float64")), column, "numbers in a store are finite")
    refuse(~frame["samples_ms"].map(_finite_samples).to_numpy(dtype=bool), "samples_ms", "timed runs are finite ms")
    for column, least in _SIZE_COLUMNS.items():
        values = frame[column].to_numpy(dtype="float64")
        refuse(values < least, column, f"it is at least {least}")


def _finite_samples(samples: Any) -> bool:
    return samples is None or bool(np.isfinite(np.asarray(samples, dtype="float64")).all())


# ---------------------------------------------------------------- records
def _campaign_wins(source: dict[str, Any], present: dict[str, Any] | None) -> bool:
    """A campaign record is copied when absent, or when only the source's copy has finished."""
    return present is None or (not present.get("finished_at") and bool(source.get("finished_at")))


def _device_wins(source: dict[str, Any], present: dict[str, Any] | None) -> bool:
    """A device record is copied when absent or newer (the newest campaign's entry wins, as in the farm)."""
    return present is None or str(source.get("updated_at", "")) > str(present.get("updated_at", ""))


def _parse_record(path: Path, kind: str) -> dict[str, Any]:
    """The JSON object of a record file, checked as the farm's reader checks it; ValueError otherwise."""
    if path.is_symlink() or not path.is_file():
        raise ValueError("a symlink or special file")
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise ValueError(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB")
    data = json.loads(path.read_text(encoding="utf-8"))
    if kind == "campaigns":
        summary = CampaignSummary.from_dict(data)
        if summary.campaign_id != path.stem:
            raise ValueError(f"campaign_id {summary.campaign_id!r} does not match the file name")
    else:
        record = DeviceRecord.from_json(data, str(path))
        if record.device != path.stem:
            raise ValueError(f"device {record.device!r} does not match the file name")
    return data


def _copy_records(
    source: Path, destination: Path, wins: Callable[[dict[str, Any], dict[str, Any] | None], bool],
    result: MergeResult, kind: str,
) -> None:
    if not source.is_dir():
        return
    for path in sorted(source.glob("*.json")):
        if not _SLUG.fullmatch(path.stem):
            continue
        try:
            data = _parse_record(path, kind)
        except (ValueError, TypeError, OSError, DeviceRecordError) as error:
            result.skipped_records.append(f"{path}: {' '.join(str(error).split())}")
            continue
        target = destination / path.name
        try:
            present = _parse_record(target, kind) if target.exists() else None
        except (ValueError, TypeError, OSError, DeviceRecordError):
            present = None  # an unreadable local copy is replaced by a good one
        if wins(data, present):
            write_bytes_atomic(path.read_bytes(), target)
            if kind == "campaigns":
                result.campaigns_copied += 1
            else:
                result.devices_copied += 1
