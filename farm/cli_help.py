"""How every latfarm command presents itself: each option's default in ``--help``, and ``--version``.

:func:`apply_help_conventions` is called once on a finished parser (``farm``,
``measure.py``, ``trainer``): it gives the parser and every subcommand parser,
however deep, :class:`DefaultsHelpFormatter`, and adds ``--version`` to the top
parser. The formatter appends ``(default: X)`` to an option's help unless the
help already says its default, or the default is empty (``None``, ``False``,
an empty list): "default: None" tells a reader nothing.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> _ = parser.add_argument("--store", default="measurements", help="Parquet store folder")
    >>> apply_help_conventions(parser, version="0.1.0")
    >>> "Parquet store folder (default: measurements)" in parser.format_help()
    True
"""

from __future__ import annotations

import argparse
from typing import Iterator

__all__ = ["DefaultsHelpFormatter", "apply_help_conventions", "parsers_of"]


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and appends a non-empty default to options whose help does not name one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})" if text else f"(default: {shown.replace('%', '%%')})"


def parsers_of(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser below it, each once."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())


def apply_help_conventions(parser: argparse.ArgumentParser, *, version: str) -> None:
    """Give ``parser`` and all its subcommands :class:`DefaultsHelpFormatter`, and ``parser`` a ``--version``."""
    for each in parsers_of(parser):
        each.formatter_class = DefaultsHelpFormatter
    if "--version" not in parser._option_string_actions:
        parser.add_argument("--version", action="version", version=f"%(prog)s {version}",
                            help="print the version and exit")
