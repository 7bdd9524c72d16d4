"""A campaign's progress: a tqdm bar on a terminal, one plain line per finished job otherwise.

Under ``ray submit`` (or with output sent to a log file) stderr is no terminal, so
a bar would show nothing useful until the end; each job that has come back
prints one line instead, with the running totals and an ETA, as
``loop.report_progress`` and ``trainer.progress`` do for their work. Everything
goes to stderr, so ``--json`` keeps stdout pure JSON.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> progress = CampaignProgress(10, "campaign c-1", stream, clock=iter([0.0, 30.0, 60.0]).__next__)
    >>> progress.job_done("pi4", "pi4-torch-b1-00000", ok=4, failed=1)
    >>> progress.not_measured("pixel2", 5, "device marked down")
    >>> progress.close()
    >>> print(stream.getvalue(), end="")
    campaign c-1: 5/10 archs (ok 4, failed 1): pi4 job pi4-torch-b1-00000, 00:30 elapsed, ETA 00:30
    campaign c-1: 10/10 archs (ok 4, failed 1, not measured 5): pixel2 device marked down, 01:00 elapsed, ETA 00:00
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from tqdm import tqdm

__all__ = ["CampaignProgress"]


class CampaignProgress:
    """``total`` archs to measure, reported to ``stream`` (default stderr); silent when ``enabled`` is False."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self.ok = self.failed = self.skipped = 0
        interactive = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = (
            tqdm(total=total, unit="arch", desc=label, file=self.stream, dynamic_ncols=True) if interactive else None
        )

    @property
    def done(self) -> int:
        """Archs with an outcome so far: measured, failed, or given up (not measured)."""
        return self.ok + self.failed + self.skipped

    def job_done(self, device: str, job_id: str, *, ok: int, failed: int) -> None:
        """A job's rows are stored: ``ok`` archs measured (ok or unstable), ``failed`` archs failed."""
        self.ok += ok
        self.failed += failed
        self._advance(ok + failed, f"{device} job {job_id}")

    def not_measured(self, device: str, count: int, reason: str) -> None:
        """``count`` archs of ``device`` will not be measured (the device is down)."""
        self.skipped += count
        self._advance(count, f"{device} {reason}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _advance(self, count: int, what: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(ok=self.ok, failed=self.failed, refresh=False)
            self._bar.update(count)
            return
        elapsed = self.clock() - self.started
        left = max(0, self.total - self.done)
        eta = tqdm.format_interval(elapsed / self.done * left) if self.done else "unknown"
        skipped = f", not measured {self.skipped}" if self.skipped else ""
        self.stream.write(
            f"{self.label}: {self.done}/{self.total} archs (ok {self.ok}, failed {self.failed}{skipped}): {what}, "
            f"{tqdm.format_interval(elapsed)} elapsed, ETA {eta}\n"
        )
        self.stream.flush()
