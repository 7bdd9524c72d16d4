"""Jetson ``nvpmodel -q`` (query the power mode).

The answer is two lines, the mode name and its id::

    NV Power Mode: 15W
    0

Run without root, older L4T releases add ``NVPM ERROR: ...`` lines (they fail to read
the EMC cap) after a valid answer; those are kept in ``errors`` and do not invalidate
the mode. Output with ``NVPM ERROR`` lines and no mode is refused with the first error.

Example:
    >>> parse("NV Power Mode: MAXN\\n0").name
    'MAXN'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.parsers.common import UnparsableOutput

__all__ = ["PowerMode", "parse"]

TOOL = "nvpmodel"

_MODE = re.compile(r"^NV Power Mode:\s*(?P<name>.+?)\s*$")
_ID = re.compile(r"^\d{1,9}$")
_ERROR = "NVPM ERROR:"


@dataclass(frozen=True)
class PowerMode:
    """The active power mode: its name (``15W``, ``MAXN``) and numeric id, plus any NVPM errors."""

    name: str
    mode_id: int | None
    errors: list[str] = field(default_factory=list)


def parse(text: str, *, source: str = "output") -> PowerMode:
    """Parse ``nvpmodel -q``; refuse text without an ``NV Power Mode:`` line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line[len(_ERROR):].strip() for line in lines if line.startswith(_ERROR)]
    for index, line in enumerate(lines):
        match = _MODE.match(line)
        if match:
            following = lines[index + 1] if index + 1 < len(lines) else ""
            mode_id = int(following) if _ID.match(following) else None
            return PowerMode(match.group("name"), mode_id, errors)
    if errors:
        raise UnparsableOutput(TOOL, f"nvpmodel reported an error and no mode: {errors[0]}", source=source)
    raise UnparsableOutput(TOOL, "no `NV Power Mode:` line", source=source, line=lines[0] if lines else None)
