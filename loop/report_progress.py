"""Progress of the slow part of ``farm report``: a tqdm bar on a terminal, one plain line per step otherwise.

Everything goes to stderr, so ``farm report --json`` keeps stdout pure JSON.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> steps = StepProgress(2, "curves", stream)
    >>> steps.step("pixel2 n=5 seed 0")
    >>> steps.step("pixel2 n=5 seed 1")
    >>> steps.close()
    >>> stream.getvalue().splitlines()
    ['curves 1/2: pixel2 n=5 seed 0', 'curves 2/2: pixel2 n=5 seed 1']
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


class StepProgress:
    """``total`` steps called ``label``; silent when ``enabled`` is False."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        interactive = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = tqdm(total=total, desc=label, unit="step", file=self.stream) if interactive else None

    def step(self, what: str) -> None:
        """One step done; ``what`` says which."""
        self.done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(1)
        elif self.enabled:
            self.stream.write(f"{self.label} {self.done}/{self.total}: {what}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["StepProgress"]
