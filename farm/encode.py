"""``farm encode``: zero-cost proxies of a space's archs as Ray tasks, into the store's encodings table.

::

    farm encode --space nasbench201 --all                  # every NB201 arch, all 13 proxies
    farm encode --space fbnet --sample 500 --seed 1
    farm encode --archs my_archs.txt --proxies snip,nwot --store /data/latfarm

Each Ray task (one CPU) scores a chunk of archs with :func:`farm.proxies.compute.score_arch`
(single-threaded, deterministic) on the space's fixed input spec
(:data:`farm.proxies.inputs.DEFAULT_SPECS`) and returns one row per (arch, proxy); the driver
appends the rows to ``<store>/_encodings`` (:class:`farm.proxies.table.EncodingsTable`) as
chunks come back, so Ctrl-C or a crash loses at most the chunks in flight. Running the same
command again skips every (space, arch, proxy, input spec, version) already ``ok`` or
``undefined`` and computes ``failed`` ones again. A Ray task that dies (a worker killed for
memory) leaves ``failed`` rows naming it, never a crash of the command. One run at a time per
store: a run holds ``<store>/.encode.lock`` (:func:`farm.store_lock.lock_encodings`) from planning
to its last row; a second is refused, or waits ``--wait-for-lock SECONDS``.

Progress goes to stderr: a tqdm bar on a terminal, one line per chunk otherwise
(:class:`farm.campaign_progress.CampaignProgress`). Exit status: 0 when no proxy failed (an
``undefined`` proxy is an outcome, not a failure), 1 otherwise, 2 for bad input (unknown space or
proxy, a bad ``--archs`` line, a ``--store`` that cannot be written or read), checked before Ray
starts; 130 on Ctrl-C, with the number of rows stored.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="farm")
    >>> _ = register(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["encode", "--sample", "3", "--proxies", "snip,zen"])
    >>> args.space, args.sample, args.proxies, args.chunk_size
    ('nasbench201', 3, 'snip,zen', 8)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from farm import __version__
from farm.errors import Interrupted, UserError
from farm.proxies.inputs import InputSpec

__all__ = ["DEFAULT_CHUNK_SIZE", "EncodeConfig", "EncodeSummary", "encode_chunk", "register", "run", "run_encode"]

#: Archs per Ray task: enough to pay for the task's start, few enough to spread over the CPUs.
DEFAULT_CHUNK_SIZE = 8
#: Buffered rows are appended once this many have come back (and always at the end).
FLUSH_ROWS = 2000
#: ... or once this many seconds have passed since the last append.
FLUSH_SECONDS = 10.0


@dataclass(frozen=True)
class EncodeConfig:
    """One ``farm encode`` run: which archs and proxies, on which input spec, into which store."""

    space: str
    archs: Sequence[str]
    proxies: Sequence[str]
    spec: InputSpec
    store_root: str | Path
    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: bool = True


@dataclass
class EncodeSummary:
    """What a run did: (arch, proxy) pairs by outcome, and how long it took."""

    space: str
    input_spec: str
    store: str
    archs: int
    proxies: list[str]
    skipped: int = 0
    ok: int = 0
    undefined: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def count(self, row: dict[str, Any]) -> None:
        """Add one stored row's outcome."""
        setattr(self, row["status"], getattr(self, row["status"]) + 1)
        if row["status"] != "ok":
            reason = f"{row['proxy']} {row['status']}: {row['error']}"[:160]
            self.errors[reason] = self.errors.get(reason, 0) + 1

    def render(self) -> str:
        """A few lines for the console: totals, then the most common reasons a proxy has no value.

        Example:
            >>> EncodeSummary("nasbench201", "gaussian:b16:r16:c10:l4:s0", "m", 3, ["snip"], ok=3).render()
            'encode nasbench201 (gaussian:b16:r16:c10:l4:s0): 3 archs x 1 proxies: 3 ok, 0 undefined, 0 failed, 0 skipped (already in m/_encodings) in 0.0 s'
        """
        lines = [
            f"encode {self.space} ({self.input_spec}): {self.archs} archs x {len(self.proxies)} proxies: "
            f"{self.ok} ok, {self.undefined} undefined, {self.failed} failed, {self.skipped} skipped "
            f"(already in {self.store}/_encodings) in {self.seconds:.1f} s"
        ]
        for reason, times in sorted(self.errors.items(), key=lambda item: -item[1])[:5]:
            lines.append(f"  {times} x {reason}")
        return "\n".join(lines)


def encode_chunk(space: str, archs: Sequence[str], proxies: Sequence[Sequence[str]], spec_key: str) -> list[dict[str, Any]]:
    """Score ``archs[i]`` with ``proxies[i]``; one encodings-table row per (arch, proxy). Runs in a Ray worker."""
    import torch

    from farm.proxies import version
    from farm.proxies.compute import score_arch

    spec = InputSpec.from_key(spec_key)
    host = socket.gethostname()
    rows = []
    for arch, names in zip(archs, proxies, strict=True):
        for outcome in score_arch(space, arch, names, spec):
            rows.append({
                "space": space, "arch": arch, "proxy": outcome.proxy, "value": outcome.value,
                "status": outcome.status, "error": outcome.error, "input_spec": spec_key,
                "version": version(outcome.proxy), "computed_at": datetime.now(timezone.utc), "host": host,
                "torch_version": torch.__version__, "farm_version": __version__,
            })
    return rows


def plan(config: EncodeConfig, done: set[tuple[str, str, int]]) -> list[tuple[str, tuple[str, ...]]]:
    """``(arch, proxies still to compute)`` for every arch of ``config`` with something left (archs once each).

    Example:
        >>> spec = InputSpec(8, 8, 10, 4)
        >>> config = EncodeConfig("nasbench201", ["a", "b", "a"], ["snip", "zen"], spec, "m")
        >>> plan(config, {("a", "snip", 1), ("b", "snip", 1), ("b", "zen", 1)})
        [('a', ('zen',))]
    """
    from farm.proxies import version

    todo = []
    for arch in dict.fromkeys(config.archs):
        left = tuple(name for name in config.proxies if (arch, name, version(name)) not in done)
        if left:
            todo.append((arch, left))
    return todo


def run_encode(config: EncodeConfig, *, on_rows: Callable[[list[dict[str, Any]]], None] | None = None) -> EncodeSummary:
    """Compute and store every missing proxy of ``config`` with Ray tasks; see the module docstring.

    Ray must be initialised unless everything is in the table already (then nothing runs).
    """
    import ray

    from farm.campaign_progress import CampaignProgress
    from farm.proxies.table import EncodingsTable

    started = time.monotonic()
    table = EncodingsTable(config.store_root)
    archs = list(dict.fromkeys(config.archs))
    summary = EncodeSummary(
        config.space, config.spec.key, str(config.store_root), len(archs), list(config.proxies)
    )
    todo = plan(config, table.done_keys(config.space, config.spec.key))
    summary.skipped = len(archs) * len(config.proxies) - sum(len(names) for _, names in todo)
    chunks = [todo[i : i + config.chunk_size] for i in range(0, len(todo), config.chunk_size)]
    task = ray.remote(num_cpus=1, max_retries=0)(encode_chunk)
    pending = {
        task.remote(config.space, [arch for arch, _ in chunk], [names for _, names in chunk], config.spec.key): chunk
        for chunk in chunks
    }
    finished = 0
    progress = CampaignProgress(len(todo), f"encode {config.space}", enabled=config.progress)
    buffer: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal buffer, last_flush
        if buffer:
            table.append(buffer)
            for row in buffer:
                summary.count(row)
            if on_rows is not None:
                on_rows(buffer)
        buffer, last_flush = [], time.monotonic()

    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                chunk = pending.pop(ref)
                rows = _chunk_rows(ref, chunk, config)
                buffer.extend(rows)
                failed_archs = len({row["arch"] for row in rows if row["status"] == "failed"})
                finished += 1
                progress.job_done("ray", f"chunk {finished}/{len(chunks)}", ok=len(chunk) - failed_archs, failed=failed_archs)
            if len(buffer) >= FLUSH_ROWS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        flush()
        progress.close()
        summary.seconds = time.monotonic() - started
    return summary


def _chunk_rows(ref: Any, chunk: list[tuple[str, tuple[str, ...]]], config: EncodeConfig) -> list[dict[str, Any]]:
    """The chunk's rows; a task that died gives ``failed`` rows naming the Ray error instead."""
    import ray
    import torch

    from farm.proxies import version

    try:
        return ray.get(ref)  # type: ignore[no-any-return]
    except ray.exceptions.RayError as error:
        message = f"ray task failed: {type(error).__name__}: {' '.join(str(error).split())}"[:500]
    now = datetime.now(timezone.utc)
    return [
        {
            "space": config.space, "arch": arch, "proxy": name, "value": None, "status": "failed", "error": message,
            "input_spec": config.spec.key, "version": version(name), "computed_at": now,
            "host": socket.gethostname(), "torch_version": torch.__version__, "farm_version": __version__,
        }
        for arch, names in chunk
        for name in names
    ]


# ------------------------------------------------------------------- command line


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``farm encode`` to the ``farm`` CLI's subparsers (``farm.cli.PLUGIN_MODULES`` or ``build_parser(extra=...)``)."""
    parser = subparsers.add_parser(
        "encode",
        help="compute the 13 zero-cost proxies of archs (Ray tasks) into the store's encodings table",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    from farm.measure_command import add_arch_selection

    parser.add_argument("--space", default="nasbench201", help="search space: nasbench201, fbnet or ofa")
    add_arch_selection(parser, "encode")
    parser.add_argument("--store", default="measurements", help="store folder; the table goes to <store>/_encodings")
    parser.add_argument("--proxies", metavar="A,B", help="only these proxies (default: all 13)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="archs per Ray task")
    parser.add_argument(
        "--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
        help="when another encode run holds the store's encodings table, wait up to SECONDS for it, then compute "
        "what it has not; default 0: refuse at once with one line naming the holder (exit 2)",
    )
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else start a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(handler=run)
    return parser


def config_from_args(args: argparse.Namespace) -> EncodeConfig:
    """Check everything ``args`` names (one :class:`UserError` line each) and return the run's config."""
    from farm import spaces
    from farm.measure_command import check_lock_wait, select_archs
    from farm.proxies import parse_names
    from farm.proxies.inputs import default_spec
    from farm.proxies.table import EncodingsTable
    from farm.store import StoreError
    from farm.user_files import check_store

    try:
        space = spaces.get(args.space)
    except KeyError as error:
        raise UserError(f"--space: {error.args[0]}") from None
    try:
        proxies = parse_names(args.proxies)
    except ValueError as error:
        raise UserError(f"--proxies {args.proxies}: {error}") from None
    if args.chunk_size < 1:
        raise UserError(f"--chunk-size {args.chunk_size}: must be >= 1")
    check_lock_wait(args.wait_for_lock)
    archs = select_archs(args, space)
    check_store("--store", args.store)
    try:
        EncodingsTable(args.store).read(columns=["arch"])
    except StoreError as error:
        raise UserError(
            f"--store {args.store}: {' '.join(str(error).split())}; move the damaged file out of "
            f"{Path(args.store) / '_encodings'} and re-run (its proxies are computed again)"
        ) from None
    return EncodeConfig(
        space=space.name, archs=archs, proxies=proxies, spec=default_spec(space.name), store_root=args.store,
        chunk_size=args.chunk_size, progress=not args.quiet and not args.json,
    )


def run(args: argparse.Namespace) -> int:
    """The ``farm encode`` handler: validate, start or join Ray, encode, print the summary; 0 unless a proxy failed."""
    config = config_from_args(args)
    import ray

    from farm.run import connect

    stored = 0

    def count(rows: list[dict[str, Any]]) -> None:
        nonlocal stored
        stored += len(rows)

    from farm.measure_command import say_waiting
    from farm.proxies.table import EncodingsTable
    from farm.store_lock import lock_encodings

    run_id = f"encode-{config.space}-{socket.gethostname()}-{os.getpid()}"
    with lock_encodings(config.store_root, run_id, wait_s=args.wait_for_lock, on_wait=say_waiting):
        # planned under the lock: what a run that held it before stored is skipped
        nothing_to_do = not plan(config, EncodingsTable(config.store_root).done_keys(config.space, config.spec.key))
        started_here = False if nothing_to_do else connect(args.address)
        try:
            summary = run_encode(config, on_rows=count)
        except KeyboardInterrupt:
            raise Interrupted(
                f"{stored} encodings rows stored in {Path(config.store_root) / '_encodings'}; "
                "re-run the same command to resume (proxies already computed are skipped)"
            ) from None
        finally:
            if started_here:
                ray.shutdown()
    if args.json:
        json.dump(asdict(summary), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(summary.render())
    return 1 if summary.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m farm.encode ...``: the ``farm`` CLI with this subcommand added (``encode`` is implied)."""
    from farm.cli import build_parser
    from farm.cli import main as farm_main

    return farm_main(["encode", *(argv if argv is not None else sys.argv[1:])], parser=build_parser(extra=[register]))


if __name__ == "__main__":
    sys.exit(main())
