"""Training progress on the console: a tqdm bar with an ETA on a terminal, a line every ~10% otherwise.

:class:`ConsoleProgress` is an :data:`~trainer.models.training.EpochHook`: install it with
:func:`~trainer.models.training.reporting_epochs` (``trainer.workflow`` does) and every training
run (``fit``) inside the block reports to it. Each run (one ``desc``) gets its own bar; when the
stream is not a terminal (a log file, cron, CI) it prints one plain line per tenth of the epochs
instead, with the elapsed time and the ETA, so a log shows the job is alive without drowning in
carriage returns.

Example:
    >>> import io
    >>> from trainer.models.training import EpochProgress
    >>> stream = io.StringIO()
    >>> hook = ConsoleProgress(stream, clock=iter(range(100)).__next__)
    >>> for epoch in range(1, 11):
    ...     hook(EpochProgress("demo", epoch, 10, 0.5))
    >>> hook(EpochProgress("demo", 10, 10, 0.5, finished=True))
    >>> stream.getvalue().splitlines()[0]
    'demo: epoch 1/10 (10%), loss 0.5000, 00:01 elapsed, ETA 00:09'
    >>> len(stream.getvalue().splitlines())
    10
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from tqdm import tqdm

from trainer.models.training import EpochHook, EpochProgress

#: Plain progress lines per run (off a terminal): one per tenth of the epochs.
LINES_PER_RUN = 10


class ConsoleProgress:
    """Reports :class:`EpochProgress` to ``stream`` (default stderr); see the module docstring."""

    def __init__(self, stream: TextIO | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._run: str | None = None
        self._started = 0.0
        self._lines = 0

    def __call__(self, progress: EpochProgress) -> None:
        label = progress.desc or "training"
        if self._run != label:
            self._start(label, progress.epochs)
        if self.interactive:
            self._bar.update(progress.epoch - self._bar.n)
            self._bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)
        elif not progress.finished and progress.epoch * LINES_PER_RUN // progress.epochs > self._lines:
            self._lines = progress.epoch * LINES_PER_RUN // progress.epochs
            elapsed = self.clock() - self._started
            remaining = elapsed / progress.epoch * (progress.epochs - progress.epoch)
            self.stream.write(
                f"{label}: epoch {progress.epoch}/{progress.epochs} ({progress.epoch / progress.epochs:.0%}), "
                f"loss {progress.loss:.4f}, {tqdm.format_interval(elapsed)} elapsed, "
                f"ETA {tqdm.format_interval(remaining)}\n"
            )
            self.stream.flush()
        if progress.finished:
            self.close()

    def _start(self, label: str, epochs: int) -> None:
        self.close()
        self._run, self._started, self._lines = label, self.clock(), 0
        if self.interactive:
            self._bar = tqdm(total=epochs, desc=label, unit="epoch", file=self.stream, dynamic_ncols=True)

    def close(self) -> None:
        """End the current bar (if any); the next report starts a new run."""
        if self._bar is not None:
            self._bar.close()
        self._bar, self._run = None, None


def console_hook(progress: bool | EpochHook) -> EpochHook | None:
    """``True`` -> a :class:`ConsoleProgress` on stderr, ``False`` -> None, a callable -> itself."""
    if callable(progress):
        return progress
    return ConsoleProgress() if progress else None


__all__ = ["ConsoleProgress", "LINES_PER_RUN", "console_hook"]
