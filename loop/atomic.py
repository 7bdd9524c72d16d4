"""Atomic file writes for everything ``loop`` produces (predictions, reports, figures).

A file is written under a dot-prefixed temporary name in its folder, flushed
and fsynced, then renamed over the final name, so a reader (or a crash) sees
either the old file or the complete new one, never half of it.

Example:
    >>> import tempfile
    >>> path = write_text_atomic("hello\\n", Path(tempfile.mkdtemp()) / "a" / "note.md")
    >>> path.read_text()
    'hello\\n'
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, rename it to ``path``."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
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
    return write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


__all__ = ["write_atomic", "write_text_atomic"]
