"""One progress line per step of a long command, and the wall time each step took.

``add-device`` and the demo are a handful of steps of very different
lengths (a probe, a campaign, a transfer, ...). :class:`StepClock` prints
``[i/n] name: what happened (1.2 s)`` when a step ends, on stderr by default,
so stdout stays clean for ``--json``, and keeps the seconds per step for the
report.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> clock = StepClock(["probe", "sample"], stream=stream, timer=iter([0.0, 1.5, 1.5, 2.0]).__next__)
    >>> with clock.step("probe") as step:
    ...     step.note("reachable")
    >>> with clock.step("sample") as step:
    ...     step.note("20 archs")
    >>> stream.getvalue().splitlines()
    ['[1/2] probe: reachable (1.5 s)', '[2/2] sample: 20 archs (0.5 s)']
    >>> clock.seconds
    {'probe': 1.5, 'sample': 0.5}
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TextIO


@dataclass
class Step:
    """The step in progress; :meth:`note` sets the text its line ends with."""

    name: str
    text: str = "done"

    def note(self, text: str) -> None:
        self.text = text


class StepClock:
    """Times named steps and prints one line as each ends (nothing when ``stream`` is None)."""

    def __init__(self, names: Sequence[str], *, stream: TextIO | None = sys.stderr,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.names = list(names)
        self.stream = stream
        self.timer = timer
        self.seconds: dict[str, float] = {}

    def announce(self, text: str) -> None:
        """A line of its own (e.g. before a step that shows its own progress bar)."""
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time the block as step ``name``; its line is printed when the block ends without an error."""
        current = Step(name)
        started = self.timer()
        yield current
        elapsed = self.timer() - started
        self.seconds[name] = round(elapsed, 3)
        index = self.names.index(name) + 1 if name in self.names else len(self.seconds)
        self.announce(f"[{index}/{len(self.names)}] {name}: {current.text} ({elapsed:.1f} s)")


__all__ = ["Step", "StepClock"]
