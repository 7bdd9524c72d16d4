"""The ``farm`` console script: farm's own subcommands plus those that join farm and trainer.

``farm.cli`` builds the parser of the farm's subcommands (``status``,
``measure``, ``devices``, ``import``); this module adds the ones that need the
trainer too: ``add-device`` (:mod:`loop.add_device`) and ``report``
(:mod:`loop.report`). ``python -m farm.cli`` stays the farm alone (it cannot
import this package: the farm never depends on the trainer).

Example:
    >>> build_parser().parse_args(["add-device", "pixel7", "--samples", "10"]).samples
    10
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Callable, Sequence

from farm import cli as farm_cli
from farm.errors import exit_on_user_error

#: Modules whose ``register(subparsers)`` adds a subcommand, in help order.
SUBCOMMAND_MODULES: tuple[str, ...] = ("loop.add_device", "loop.report")


def registrars() -> list[Callable[[Any], Any]]:
    """``register`` of every module of :data:`SUBCOMMAND_MODULES` that exists (``loop.report`` may not yet)."""
    found = []
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        found.append(module.register)
    return found


def build_parser() -> argparse.ArgumentParser:
    """farm's parser with the loop's subcommands added."""
    return farm_cli.build_parser(extra=registrars())


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``farm`` console script."""
    return farm_cli.main.__wrapped__(argv, parser=build_parser())  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
