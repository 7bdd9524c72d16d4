"""``farm check --store DIR [--repair] [--json]``: find what would trip a store's readers, and quarantine it.

A store can be damaged by accidents the farm cannot prevent: a disk that fills
during a copy, a file truncated by a crashed ``rsync``, a table dropped into a
partition by hand, a crash between a part file's write and its rename. The
readers (:meth:`farm.store.Store.read`) already leave such files out with one
warning; this command lists them and, with ``--repair``, moves them out of the way:

* ``corrupt``: a part file that is not readable Parquet (truncated, empty, damaged pages);
* ``foreign``: a file in the partition folders that is not one of the store's part
  files: Parquet with other columns or types, a non-Parquet file, a symbolic link, a
  file outside ``search_space=<space>/device=<device>/``, or a Parquet file at the root;
* ``leftover``: a ``.tmp-part-*`` file left by a write that never reached its rename
  (:func:`farm.store.write_part_file`), or a ``_campaigns/.tmp-*.json`` one, older than
  :data:`LEFTOVER_MIN_AGE_S` (a younger one may be a write under way, and is left alone);
* ``record``: a campaign record that cannot be read (:func:`farm.summary.read_record`).

``--repair`` moves each to ``<store>/_quarantine/<its path in the store>``: never
deletes, renames atomically within the store, and never overwrites a file already
quarantined (a second one of the same name gets ``.1``, ``.2``, ...). Readers never
look inside ``_quarantine/``. Exit code: 0 when the store is clean (or every problem
was moved), 1 when problems remain, 2 for a ``--store`` that is not a store.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "search_space=nasbench201" / "device=pi4").mkdir(parents=True)
    >>> _ = (root / "search_space=nasbench201" / "device=pi4" / "notes.txt").write_text("hello")
    >>> result = scan_store(root)
    >>> [(p.kind, p.path) for p in result.problems], result.exit_code
    ([('foreign', 'search_space=nasbench201/device=pi4/notes.txt')], 1)
    >>> repaired = repair(result)
    >>> repaired.problems[0].moved_to, repaired.exit_code, scan_store(root).exit_code
    ('_quarantine/search_space=nasbench201/device=pi4/notes.txt', 0, 0)
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from farm.device_records import DEVICES_DIR
from farm.errors import UserError
from farm.store import (PARTITION_COLUMNS, PARTITION_VALUE, QUARANTINE_DIR, TEMPORARY_PREFIX, fsync_folder,
                        part_file_problem)
from farm.store_lock import STORE_LOCK_NAME
from farm.summary import RECORDS_DIR, RecordError, read_record

#: Entries only a store holds. ``_encodings`` (:data:`farm.proxies.table.ENCODINGS_DIR`) and ``.merge.lock``
#: (:data:`farm.merge.MERGE_LOCK`) are named here, not imported: those modules pull in torch and the importer.
STORE_MARKERS = frozenset({RECORDS_DIR, DEVICES_DIR, QUARANTINE_DIR, "_encodings", STORE_LOCK_NAME, ".merge.lock"})

__all__ = ["CheckResult", "LEFTOVER_MIN_AGE_S", "Problem", "quarantine", "register", "repair", "run_check", "scan_store"]

#: A temporary file younger than this may belong to a write under way, so it is left alone.
LEFTOVER_MIN_AGE_S = 15 * 60.0


@dataclass(frozen=True)
class Problem:
    """One file that readers skip: ``path`` relative to the store, its ``kind`` and what is wrong."""

    path: str
    kind: str
    detail: str
    moved_to: str | None = None
    move_error: str | None = None


@dataclass
class CheckResult:
    """What :func:`scan_store` found (and :func:`repair` did) in the store at ``store``."""

    store: Path
    part_files: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Temporary files too young to call leftovers (a write may be under way).
    left_alone: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def remaining(self) -> list[Problem]:
        """Problems still in place (all of them, unless repaired)."""
        return [p for p in self.problems if p.moved_to is None]

    @property
    def exit_code(self) -> int:
        """0 when nothing is (any longer) in the readers' way, else 1."""
        return 1 if self.remaining else 0

    def to_dict(self) -> dict[str, Any]:
        return {"store": str(self.store), "part_files": self.part_files, "records": self.records,
                "problems": [asdict(p) for p in self.problems], "left_alone": self.left_alone,
                "repaired": self.repaired, "clean": not self.remaining}

    def lines(self) -> list[str]:
        """The text report, one line per problem and a last line saying what to do."""
        lines = [f"store {self.store}: checked {self.part_files} part files and {self.records} campaign records"]
        for problem in self.problems:
            if problem.moved_to:
                lines.append(f"moved {problem.kind:<8} {problem.path} -> {problem.moved_to} ({problem.detail})")
            elif problem.move_error:
                lines.append(f"NOT moved {problem.kind:<8} {problem.path}: {problem.move_error} ({problem.detail})")
            else:
                lines.append(f"{problem.kind:<8} {problem.path}: {problem.detail}")
        lines.extend(f"left alone {path}: younger than {LEFTOVER_MIN_AGE_S / 60:.0f} min, a write may be under way"
                     for path in self.left_alone)
        moved = len(self.problems) - len(self.remaining)
        quarantine_dir = self.store / QUARANTINE_DIR
        if not self.problems:
            lines.append("clean: nothing in the readers' way")
        elif self.repaired and not self.remaining:
            lines.append(f"{moved} file(s) moved to {quarantine_dir} (nothing deleted); the store is clean now")
        elif self.repaired:
            lines.append(f"{moved} file(s) moved to {quarantine_dir}, {len(self.remaining)} could not be moved (see above)")
        else:
            lines.append(f"{len(self.problems)} problem(s); readers skip these files. Move them to {quarantine_dir} "
                         f"with: farm check --store {self.store} --repair")
        return lines


def scan_store(root: str | os.PathLike[str], *, now: float | None = None) -> CheckResult:
    """Every problem in the store at ``root`` (see the module docstring); nothing is changed.

    Raises :class:`UserError` when ``root`` is not a store folder: missing, a file, or a
    folder with other content but none of a store's own entries (a ``search_space=*``
    partition, ``_campaigns``, ``_devices``, ``_encodings``, ``_quarantine`` or a lock file).
    """
    store = Path(root)
    if not store.exists():
        raise UserError(f"--store {root}: no such folder; pass the store folder measure.py wrote")
    if not store.is_dir():
        raise UserError(f"--store {root}: is a file, not a store folder; pass the folder measure.py wrote")
    entries = sorted(store.iterdir())
    is_store = any(e.name.startswith("search_space=") or e.name in STORE_MARKERS for e in entries)
    if entries and not is_store:
        raise UserError(f"--store {root}: not a farm store (no search_space=* partition and no {RECORDS_DIR} "
                        "folder); pass the folder measure.py wrote")
    result = CheckResult(store)
    clock = time.time() if now is None else now
    for entry in entries:
        if entry.name.startswith("search_space="):
            for path in _files_below(entry):
                _check_partition_file(result, path, clock)
        elif entry.name == RECORDS_DIR and entry.is_dir() and not entry.is_symlink():
            for path in _files_below(entry):
                _check_record_file(result, path, clock)
        elif entry.name.endswith(".parquet") and not entry.name.startswith((".", "_")):
            result.problems.append(Problem(entry.name, "foreign", "a Parquet file outside the partition folders "
                                           "(search_space=*/device=*/); readers ignore it"))
    return result


def repair(result: CheckResult) -> CheckResult:
    """Move every problem of ``result`` to ``_quarantine/`` (:func:`quarantine`); the result says where each went."""
    problems = []
    for problem in result.problems:
        try:
            target = quarantine(result.store, Path(problem.path))
        except OSError as error:
            problems.append(replace(problem, move_error=error.strerror or str(error)))
        else:
            problems.append(replace(problem, moved_to=target.relative_to(result.store).as_posix()))
    return replace(result, problems=problems, repaired=True)


def quarantine(store: Path, relative: Path) -> Path:
    """Move ``store/relative`` to ``store/_quarantine/relative`` (or ``...relative.N``); return where it went.

    The move is a hard link then an unlink of the original, so an existing quarantined file
    is never overwritten (the link fails instead, and the next free ``.N`` is tried); where
    hard links are not supported, a rename to a name checked free. Both folders are fsynced.
    """
    source = store / relative
    base = store / QUARANTINE_DIR / relative
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        target = base if attempt == 0 else base.with_name(f"{base.name}.{attempt}")
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if os.path.lexists(target):
                continue
            os.rename(source, target)
        else:
            os.unlink(source)
        fsync_folder(source.parent)
        fsync_folder(target.parent)
        return target
    raise OSError(errno.EEXIST, f"1000 files named {base.name} are already quarantined")


def _files_below(folder: Path) -> Iterator[Path]:
    """Every file (and symbolic link) below ``folder``, without following links, in a stable order."""
    if folder.is_symlink() or not folder.is_dir():
        yield folder
        return
    for directory, subfolders, names in os.walk(folder):
        subfolders.sort()
        links = [name for name in subfolders if os.path.islink(os.path.join(directory, name))]
        for name in sorted([*names, *links]):
            yield Path(directory) / name


def _check_partition_file(result: CheckResult, path: Path, now: float) -> None:
    relative = path.relative_to(result.store)
    name = path.name
    if name.startswith(f"{TEMPORARY_PREFIX}part-"):
        _leftover(result, path, now, "a part file whose write stopped before its rename (a crash)")
        return
    if name.startswith(".") and not path.is_symlink():
        return  # hidden files are not ours to judge (editors, NFS); readers never open them
    problem = _layout_problem(relative)
    if problem is None and path.is_symlink():
        problem = "foreign: a symbolic link; part files are plain files written by the store"
    if problem is None and (not name.endswith(".parquet") or name.startswith("_")):
        problem = "foreign: not a part file of the store (readers ignore it)"
    if problem is None:
        result.part_files += 1
        problem = part_file_problem(path)
    if problem is not None:
        kind, _, detail = problem.partition(": ")
        result.problems.append(Problem(relative.as_posix(), "corrupt" if kind == "unreadable" else kind, detail))


def _layout_problem(relative: Path) -> str | None:
    parts = relative.parts
    if len(parts) != len(PARTITION_COLUMNS) + 1:
        return "foreign: outside the partition layout search_space=<space>/device=<device>/<part>.parquet"
    for column, folder in zip(PARTITION_COLUMNS, parts):
        key, _, value = folder.partition("=")
        if key != column or not PARTITION_VALUE.fullmatch(value):
            return f"foreign: folder {folder!r} is not {column}=<name> with a whole-slug name"
    return None


def _check_record_file(result: CheckResult, path: Path, now: float) -> None:
    relative = path.relative_to(result.store).as_posix()
    if path.name.startswith(TEMPORARY_PREFIX):
        _leftover(result, path, now, "a campaign record whose write stopped before its rename (a crash)")
        return
    if path.name.startswith("."):
        return
    if path.is_symlink() or path.suffix != ".json" or path.parent != result.store / RECORDS_DIR:
        result.problems.append(Problem(relative, "foreign", "not a campaign record (_campaigns/<campaign id>.json)"))
        return
    result.records += 1
    try:
        read_record(path)
    except RecordError as error:
        result.problems.append(Problem(relative, "record", f"unreadable campaign record: {error}"))


def _leftover(result: CheckResult, path: Path, now: float, what: str) -> None:
    relative = path.relative_to(result.store).as_posix()
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return  # renamed into place (or removed) since the listing: it was a write under way
    if age < LEFTOVER_MIN_AGE_S:
        result.left_alone.append(relative)
    else:
        result.problems.append(Problem(relative, "leftover", f"{what}, {age / 3600:.1f} h old"))


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``farm check --store DIR [--repair] [--json]`` to the ``farm`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "check", help="list damaged or foreign files in a store; --repair moves them to _quarantine/",
        description="List the files a store's readers skip (corrupt or foreign part files, leftovers of crashed "
                    "writes, unreadable campaign records); --repair moves them to DIR/_quarantine/.",
    )
    parser.add_argument("--store", default="measurements", metavar="DIR", help="Parquet store folder to check")
    parser.add_argument("--repair", action="store_true",
                        help="move every problem to DIR/_quarantine/ (never deletes, never overwrites)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """The ``farm check`` handler: the report on stdout; exit 0 clean, 1 problems left, 2 not a store."""
    result = scan_store(args.store)
    if args.repair and result.problems:
        result = repair(result)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(result.lines()))
    return result.exit_code
