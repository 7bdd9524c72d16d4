"""``farm import``: append a public latency table (e.g. HELP's), or another farm store, to a farm store.

A store folder (``farm import ~/head-measurements --store measurements``, e.g.
after ``ray rsync-down``) is merged by ``measurement_id`` through
:mod:`farm.merge`: its rows keep their own provenance, are checked as untrusted
input, and a row already present is skipped, so importing it twice adds nothing.

Any Parquet file with at least the columns ``search_space, arch, device,
latency_ms`` can be imported. Each row becomes one store row (schema in
DESIGN.md) that says honestly what is known about it:

- ``source``: ``--source NAME``, by default the file's name (``help_latency.parquet``);
- ``device_kind = 'external'``, ``runtime = 'external'``, ``protocol = 'external'``:
  the farm neither reached the device nor ran the protocol;
- ``batch_size``: the file's ``batch_size`` column if it has one, else the
  trailing ``_<int>`` of the device name (``1080ti_32`` -> 32), else 1; a
  trailing number above 1024 is a CPU model number (``gold_6226``) and gives 1;
- ``input_size``: the file's column if present, else the space's default input size;
- ``measured_at``: the file's column if present; otherwise the time of the
  import, because the original measurement time is unknown. For imported rows
  it therefore means "entered this store at", not "measured at";
- ``host``: the importing host; ``farm_version``: this package's version;
- ``campaign_id = 'import-<first 16 hex of the file's SHA-256>'`` and
  ``measurement_id = '<campaign_id>-<row number>'``: both derive from the file's
  content, which is what makes importing the same file twice add nothing (rows
  whose ids are already in the store are skipped, so an import interrupted
  half-way is completed by running it again);
- ``status = 'ok'``; warm-up, runs, trim, spread and temperatures stay null
  unless the file has those columns (then they are kept).

Arch strings are checked against the search space (first bad one reported
with its row) and stored in canonical form. Device and space names must be
whole slugs (``pi4\n`` is refused with its row). A table without rows, a
``--store`` that is a file or cannot be written, or a store the reader cannot
open is one line and exit 2, checked before anything is written.

Example:
    >>> batch_size_from_device("1080ti_32"), batch_size_from_device("pixel2"), batch_size_from_device("gold_6226")
    (32, 1, 1)
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from agents.hashing import file_sha256
from farm import __version__, spaces
from farm.errors import UserError
from farm.spaces import ArchError
from farm.store import SCHEMA, Store, StoreError, utc_now
from farm.user_files import check_store

if TYPE_CHECKING:
    from farm.merge import MergeResult

REQUIRED_COLUMNS: tuple[str, ...] = ("search_space", "arch", "device", "latency_ms")
#: Set for every imported row, whatever the file says.
FIXED = {"device_kind": "external", "runtime": "external", "protocol": "external", "status": "ok"}
_SUFFIX = re.compile(r"_(\d+)\Z")
#: A device or space name as the store partitions by it: one whole slug (no newline, no path separator).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


#: A larger trailing number is a model number, not a batch size (HELP's ``gold_6226``, ``silver_4114``).
MAX_BATCH_FROM_NAME = 1024


def batch_size_from_device(device: str) -> int:
    """The trailing ``_<int>`` of a device name (HELP's convention for GPU batch sizes), else 1.

    Numbers above :data:`MAX_BATCH_FROM_NAME` are CPU model numbers (``gold_6226``) and give 1.
    """
    match = _SUFFIX.search(device)
    value = int(match.group(1)) if match else 1
    return value if 1 <= value <= MAX_BATCH_FROM_NAME else 1


def read_table(path: Path) -> pd.DataFrame:
    """The file as a frame; :class:`UserError` if it is not readable Parquet or lacks a required column."""
    if not path.is_file():
        raise UserError(f"{path}: no such file or folder; pass a Parquet table or a farm store folder to import")
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a non-Parquet file
        raise UserError(f"{path}: not a readable Parquet file ({type(error).__name__}: {error})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: column {missing[0]!r} is missing; an importable table has at least {', '.join(REQUIRED_COLUMNS)}"
        )
    if frame.empty:
        raise UserError(f"{path}: the table has no rows; nothing to import (is it the right file?)")
    return frame


def to_store_rows(frame: pd.DataFrame, path: Path, source: str, campaign_id: str) -> pd.DataFrame:
    """Map an importable frame to store rows (see the module docstring); raises :class:`UserError`."""
    for column in REQUIRED_COLUMNS:
        empty = frame[column].isna().to_numpy()
        if empty.any():
            raise UserError(f"{path}: column {column!r} is empty in row {int(np.argmax(empty))}; fill or drop such rows")
    for column in ("search_space", "device"):
        names = frame[column].astype(str)
        bad = ~names.map(lambda name: _NAME.fullmatch(name) is not None).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.argmax(bad))
            raise UserError(f"{path}: column {column!r} in row {row} is {names.iloc[row]!r}; names are letters, digits, "
                            "'.', '_' or '-', starting with a letter or digit")
    latency = pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(dtype="float64")
    bad = ~(np.isfinite(latency) & (latency > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise UserError(
            f"{path}: column 'latency_ms' in row {row} is {frame['latency_ms'].iloc[row]!r}; latencies must be positive ms"
        )
    keep = [c for c in frame.columns if c in SCHEMA.names and c not in FIXED and c not in ("source", "campaign_id", "measurement_id", "host", "farm_version")]
    rows = frame[keep].copy()
    rows["latency_ms"] = latency
    rows["arch"] = canonical_archs(frame, path)
    rows["search_space"] = frame["search_space"].astype(str)
    rows["device"] = frame["device"].astype(str)
    if "batch_size" not in rows.columns:
        rows["batch_size"] = [batch_size_from_device(d) for d in rows["device"]]
    if "input_size" not in rows.columns:
        rows["input_size"] = rows["search_space"].map(lambda s: spaces.get(s).default_input_size)
    if "measured_at" not in rows.columns:
        rows["measured_at"] = utc_now()
    for column, value in FIXED.items():
        rows[column] = value
    rows["source"] = source
    rows["campaign_id"] = campaign_id
    rows["measurement_id"] = [f"{campaign_id}-{i}" for i in range(len(frame))]
    rows["host"] = socket.gethostname()
    rows["farm_version"] = __version__
    return rows


def canonical_archs(frame: pd.DataFrame, path: Path) -> pd.Series:
    """The canonical form of each row's arch (columns ``search_space``, ``arch``); :class:`UserError` names
    ``path``, the row and the problem for an unknown space or an arch that does not parse."""
    pairs = frame[["search_space", "arch"]].astype(str)
    canonical: dict[tuple[str, str], str] = {}
    for space_name, arch in pairs.drop_duplicates().itertuples(index=False, name=None):
        try:
            space = spaces.get(space_name)
        except KeyError:
            row = int(np.argmax((pairs["search_space"] == space_name).to_numpy()))
            raise UserError(
                f"{path}: column 'search_space' in row {row} is {space_name!r}; known spaces: {', '.join(spaces.NAMES)}"
            ) from None
        try:
            canonical[(space_name, arch)] = space.canonical(arch)
        except ArchError as error:
            row = int(np.argmax(((pairs["search_space"] == space_name) & (pairs["arch"] == arch)).to_numpy()))
            raise UserError(f"{path}: column 'arch' in row {row}: {error}") from None
    return pd.Series([canonical[p] for p in pairs.itertuples(index=False, name=None)], index=frame.index)


def import_table(path: str | Path, store_root: str | Path, source: str | None = None) -> int:
    """Append the rows of the Parquet table at ``path`` to the store at ``store_root``.

    Returns the number of rows added: 0 when the same file (by content) was
    imported before. A folder ``path`` is a farm store and is merged
    (:func:`farm.merge.merge_stores`; ``source`` must then be None: its rows
    keep theirs). Raises :class:`farm.errors.UserError` with one line naming
    the file, the column and the row for bad input.

    Example:
        >>> import tempfile, pandas as pd
        >>> folder = Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"search_space": ["nasbench201"], "device": ["gpu_8"], "latency_ms": [1.5],
        ...     "arch": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]}).to_parquet(folder / "t.parquet")
        >>> import_table(folder / "t.parquet", folder / "store"), import_table(folder / "t.parquet", folder / "store")
        (1, 0)
    """
    path = Path(path)
    if path.is_dir():
        return merge_store_folder(path, store_root, source).added
    from farm.merge import merge_lock  # farm.merge imports this module

    frame = read_table(path)
    check_store("--store", store_root)
    campaign_id = f"import-{file_sha256(path)[:16]}"
    store = Store(store_root)
    rows = to_store_rows(frame, path, source or path.name, campaign_id)
    with merge_lock(store.root):  # an import and a merge at once must not both add the same rows
        done = set(store.read(where={"campaign_id": campaign_id}, columns=["measurement_id"])["measurement_id"])
        rows = rows[~rows["measurement_id"].isin(done)]
        if rows.empty:
            return 0
        try:
            store.append(rows)
        except StoreError as error:
            raise UserError(f"{path}: {error}") from None
    return len(rows)


def merge_store_folder(folder: Path, store_root: str | Path, source: str | None = None) -> "MergeResult":
    """``farm import DIR``: merge the farm store ``folder`` into ``store_root`` (:mod:`farm.merge`)."""
    from farm.merge import merge_stores  # farm.merge imports this module

    if source is not None:
        raise UserError(f"--source {source}: applies to a Parquet table; the rows of the store {folder} keep "
                        "their own source; drop --source")
    return merge_stores(folder, store_root)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``farm import FILE|DIR --store DIR [--source NAME]`` to the ``farm`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "import",
        help="append a Parquet latency table (search_space, arch, device, latency_ms), or merge a store folder, into a store",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("file", metavar="FILE", type=Path,
                        help="Parquet table to import, or a farm store folder to merge by measurement_id")
    parser.add_argument("--store", required=True, type=Path, metavar="DIR",
                        help="farm store folder to append to (created if missing)")
    parser.add_argument("--source", default=None, metavar="NAME", help="value of the source column (default: the file name)")
    parser.set_defaults(handler=run_import)
    return parser


def run_import(args: argparse.Namespace) -> int:
    """The ``farm import`` handler: prints a one-line summary, returns the exit code."""
    if Path(args.file).is_dir():
        result = merge_store_folder(Path(args.file), args.store, args.source)
        print(f"imported {result.line()} from the store {args.file} into {args.store}")
        for skipped in result.skipped_records:
            print(f"skipped a record that does not parse: {skipped}", file=sys.stderr)
        return 0
    added = import_table(args.file, args.store, args.source)
    if added:
        print(f"imported {added} rows from {args.file} into {args.store}")
    else:
        print(f"nothing to import: every row of {args.file} is already in {args.store}")
    return 0


__all__ = ["FIXED", "MAX_BATCH_FROM_NAME", "REQUIRED_COLUMNS", "batch_size_from_device", "canonical_archs", "import_table",
           "merge_store_folder", "register", "run_import"]
