"""Android ``getprop``: the full ``[key]: [value]`` listing, or one bare value.

Example:
    >>> parse("[ro.product.model]: [Pixel 8]\\n[ro.product.cpu.abilist32]: []")
    {'ro.product.model': 'Pixel 8', 'ro.product.cpu.abilist32': ''}
    >>> parse_value("GT-P7510\\n")
    'GT-P7510'
"""

from __future__ import annotations

import re

from agents.parsers.common import UnparsableOutput

__all__ = ["parse", "parse_value"]

TOOL = "getprop"
_PROPERTY = re.compile(r"^\[(?P<key>[^\]]+)\]: \[(?P<value>.*)\]$")


def parse(text: str, *, source: str = "output", strict: bool = True) -> dict[str, str]:
    """All ``[key]: [value]`` lines; refuse text with other non-empty lines unless ``strict`` is off.

    Some vendor properties hold multi-line values; a probe passes ``strict=False`` to skip
    their continuation lines rather than lose every property.
    """
    properties: dict[str, str] = {}
    for line in (line.rstrip() for line in text.splitlines()):
        if not line:
            continue
        match = _PROPERTY.match(line)
        if match is None and not strict:
            continue
        if match is None:
            raise UnparsableOutput(TOOL, "not a `[key]: [value]` line (for `getprop KEY` use parse_value)",
                                   source=source, line=line)
        properties[match.group("key")] = match.group("value")
    return properties


def parse_value(text: str, *, source: str = "output") -> str:
    """The answer of ``getprop KEY``: one line, empty when the property is unset."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise UnparsableOutput(TOOL, f"{len(lines)} lines where `getprop KEY` prints one", source=source,
                               line=lines[1])
    return lines[0] if lines else ""
