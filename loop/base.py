"""The base predictor of a search space: pre-trained on public/source devices and registered as ``_pretrained``.

``farm add-device`` transfers the space's current base. This module makes
one from a store (``make pretrain``, ``make demo``, the end-to-end test):

1. :func:`import_space` appends one search space of a public table (HELP's)
   to a store, through :mod:`farm.importer` (idempotent: the filtered copy is
   written once beside the store and re-imports add nothing);
2. :func:`pretrain_base` pre-trains a method on source devices of the store,
   the held-out slice dropped (:mod:`trainer.holdout`), registers the result
   as the next version of ``(space, _pretrained)`` and promotes it when there
   is no current base (a later one is promoted only by ``--promote``, or by
   ``trainer nightly``'s held-out comparison).

``trainer nightly`` re-pre-trains bases from the store on its own schedule;
this is the one-shot, explicit version with a chosen device split.

Command line (``make pretrain`` runs it with the defaults)::

    python -m loop.base --store measurements --registry registry \\
        [--table data/help_latency.parquet] [--space nasbench201] [--sources a,b,c | --task ND] \\
        [--source-samples 900] [--method M] [--epochs N] [--seed 0] [--promote] [--json]

Example:
    >>> build_parser().parse_args(["--store", "s", "--registry", "r"]).task
    'ND'
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from farm.errors import UserError, exit_on_user_error
from farm.importer import import_table
from farm.store import Store
from loop.add_device import marked
from farm.atomic import write_atomic
from trainer import workflow
from trainer.data import load_table
from trainer.watermark import read_space
from trainer.evaluate import TASKS
from trainer.versions import BASE, PredictorRegistry, Version

#: The public table shipped with the project (``data/README.md`` says where it comes from).
HELP_TABLE = Path(__file__).resolve().parents[1] / "data" / "help_latency.parquet"
#: Archs per source by default: HELP's published NB201 pre-training count.
DEFAULT_SOURCE_SAMPLES = 900


@dataclass(frozen=True)
class BaseOptions:
    """How to pre-train a base: which store, registry, space, sources, method."""

    store: Path
    registry: Path
    space: str = "nasbench201"
    sources: Sequence[str] = TASKS["ND"].sources
    source_samples: int | None = DEFAULT_SOURCE_SAMPLES
    method: str | None = None
    seed: int = 0
    hyper: Mapping[str, Any] = field(default_factory=dict)
    promote: bool = False


def import_space(table: Path, store: Path, space: str, devices: Sequence[str] | None = None) -> int:
    """Import ``space``'s rows of ``table`` (only ``devices`` when given) into ``store``; rows added (0 on a re-run).

    The filtered copy is written once, beside the store, as
    ``.imports/<store name>-<table stem>-<space>[-<n>-devices].parquet``, and imported from there:
    the importer recognises a file it has seen by its content, so reusing the same copy is what makes
    a re-run add nothing (a copy written again by another pyarrow version might differ by a byte).
    """
    if not Path(table).is_file():
        raise UserError(f"{table}: no such file; pass --table with a Parquet latency table (e.g. {HELP_TABLE})")
    suffix = f"-{len(devices)}-devices" if devices else ""
    store = Path(store)
    copy = store.resolve().parent / ".imports" / f"{store.name}-{Path(table).stem}-{space}{suffix}.parquet"
    if not copy.is_file():
        data = pq.read_table(table)
        keep = pc.equal(data["search_space"], space)
        if devices:
            keep = pc.and_(keep, pc.is_in(data["device"], value_set=pa.array(list(devices))))
        selected = data.filter(keep)
        if selected.num_rows == 0:
            raise UserError(f"{table}: no rows of space {space!r}{' for ' + ', '.join(devices) if devices else ''}")
        write_atomic(copy, lambda handle: pq.write_table(selected, handle))
    return import_table(copy, store, source=Path(table).name)


def pretrain_base(options: BaseOptions, *, say: Any = print) -> tuple[Version, bool]:
    """Pre-train, register and (when there is no current base, or ``promote``) promote; (version, promoted)."""
    load_table(options.store, options.space)  # a missing or empty store: one clear line
    trainable = read_space(Store(options.store), options.space).trainable
    sources = [trainable.resolve(name) for name in options.sources]
    result = marked(workflow.pretrain(trainable, sources, method=options.method, source_samples=options.source_samples,
                                      cap_source_samples=True, seed=options.seed, hyper=options.hyper, progress=True,
                                      say=say))
    registry = PredictorRegistry(options.registry)
    options.registry.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=options.registry, prefix=".pretrain-"))
    try:
        folder = workflow.save(result, staging / "predictor")
        note = (f"python -m loop.base: {result.method} on {len(result.sources)} sources of {options.space}, "
                f"{options.source_samples or 'all'} archs each, seed {options.seed}, held-out slice excluded")
        version = registry.add(options.space, BASE, folder, note=note)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    promote = options.promote or registry.current(options.space, BASE) is None
    if promote:
        reason = "--promote" if options.promote else "no current base"
        registry.promote(options.space, BASE, version.number, reason=reason)
    return version, promote


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loop.base",
                                     description="Import a public table and register a pre-trained base predictor.")
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--registry", required=True, type=Path)
    parser.add_argument("--table", type=Path, default=HELP_TABLE, help="public table to import first ('' = none)")
    parser.add_argument("--space", default="nasbench201")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--task", choices=sorted(TASKS), default="ND", help="HELP's source devices (default ND)")
    which.add_argument("--sources", help="comma-separated source devices")
    parser.add_argument("--source-samples", type=int, default=DEFAULT_SOURCE_SAMPLES)
    parser.add_argument("--method", default=None, help="default: the project's best")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--promote", action="store_true", help="make the new base current even if one exists")
    parser.add_argument("--json", action="store_true")
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sources = [s for s in (args.sources or "").split(",") if s] or list(TASKS[args.task].sources)
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    added = import_space(args.table, args.store, args.space) if str(args.table) else 0
    say(f"import: {added} rows added to {args.store}" if added else f"import: {args.table} already in {args.store}")
    options = BaseOptions(args.store, args.registry, args.space, sources, args.source_samples, args.method, args.seed,
                          {"epochs": args.epochs} if args.epochs else {}, args.promote)
    version, promoted = pretrain_base(options, say=say)
    line = f"registered {version.path} ({'current' if promoted else 'not promoted: a current base exists'})"
    if args.json:
        json.dump({"version": version.number, "path": str(version.path), "promoted": promoted, "imported": added},
                  sys.stdout)
        sys.stdout.write("\n")
    else:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
