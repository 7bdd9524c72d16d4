"""Atomic file writes: records, predictions, reports, figures, cached artifacts.

A file is written under a dot-prefixed temporary name in its folder, flushed
and fsynced, then renamed over the final name, so a reader (or a crash) sees
either the old file or the complete new one, never half of it. Every part of
the project that replaces a file goes through here.

Example:
    >>> import tempfile
    >>> path = write_text_atomic("hello\\n", Path(tempfile.mkdtemp()) / "a" / "note.md")
    >>> path.read_text()
    'hello\\n'
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, rename it to ``path``."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # ``.tmp-`` marks it as a temporary to every reader and to ``farm check`` (a leftover if a crash keeps it).
    temporary = final.parent / f".tmp-{final.name}.{uuid.uuid4().hex[:8]}"
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    finally:
        if temporary.exists():
            temporary.unlink()
    return final


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_bytes_atomic(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda handle: handle.write(data))


def write_json_atomic(data: object, path: str | os.PathLike[str], *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (``default=str``, a final newline) to ``path`` atomically.

    Example:
        >>> import json, tempfile
        >>> json.loads(write_json_atomic({"a": 1}, Path(tempfile.mkdtemp()) / "r.json").read_text())
        {'a': 1}
    """
    return write_text_atomic(json.dumps(data, indent=indent, default=str) + "\n", path)


__all__ = ["write_atomic", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
