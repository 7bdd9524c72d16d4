"""The ``measure.py`` / ``farm measure`` command: options, validation, then a campaign.

Everything the user typed is checked before Ray starts: an unknown device,
space or protocol, a bad line in ``--archs``, an empty ``--devices``, a
``--store`` that is a file or cannot be written prints one line and exits 2,
and the store is untouched. Ctrl-C during a campaign prints how many rows it
stored and that re-running the same command resumes, and exits 130.

One campaign at a time per store and per local device (``farm.store_lock``):
the locks are taken before Ray starts. A campaign that finds them taken refuses
at once with one line naming the holder (pid, host, campaign) and exits 2, as
``apt`` does with its lock; ``--wait-for-lock SECONDS`` makes it wait that long
instead, saying on stderr whom it waits for.

Example:
    >>> parser = build_parser()
    >>> args = parser.parse_args(["--sample", "4", "--devices", "cpu-local"])
    >>> args.sample, args.devices
    (4, ['cpu-local'])
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from farm import __version__
from farm.cli_help import apply_help_conventions
from farm.errors import Interrupted, UserError, exit_on_user_error
from farm.user_files import check_store, read_text

if TYPE_CHECKING:
    from farm.anchoring import AnchoringReport
    from farm.store_lock import WaitNotice

logger = logging.getLogger("farm.measure")

DEFAULT_SAMPLE = 8


def add_arch_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--sample N`` | ``--archs FILE`` | ``--all``, and ``--seed``: which archs to ``verb`` (:func:`select_archs`).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arch_selection(parser, "encode")
        >>> args = parser.parse_args(["--sample", "3", "--seed", "1"])
        >>> args.sample, args.archs, args.all, args.seed
        (3, None, False, 1)
    """
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sample", type=int, metavar="N", help=f"{verb} N archs sampled with --seed (default {DEFAULT_SAMPLE})")
    which.add_argument("--archs", metavar="FILE", help=f"{verb} the archs in FILE, one arch string a line (lines starting with # are comments)")
    which.add_argument("--all", action="store_true", help=f"{verb} every arch of the space (NAS-Bench-201 only)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of --sample (default 0)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The measure options (shared by ``measure.py`` and ``farm measure``)."""
    parser.add_argument("--inventory", default="inventory.yaml", help="device inventory YAML file")
    parser.add_argument("--space", default="nasbench201", help="search space: nasbench201, fbnet or ofa")
    add_arch_selection(parser, "measure")
    parser.add_argument(
        "--devices", action="append", metavar="NAME[,NAME]",
        help="measure only these inventory devices (repeat or comma-separate; default: all)",
    )
    parser.add_argument("--store", default="measurements", help="Parquet store folder (created if missing)")
    parser.add_argument("--protocol", help="protocol for every device: interleaved, help or latbench (default: each device's inventory protocol)")
    parser.add_argument("--warmup", type=int, help="warm-up runs per burst (default: the inventory's, else the protocol's)")
    parser.add_argument("--runs", type=int, help="timed runs per burst (default: the inventory's, else the protocol's)")
    parser.add_argument("--rounds", type=int, help="rounds of the interleaved protocol (default: the inventory's, else the protocol's)")
    parser.add_argument(
        "--quantile", type=float,
        help="estimator of the interleaved protocol: this quantile of the timed runs (default 0.1; 0.5 = median)",
    )
    parser.add_argument("--trim", type=float, help="fraction trimmed at each end (default: the inventory's, else the protocol's)")
    parser.add_argument("--job-size", type=int, default=50, help="archs per job, measured together (default 50)")
    anchoring = parser.add_mutually_exclusive_group()
    anchoring.add_argument(
        "--anchors", type=int, metavar="N",
        help="drift anchors measured in every job: N of HELP's reference archs (default 3 for interleaved, 0 otherwise)",
    )
    anchoring.add_argument("--no-anchors", action="store_true", help="measure no drift anchors (same as --anchors 0)")
    parser.add_argument("--max-attempts", type=int, default=3, help="tries per job on retryable errors (default 3)")
    parser.add_argument(
        "--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
        help="when another campaign holds the store (or a local device) wait up to SECONDS for it, saying whom "
        "it waits for, then start with what that campaign has not measured; default 0: refuse at once with "
        "one line naming the holder (exit 2)",
    )
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else start a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; one log line per job instead")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="measure.py",
        description="Measure NAS architectures on the devices of an inventory; rows go to a Parquet store.",
    )
    add_arguments(parser)
    apply_help_conventions(parser, version=__version__)
    return parser


def read_arch_file(path: str | Path, space: object) -> list[str]:
    """Canonical arch strings from ``path`` (one a line; blank lines and lines starting with ``#`` skipped).

    Raises :class:`UserError` naming the file and line number of the first bad line.
    """
    from farm.spaces import ArchError

    lines = read_text(path, hint="--archs needs a file with one arch string a line").splitlines()
    archs = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            archs.append(space.canonical(text))  # type: ignore[attr-defined]
        except (ArchError, ValueError) as exc:
            raise UserError(f"{path}: line {number}: {exc}; fix or remove that line") from None
    if not archs:
        raise UserError(f"{path}: no arch strings in the file; write one arch string a line")
    return archs


def select_archs(args: argparse.Namespace, space: object) -> list[str]:
    if args.archs:
        return read_arch_file(args.archs, space)
    if args.all:
        try:
            return list(space.enumerate())  # type: ignore[attr-defined]
        except NotImplementedError:
            raise UserError(f"--all: space {args.space} cannot be enumerated; use --sample N") from None
    count = DEFAULT_SAMPLE if args.sample is None else args.sample
    if count < 1:
        raise UserError(f"--sample {count}: must be >= 1")
    try:
        return space.sample(count, seed=args.seed)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise UserError(f"--sample {count}: {exc}") from None


def device_names(values: Sequence[str] | None) -> list[str] | None:
    """The names ``--devices`` lists (``None``: not given, i.e. all); :class:`UserError` when it names none.

    Example:
        >>> device_names(["a,b", "c"]), device_names(None)
        (['a', 'b', 'c'], None)
    """
    if values is None:
        return None
    # spaces around commas are fine ("a, b"); any other character, a newline included, is part of the name
    names = [name.strip(" ") for value in values for name in value.split(",") if name.strip(" ")]
    if not names:
        raise UserError(f"--devices {','.join(values)!r}: names no device; pass NAME[,NAME] or leave it out for all")
    return names


def run(args: argparse.Namespace) -> int:
    """Validate ``args``, run the campaign, print the summary; 0 if nothing failed, 1 otherwise."""
    from farm import inventory as inventories
    from farm import spaces

    inventory = inventories.load(args.inventory)
    devices = inventory.select(device_names(args.devices))
    try:
        space = spaces.get(args.space)
    except KeyError as exc:
        raise UserError(f"--space: {exc.args[0]}") from None
    archs = select_archs(args, space)
    if args.job_size < 1 or args.max_attempts < 1:
        raise UserError("--job-size and --max-attempts must be >= 1")
    anchors = 0 if args.no_anchors else args.anchors
    check_anchors(space.name, anchors)
    check_store("--store", args.store)
    check_lock_wait(args.wait_for_lock)

    from farm.run import CampaignConfig, connect, make_protocol, run_campaign
    from farm.store_lock import lock_campaign

    config = CampaignConfig(
        search_space=space.name, archs=archs, devices=devices, store_root=args.store,
        protocol=args.protocol, warmup=args.warmup, runs=args.runs, trim=args.trim, rounds=args.rounds,
        quantile=args.quantile,
        job_size=args.job_size, anchors=anchors, max_attempts=args.max_attempts, seed=args.seed,
        progress=not args.quiet and not args.json, lock_wait_s=args.wait_for_lock,
    )
    for device in devices:
        make_protocol(device, config)  # a bad --protocol/--runs/--trim fails here, before Ray starts
    if args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import ray

    with lock_campaign(args.store, devices, config.campaign_id, wait_s=args.wait_for_lock, on_wait=say_waiting) as locks:
        started_here = connect(args.address)
        try:
            summary = run_campaign(config, on_job=_log_job if args.quiet else None, locks=locks)
        except KeyboardInterrupt:
            raise Interrupted(interrupted_line(args.store, config.campaign_id)) from None
        finally:
            if started_here:
                ray.shutdown()
    reports = campaign_anchoring(args.store, summary.campaign_id)
    if args.json:
        json.dump({**summary.to_dict(), "anchoring": [r.to_dict() for r in reports]}, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(summary.render())
        for report in reports:
            print(report.render())
    totals = summary.totals()
    return 1 if totals["failed"] or totals["not_measured"] else 0


def interrupted_line(store: str, campaign_id: str) -> str:
    """What Ctrl-C leaves behind: the campaign's stored rows, and how to resume."""
    from farm.store import Store

    try:
        stored = len(Store(store).read(columns=["measurement_id"], where={"campaign_id": campaign_id}))
    except Exception as error:  # noqa: BLE001 - the store is only counted here; its rows are safe either way
        counted = f"rows stored so far could not be counted ({type(error).__name__})"
    else:
        counted = f"{stored} row(s) of campaign {campaign_id} are stored in {store}"
    return f"{counted}; re-run the same command to resume (archs already measured are skipped)"


def check_anchors(space: str, anchors: int | None) -> None:
    """``--anchors`` must be between 0 and the space's number of reference archs."""
    from farm.anchoring import anchor_archs

    if anchors is None:
        return
    if anchors < 0:
        raise UserError(f"--anchors {anchors}: must be >= 0 (0 measures no anchors)")
    try:
        anchor_archs(space, anchors)
    except ValueError as exc:
        raise UserError(f"--anchors {anchors}: {exc}") from None


def campaign_anchoring(store: str, campaign_id: str) -> list["AnchoringReport"]:
    """What anchoring saw in this campaign, per device and configuration (``farm.anchoring.anchoring_report``)."""
    from farm.anchoring import GROUP_COLUMNS, anchoring_report
    from farm.store import Store

    columns = [*GROUP_COLUMNS, "job_id", "anchor_ms", "is_anchor", "arch", "status", "latency_ms", "samples_ms"]
    frame = Store(store).read(columns=columns, where={"campaign_id": campaign_id})
    return anchoring_report(frame) if not frame.empty else []


def check_lock_wait(seconds: float) -> None:
    """A ``--wait-for-lock`` value is finite and >= 0, else one :class:`UserError` line.

    Example:
        >>> check_lock_wait(-1.0)
        Traceback (most recent call last):
        ...
        farm.errors.UserError: --wait-for-lock -1.0: must be a number of seconds >= 0 (0 refuses at once)
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise UserError(f"--wait-for-lock {seconds}: must be a number of seconds >= 0 (0 refuses at once)")


def say_waiting(notice: "WaitNotice") -> None:
    """Tell stderr whom a run waits for (a ``--wait-for-lock`` wait)."""
    print(notice.render(), file=sys.stderr, flush=True)


def _log_job(result: object) -> None:
    job = result.job  # type: ignore[attr-defined]
    statuses: dict[str, int] = {}
    for row in result.rows:  # type: ignore[attr-defined]
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    error = f"; error: {result.error}" if result.error else ""  # type: ignore[attr-defined]
    logger.info(
        "device %s job %s (attempt %d): %s in %.1f s%s", job.device, job.job_id, job.attempt + 1,
        ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "no rows", result.busy_s, error,  # type: ignore[attr-defined]
    )


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``measure.py``."""
    return run(build_parser().parse_args(argv))
