"""An exclusive advisory lock on a file (``fcntl.flock``) that names its holder.

The holder writes its pid, host, start time and command line into the lock
file once it has the lock, so a process that finds the lock taken can say who
holds it. The kernel drops an ``flock`` when its holder exits, however it
exits (``kill -9`` included), so a crashed holder never leaves a stale lock:
the next process simply gets it and overwrites the old holder's details.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "nightly.lock"
    >>> with FileLock(path):
    ...     try:
    ...         FileLock(path).acquire()
    ...     except LockHeld as held:
    ...         held.holder.pid == os.getpid()
    True
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Holder:
    """Who holds a lock (as written in the lock file; fields empty when unreadable)."""

    pid: int
    host: str
    started_at: str
    command: str

    def describe(self) -> str:
        """``pid 123 on host h since 2026-...: trainer nightly ...``"""
        if not self.pid:
            return "an unknown process (its details are not written yet)"
        return f"pid {self.pid} on host {self.host} since {self.started_at} ({self.command})"

    @classmethod
    def current(cls) -> "Holder":
        """This process."""
        return cls(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   " ".join(["trainer" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name,
                             *sys.argv[1:]])[:300])

    @classmethod
    def parse(cls, text: str) -> "Holder":
        """The holder recorded in a lock file's text (empty fields when it is not valid JSON)."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started_at"]), str(data["command"]))
        except (ValueError, KeyError, TypeError):
            return cls(0, "", "", "")


class LockHeld(Exception):
    """The lock is taken by another process (or another :class:`FileLock` of this one)."""

    def __init__(self, path: Path, holder: Holder) -> None:
        super().__init__(f"{path}: held by {holder.describe()}")
        self.path = path
        self.holder = holder


class FileLock:
    """``with FileLock(path):`` holds an exclusive ``flock`` on ``path`` (created if missing).

    ``wait_s`` > 0 retries for that long before raising :class:`LockHeld`.
    """

    def __init__(self, path: str | os.PathLike[str], *, wait_s: float = 0.0) -> None:
        self.path = Path(path)
        self.wait_s = wait_s
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and record this process as holder; :class:`LockHeld` if another has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = Holder.parse(self.path.read_text(errors="replace"))
                    os.close(fd)
                    raise LockHeld(self.path, holder) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(Holder.current())) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content names the last holder)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.release()


__all__ = ["FileLock", "Holder", "LockHeld"]
