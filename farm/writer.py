"""A background writer that appends rows to the store while the campaign keeps dispatching.

Appending is disk-bound (one Parquet file per partition, each fsynced), so the driver
hands each batch of finished jobs to this thread and goes straight back to dispatching:
devices never wait for the disk. Batches queued while a write is under way are
combined into one append (fewer, larger files). Batches are written in order; an
error in the writer is raised again in the caller's thread.

Example:
    >>> import tempfile
    >>> from farm.store import Store
    >>> writer = StoreWriter(Store(tempfile.mkdtemp()))
    >>> writer.submit([], tag="nothing")
    >>> [tag for tag, _ in writer.close()]
    ['nothing']
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Mapping, Sequence

from farm.store import Store

_STOP = object()


class StoreWriter:
    """Appends submitted rows to ``store`` in a daemon thread; :meth:`completed` says what is durable."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._done: queue.Queue[tuple[Any, float]] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="farm-store-writer", daemon=True)
        self._thread.start()

    def submit(self, rows: Sequence[Mapping[str, Any]], tag: Any) -> None:
        """Queue ``rows`` for appending; ``tag`` comes back from :meth:`completed` once they are stored."""
        self._raise_error()
        self._inbox.put((list(rows), tag))

    def completed(self) -> list[tuple[Any, float]]:
        """``(tag, stored_at)`` for every batch written since the last call (never blocks)."""
        self._raise_error()
        done = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                return done

    @property
    def running(self) -> bool:
        """Whether the thread still accepts work (it stops after :meth:`close` or an error)."""
        return self._thread.is_alive()

    def close(self) -> list[tuple[Any, float]]:
        """Write everything still queued, stop the thread, return the last completions."""
        self._inbox.put(_STOP)
        self._thread.join()
        return self.completed()

    def _work(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._inbox.get()]
            while True:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            items = [item for item in batch if item is not _STOP]
            rows = [row for item_rows, _ in items for row in item_rows]
            try:
                if rows:
                    self.store.append(rows)
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                self._error = error
                return
            stored_at = time.time()
            for _, tag in items:
                self._done.put((tag, stored_at))

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
