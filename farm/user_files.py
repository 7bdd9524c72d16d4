"""Files and folders a person names (on the command line or in a config file), checked before anything starts.

Every reader of a user-named text file (the inventory, ``--archs`` lists,
``--pool`` files, ``registry.yaml``) goes through :func:`read_text`, and every
command that will write goes through :func:`check_writable_folder` first, so a
typo is one :class:`~farm.errors.UserError` line (exit 2) before Ray starts or a
model trains, never a traceback half-way through.

* :func:`read_text`: UTF-8 text (a byte-order mark is dropped); a missing file,
  a folder, an unreadable file, a file larger than ``max_bytes`` or bytes that
  are not UTF-8 each give one line naming the file and what to do;
* :func:`check_writable_folder`: the folder exists (or can be created) and a
  file can be written there. It creates nothing: it probes the folder, or its
  nearest existing ancestor, with a temporary file it removes at once;
* :func:`check_store`: a writable folder whose rows can be read (a store the
  reader cannot open is named with ``farm check --store DIR --repair``).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_bytes(b"caf\\xe9\\n")
    >>> try:
    ...     read_text(folder / "a.txt", hint="--archs needs one arch string a line")
    ... except UserError as error:
    ...     str(error).split(": ", 1)[1]
    'not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8'
    >>> check_writable_folder("--store", folder / "new" / "store")  # nothing is created
    >>> (folder / "new").exists()
    False
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from farm.errors import UserError

__all__ = ["DEFAULT_MAX_BYTES", "check_store", "check_writable_folder", "read_text"]

#: Larger text files are refused: no inventory or arch list is this big, and /dev/zero must not fill memory.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def read_text(path: str | os.PathLike[str], *, hint: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The UTF-8 text of ``path``; :class:`UserError` (``"<path>: <problem>; <hint or fix>"``) otherwise."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; {hint}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a file; {hint}") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error}); {hint}") from None
    if len(data) > max_bytes:
        raise UserError(f"{path}: larger than {max_bytes // (1024 * 1024)} MiB; is it the right file? {hint}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); save the file as UTF-8"
        ) from None


def check_writable_folder(flag: str, folder: str | os.PathLike[str]) -> None:
    """Refuse (one :class:`UserError` line naming ``flag``) a folder that is a file or where nothing can be written.

    A folder that does not exist yet is fine when its nearest existing ancestor is a writable
    folder (the command creates it later). Nothing is created or left behind.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {folder}: is a file, not a folder; pass a folder (it is created if missing)")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {folder}: {existing} is a file, so the folder cannot be created; choose another path")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".latfarm-write-check-")
    except OSError as error:
        where = "" if existing == path else f" (in {existing}, its nearest existing folder)"
        raise UserError(
            f"{flag} {folder}: cannot write there{where}: {error.strerror or error}; choose a writable folder"
        ) from None
    os.close(handle)
    os.unlink(probe)


def check_store(flag: str, root: str | os.PathLike[str]) -> None:
    """:func:`check_writable_folder`, then read the store's ids once, so a store the reader cannot open stops here."""
    from farm.store import Store, StoreError

    check_writable_folder(flag, root)
    if not Path(root).is_dir():
        return
    try:
        Store(root).read(columns=["measurement_id"])
    except StoreError as error:
        detail = " ".join(str(error).split()).removeprefix(f"{root}: cannot read the store: ")
        raise UserError(
            f"{flag} {root}: cannot read the store ({detail}); list and quarantine damaged files with "
            f"`farm check --store {root} --repair`"
        ) from None
