"""``farm report``: the store and the registered predictors as PNG figures, an index, and the same as JSON.

::

    farm report [--store DIR] [--registry DIR] [--out reports/] [--space S] [--json]
                [--samples 5,10,20,50] [--seeds 0,1,2]

Per search space of the store (or ``--space``):

- ``<space>-spearman.png``: device-to-device Spearman heatmap (:mod:`loop.report_heatmap`);
- ``<space>-latency-histograms.png``: latency distribution per target (:mod:`loop.report_histograms`);
- ``<space>-stability.png``: ok / unstable / failed shares, CV, CI width (:mod:`loop.report_stability`);

and, with ``--registry``, per registered target (:mod:`loop.report_predictors`):

- ``<space>-<target>-samples-curve.png``: held-out Spearman against the number of target samples;
- ``<space>-<target>-predicted-vs-measured.png``: the current predictor on the held-out slice.

``<out>/index.md`` lists the PNGs with one-line captions and ``<out>/report.json``
holds the numbers behind every figure; ``--json`` prints that JSON to stdout.
Bad input (no store, an empty store, a space it does not hold, a missing
registry, an unwritable ``--out``) is one line and exit 2, checked before any
figure is drawn.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> _ = register(parser.add_subparsers())
    >>> parser.parse_args(["report", "--samples", "5,20"]).samples
    (5, 20)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import UserError
from farm.store import Store, StoreError
from farm.atomic import write_text_atomic
from loop.report_heatmap import heatmap_figure
from loop.report_histograms import histograms_figure
from loop.report_plot import Figure
from loop.report_predictors import CurveConfig, PredictorReport, predictor_reports
from loop.report_stability import stability_figure
from loop.report_store import SpaceRows, load_space_rows
from trainer.data import store_spaces

INDEX = "index.md"
JSON_FILE = "report.json"


@dataclass(frozen=True)
class ReportConfig:
    """Where to read, where to write, and how much predictor work to do."""

    store: Path
    out: Path
    registry: Path | None = None
    spaces: tuple[str, ...] = ()
    curve: CurveConfig = field(default_factory=CurveConfig)
    progress: bool = True


@dataclass
class Report:
    """The figures written, the per-predictor results, and what was skipped and why."""

    config: ReportConfig
    spaces: list[str]
    figures: list[Figure] = field(default_factory=list)
    predictors: list[PredictorReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": str(self.config.store),
            "registry": str(self.config.registry) if self.config.registry else None,
            "out": str(self.config.out),
            "spaces": self.spaces,
            "figures": [f.to_dict() for f in self.figures],
            "predictors": [p.to_dict() for p in self.predictors],
            "notes": self.notes,
        }


def check(config: ReportConfig) -> list[str]:
    """The spaces to report on; :class:`UserError` (one line) for anything that would fail later."""
    store = Store(config.store)
    if not config.store.is_dir():
        raise UserError(f"--store {config.store}: no such folder; measure first (python measure.py) or pass --store DIR")
    if not store.files():
        raise UserError(f"--store {config.store}: the store is empty (no Parquet files); "
                        f"measure or `farm import FILE --store {config.store}` first")
    held = store_spaces(config.store)
    unknown = [s for s in config.spaces if s not in held]
    if unknown:
        raise UserError(f"--space {unknown[0]}: the store {config.store} holds no rows of it; it holds {', '.join(held)}")
    if config.registry is not None and not config.registry.is_dir():
        raise UserError(f"--registry {config.registry}: no such folder; pass the registry `trainer nightly` writes, "
                        "or leave --registry out")
    _check_writable(config.out)
    return list(config.spaces) or held


def _check_writable(out: Path) -> None:
    probe = out / f".write-test-{uuid.uuid4().hex[:8]}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"--out {out}: cannot write there ({error.strerror or error}); pass a writable folder") from None


def build_report(config: ReportConfig) -> Report:
    """Check the input, then write every figure, ``index.md`` and ``report.json`` under ``config.out``."""
    spaces = check(config)
    report = Report(config, spaces)
    store = Store(config.store)
    rows: dict[str, SpaceRows] = {}
    for space in spaces:
        try:
            rows[space] = load_space_rows(store, space)
        except StoreError as error:
            raise UserError(f"--store {config.store}: cannot read it ({error})") from None
        _say(config, f"report: {space}: {len(rows[space].rows)} rows, {len(rows[space].targets())} targets")
        heatmap = heatmap_figure(rows[space], config.out)
        if heatmap is None:
            report.notes.append(f"{space}: one target only, no device-to-device heatmap")
        histograms = histograms_figure(rows[space], config.out)
        if histograms is None:
            report.notes.append(f"{space}: no row has a latency, no histograms")
        report.figures += [f for f in (heatmap, histograms, stability_figure(rows[space], config.out)) if f is not None]
    if config.registry is not None:
        report.predictors = predictor_reports(config.registry, rows, config.out, config.curve, config.progress)
        report.figures += [f for p in report.predictors for f in p.figures]
        report.notes += [f"{p.space}/{p.target}: {p.error}" for p in report.predictors if p.error]
        if not report.predictors:
            report.notes.append(f"{config.registry}: no registered predictor of {', '.join(spaces)}")
    write_text_atomic(render_index(report), config.out / INDEX)
    write_text_atomic(json.dumps(report.to_dict(), indent=1) + "\n", config.out / JSON_FILE)
    return report


def render_index(report: Report) -> str:
    """``index.md``: one line per PNG with its caption, then the notes."""
    lines = [f"# latfarm report: {report.config.store}", ""]
    for figure in report.figures:
        lines.append(f"- [{figure.path.name}]({figure.path.name}): {figure.caption}")
    if report.notes:
        lines += ["", "## Not drawn", ""] + [f"- {note}" for note in report.notes]
    lines += ["", f"The numbers behind every figure: [{JSON_FILE}]({JSON_FILE}).", ""]
    return "\n".join(lines)


def _say(config: ReportConfig, line: str) -> None:
    if config.progress:
        print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ command line
def _integers(text: str, minimum: int | None = None) -> tuple[int, ...]:
    """``"5,10"`` -> ``(5, 10)``; each at least ``minimum`` where given."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or (minimum is not None and min(values) < minimum):
        raise argparse.ArgumentTypeError(f"expected integers{f' >= {minimum}' if minimum is not None else ''}, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    """Handler of ``farm report``."""
    config = ReportConfig(
        store=args.store, out=args.out, registry=args.registry, spaces=tuple(args.space or ()),
        curve=CurveConfig(samples=args.samples, seeds=args.seeds), progress=not args.quiet,
    )
    report = build_report(config)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for figure in report.figures:
        print(f"{config.out / figure.path.name}: {figure.caption}")
    for note in report.notes:
        print(f"not drawn: {note}")
    print(f"index: {config.out / INDEX} ({len(report.figures)} figures); numbers: {config.out / JSON_FILE}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` to the ``farm`` parser's subcommands."""
    parser = subparsers.add_parser("report", help="PNG figures of the store and the registered predictors (+ --json)",
                                   description=__doc__.split("Example:")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=Path("measurements"), metavar="DIR",
                        help="Parquet store folder (default ./measurements)")
    parser.add_argument("--registry", type=Path, default=None, metavar="DIR",
                        help="predictor registry: adds the samples curve and predicted-vs-measured per target")
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR", help="output folder (default ./reports)")
    parser.add_argument("--space", action="append", metavar="S", help="only this search space (repeatable; default all)")
    parser.add_argument("--samples", type=functools.partial(_integers, minimum=1), default=CurveConfig().samples, metavar="N,N",
                        help="target sample counts of the samples curve (default 5,10,20,50)")
    parser.add_argument("--seeds", type=_integers, default=CurveConfig().seeds, metavar="K,K",
                        help="seeds per sample count (default 0,1,2)")
    parser.add_argument("--json", action="store_true", help="print the numbers behind every figure as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=run)
    return parser


__all__ = ["INDEX", "JSON_FILE", "Report", "ReportConfig", "build_report", "check", "register", "render_index", "run"]
