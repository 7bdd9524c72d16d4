"""``farm add-device NAME``: from a new inventory entry to predicted latencies for a whole search space.

The issue's six steps, the sixth in two (one progress line each, on stderr; the campaign shows its own bar):

1. **probe**: everything the user typed is checked first (inventory, device,
   space, the registry's base predictor, ``--pool``, output folders; bad input
   is one line and exit 2), then the device is probed through its Ray actor,
   as ``farm devices`` does;
2. **sample**: the space's current base predictor (``registry/<space>/_pretrained``)
   names the archs to measure with its sampler (:mod:`loop.selection`), never
   from the held-out slice;
3. **measure**: the archs the store does not hold yet for the device's default
   configuration go through the normal campaign path (:mod:`loop.sample_campaign`),
   so a re-run measures nothing twice;
4. **transfer**: the base is transferred with every stored row of the device's
   default target (held-out archs dropped), saved, registered as the next
   version of (space, target) and promoted by :func:`trainer.promotion.decide` (nightly's policy);
5. **predict**: the current version predicts every candidate arch into
   ``predictions/space=S/target=T/<stamp>-v<N>.parquet`` (:mod:`loop.predictions`);
6. **evaluate**: the most-correlated known devices (:mod:`loop.correlation`) and
   the expected Spearman from k-fold cross-validation on the samples (:mod:`loop.crossval`);
7. **report**: Markdown, JSON and a histogram PNG (:mod:`loop.device_report`).

Example (a replay device, i.e. a simulation; needs a base predictor in ``registry/``):
    >>> options = AddDeviceOptions(device="replay-pixel3", inventory=Path("inventory.yaml"))  # doctest: +SKIP
    >>> result = add_device(options)  # doctest: +SKIP
    >>> result.report["predictions"]["archs"]  # doctest: +SKIP
    15625
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO, TypeVar

import numpy as np
import pandas as pd

from farm import spaces
from farm.errors import UserError
from farm.inventory import Device
from farm.user_files import check_store, check_writable_folder
from loop.correlation import most_correlated
from loop.crossval import DEFAULT_FOLDS, cross_validate
from loop.device_report import ReportFiles, fmt, jsonable, quantiles, report_folder, write_report
from loop.pool import CandidatePool, candidate_pool
from loop.predictions import PredictionInfo, write_predictions
from trainer.promotion import register as register_version
from loop.sample_campaign import SampleCampaign, default_configuration, measure_missing
from loop.selection import choose_archs
from loop.steps import StepClock
from trainer import holdout, workflow
from trainer import registry as predictor_dirs
from farm.store import Store
from trainer.data import TargetTable, snapshot_hash
from trainer.evaluate import clone
from trainer.watermark import read_space
from trainer.models.base import Predictor
from trainer.versions import BASE, PredictorRegistry, Version

STEPS: tuple[str, ...] = ("probe", "sample", "measure", "transfer", "predict", "evaluate", "report")
#: Most-correlated known targets listed in the report.
TOP_CORRELATED = 5


@dataclass(frozen=True)
class AddDeviceOptions:
    """What ``farm add-device`` was asked to do (defaults = the command's defaults)."""

    device: str
    space: str = "nasbench201"
    samples: int = 20
    inventory: Path = Path("inventory.yaml")
    store: Path = Path("measurements")
    registry: Path = Path("registry")
    predictions: Path = Path("predictions")
    reports: Path = Path("reports")
    pool: Path | None = None
    seed: int = 0
    folds: int = DEFAULT_FOLDS
    ok_only: bool = False
    address: str | None = None
    progress: bool = True
    hyper: Mapping[str, Any] = field(default_factory=dict)

    @property
    def statuses(self) -> tuple[str, ...]:
        """Row statuses the transfer learns from (``unstable`` rows too unless ``ok_only``)."""
        return ("ok",) if self.ok_only else ("ok", "unstable")


@dataclass(frozen=True)
class Prepared:
    """Everything checked before anything starts: the device, the base predictor, the candidates."""

    device: Device
    registry: PredictorRegistry
    base_version: Version
    base: Predictor
    base_manifest: dict[str, Any]
    pool: CandidatePool


@dataclass(frozen=True)
class AddDeviceResult:
    """The report (JSON-ready), where it was written, and the exit code (1 when some arch failed)."""

    report: dict[str, Any]
    files: ReportFiles
    exit_code: int

    def summary(self) -> str:
        """A few lines for the console."""
        r = self.report
        sel, camp, cv = r["selection"], r["campaign"], r["expected_spearman"]
        version, predictions = r["version"], r["predictions"]
        pooled = cv["pooled"]
        correlated = ", ".join(f"{c['target']} {fmt(c['rho'])}" for c in r["correlated"][:3]) or "none known"
        expected = (f"{fmt(pooled['rho'])} [{fmt(pooled['low'])}, {fmt(pooled['high'])}] ({cv['folds']}-fold CV, n={pooled['n']})"
                    if cv["folds"] else "too few samples to estimate")
        q = predictions["quantiles"]
        lines = [
            f"add-device {r['device']} ({r['space']}, target {r['target']}): {len(sel['samples'])} archs chosen by the "
            f"{sel['sampler']} sampler; {camp['already_stored']} already stored, {camp['new_rows']} new rows",
            f"transfer: {r['base']['method']} from {BASE} {r['base']['version']} with {r['transfer']['samples']} rows -> "
            f"v{version['number']} ({'promoted' if version['promoted'] else 'not promoted'}: {version['reason']})",
            f"expected Spearman: {expected}; most correlated: {correlated}",
            f"predictions: {predictions['archs']} archs from v{predictions['version']}, median {fmt(q['p50'])} ms "
            f"(p5 {fmt(q['p5'])}, p95 {fmt(q['p95'])}) -> {predictions['path']}",
            f"report: {self.files.markdown}",
            "wall time: " + f"{sum(r['timings'].values()):.1f} s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()) + ")",
        ]
        if camp["problems"]:
            lines.append(f"WARNING: {camp['problems']} arch(s) failed or were not measured; re-run to retry them")
        return "\n".join(lines)


# ------------------------------------------------------------------ checks
def prepare(options: AddDeviceOptions) -> Prepared:
    """Check every input before anything starts; :class:`UserError` (one line) on the first problem."""
    from farm import inventory as inventories

    if options.space not in spaces.NAMES:
        raise UserError(f"--space: unknown search space {options.space!r}; known: {', '.join(spaces.NAMES)}")
    if options.samples < 1 or options.folds < 2:
        raise UserError("--samples must be >= 1 and --folds >= 2")
    device = inventories.load(options.inventory).get(options.device)
    registry = PredictorRegistry(options.registry)
    base_version = registry.current(options.space, BASE)
    if base_version is None:
        raise UserError(
            f"{options.registry}: no pre-trained base predictor for {options.space} ({options.registry}/{options.space}/"
            f"{BASE}/current); make one with `make pretrain` or `trainer nightly --store {options.store} "
            f"--registry {options.registry}`"
        )
    base, manifest = predictor_dirs.load(base_version.path)
    pool = candidate_pool(options.space, options.pool, options.seed)
    check_store("--store", options.store)
    folders = {"--registry": options.registry, "--predictions": options.predictions, "--reports": options.reports}
    for flag, folder in folders.items():
        check_writable_folder(flag, folder)
    for folder in folders.values():  # only once every input has passed
        folder.mkdir(parents=True, exist_ok=True)
    return Prepared(device, registry, base_version, base, manifest, pool)


# ------------------------------------------------------------------ the steps
def probe(device: Device) -> str:
    """Probe the device through its actor (Ray connected); one line describing it, :class:`UserError` if unreachable."""
    from farm.probe import probe_devices

    answer = probe_devices([device])[0]
    if not answer["reachable"]:
        raise UserError(f"device {device.name!r}: probe failed: {answer['error']}; check it with "
                        f"`farm devices --devices {device.name}` and the inventory entry")
    facts = answer.get("facts") or {}
    what = "simulated (replay)" if facts.get("simulated") else (facts.get("cpu_model") or device.kind)
    cores = f", {facts['cores']} cores" if facts.get("cores") else ""
    return f"{device.name} reachable: {what}{cores}"


Result = TypeVar("Result", workflow.PretrainResult, workflow.TransferResult)


def marked(result: Result) -> Result:
    """``result`` whose saved manifest records that the held-out slice was excluded (the registry requires it)."""
    return dataclasses.replace(result, update=dataclasses.replace(result.update, event=holdout.MARKER))


def measured_rows(store: Path, space: str, device: Device, archs: Sequence[str]) -> list[dict[str, Any]]:
    """The newest stored row of each arch for the device's default configuration (for the report)."""
    from farm.store import SCHEMA

    wanted = ["arch", "runtime", "batch_size", "status", "latency_ms", "cv", "ci_low_ms", "ci_high_ms", "measured_at"]
    rows = Store(store).read(search_space=space, device=device.name, columns=[c for c in wanted if c in SCHEMA.names])
    rows = rows[(rows["runtime"] == device.runtimes[0]) & (rows["batch_size"] == device.batch_sizes[0])
                & rows["arch"].isin(set(archs))]
    newest = rows.sort_values("measured_at").groupby("arch", sort=False).tail(1).set_index("arch")
    keep = [c for c in ("status", "latency_ms", "ci_low_ms", "ci_high_ms", "cv") if c in newest.columns]
    return [{"arch": arch, **{c: newest.at[arch, c] for c in keep}} if arch in newest.index
            else {"arch": arch, "status": "not stored"} for arch in archs]


def add_device(options: AddDeviceOptions, *, stream: TextIO | None = sys.stderr) -> AddDeviceResult:
    """Run the six steps (see the module docstring) and return the report."""
    import ray

    from farm.run import connect

    ready = prepare(options)
    clock = StepClock(STEPS, stream=stream)
    device = default_configuration(ready.device)
    started_here = connect(options.address)
    try:
        with clock.step("probe") as step:
            step.note(probe(device))
        with clock.step("sample") as step:
            selection = choose_archs(ready.base, ready.pool.archs, options.samples, seed=options.seed)
            step.note(f"{len(selection.samples)} archs by the {selection.sampler} sampler of {ready.base.method} "
                      f"{BASE} v{ready.base_version.number} from {ready.pool.origin} "
                      f"({selection.held_out_excluded} held-out excluded)")
        with clock.step("measure") as step:
            campaign = measure_missing(options.store, options.space, device, selection.archs(), seed=options.seed,
                                       progress=options.progress)
            step.note(_measure_note(device, campaign))
    finally:
        if started_here:
            ray.shutdown()
    with clock.step("transfer") as step:
        rows = read_space(Store(options.store), options.space, options.statuses)
        table = rows.table
        target = table.resolve(device.name)
        samples, held_out = rows.trainable.series(target), rows.held_out(target)
        outcome = _transfer_and_register(ready, options, rows.trainable, target, samples, held_out)
        step.note(f"{outcome['samples']} rows of {target} -> v{outcome['version']} "
                  f"({'promoted' if outcome['promoted'] else 'not promoted'}: {outcome['reason']})"
                  if outcome["registered"] else f"{outcome['samples']} rows of {target}: {outcome['reason']}")
    with clock.step("predict") as step:
        current = ready.registry.current(options.space, target)
        assert current is not None  # the first version of a target is always promoted
        predictor, manifest = predictor_dirs.load(current.path)
        predicted = workflow.predict(predictor, ready.pool.archs, target)
        info = PredictionInfo(options.space, target, current.number, manifest["method"], str(current.path))
        predictions_path = write_predictions(options.predictions, info, ready.pool.archs, predicted)
        step.note(f"{len(predicted)} archs with v{current.number} -> {predictions_path}")
    with clock.step("evaluate") as step:
        own_targets = [name for name, key in table.keys.items() if key.device == device.name]
        correlated = most_correlated(table, samples, exclude=own_targets, top=TOP_CORRELATED)
        expected = cross_validate(ready.base, target, samples, folds=options.folds, seed=options.seed,
                                  hyper=options.hyper)
        step.note(f"expected Spearman {expected.pooled} ({expected.folds}-fold CV); most correlated: "
                  + (", ".join(f"{c.target} {c.estimate.rho:.3f}" for c in correlated[:3]) or "none"))
    with clock.step("report") as step:
        report = {
            "device": device.name, "space": options.space, "target": target,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "base": {"version": f"v{ready.base_version.number}", "method": ready.base.method,
                     "path": str(ready.base_version.path), "sources": ready.base_manifest.get("sources", [])},
            "selection": selection.to_dict(),
            "campaign": {**campaign.to_dict(), "problems": campaign.problems},
            "measured": measured_rows(options.store, options.space, device, selection.archs()),
            "transfer": {"samples": outcome["samples"], "statuses": list(options.statuses), "seconds": outcome["seconds"]},
            "version": {"number": outcome["version"], "registered": outcome["registered"],
                        "promoted": outcome["promoted"], "reason": outcome["reason"], "held_out": outcome["score"]},
            "predictions": {"path": str(predictions_path), "archs": len(predicted), "pool": ready.pool.origin,
                            "version": current.number, "method": manifest["method"], "quantiles": quantiles(predicted)},
            "correlated": [c.to_dict() for c in correlated],
            "expected_spearman": expected.to_dict(),
        }
        folder = report_folder(options.reports, options.space, target)
        report["timings"] = dict(clock.seconds)
        files = write_report(folder, jsonable(report), predicted, samples.to_numpy())
        step.note(f"{files.markdown}")
    report["timings"] = dict(clock.seconds)
    report["files"] = files.to_dict()
    return AddDeviceResult(jsonable(report), files, 1 if campaign.problems else 0)


def _measure_note(device: Device, campaign: SampleCampaign) -> str:
    config = f"{device.runtimes[0]}, batch {device.batch_sizes[0]}"
    if campaign.summary is None:
        return f"all {campaign.requested} archs already stored ({config}); nothing measured"
    totals = campaign.summary.totals()
    return (f"{totals['measured']} measured ({totals['unstable']} unstable), {totals['failed']} failed, "
            f"{totals['not_measured']} not measured, {campaign.already_stored} already stored ({config})")


def _transfer_and_register(ready: Prepared, options: AddDeviceOptions, trainable: TargetTable, target: str,
                           samples: pd.Series, held_out: pd.Series) -> dict[str, Any]:
    """Transfer a copy of the base on the target's trainable rows (``trainable``: no held-out archs), save,
    register, maybe promote.

    When ``current`` already learned from exactly these rows (same data snapshot) with the same
    base, nothing is transferred or registered: a re-run changes nothing.
    """
    current = ready.registry.current(options.space, target)
    if current is not None and _same_training(predictor_dirs.read_manifest(current.path), ready.base_manifest, target, samples):
        score = holdout.score(predictor_dirs.load(current.path)[0], target, held_out)
        return {"samples": len(samples), "seconds": 0.0, "version": current.number, "registered": False,
                "promoted": False, "reason": f"current v{current.number} already learned from exactly these rows "
                                             "with this base; nothing new registered", "score": score}
    result = marked(workflow.transfer(clone(ready.base), trainable, target, manifest=ready.base_manifest,
                                      hyper=options.hyper))
    score = holdout.score(result.predictor, target, held_out)
    current_score = holdout.score(predictor_dirs.load(current.path)[0], target, held_out) if current else None
    staging = Path(tempfile.mkdtemp(dir=options.registry, prefix=".add-device-"))
    try:
        folder = workflow.save(result, staging / "predictor")
        version, decision = register_version(
            ready.registry, options.space, target, folder, score=score, current_score=current_score,
            rows=result.samples, base_version=ready.base_version.number, note=f"farm add-device {ready.device.name}: {result.samples} rows, "
                                         f"base {BASE} v{ready.base_version.number}",
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"samples": result.samples, "seconds": round(result.seconds, 3), "version": version.number,
            "registered": True, "promoted": decision.promote, "reason": decision.reason, "score": score}


def _same_training(manifest: Mapping[str, Any], base_manifest: Mapping[str, Any], target: str, samples: pd.Series) -> bool:
    """Whether a registered predictor was transferred from the same base with exactly ``samples``."""
    snapshots, base_snapshots = manifest.get("data_snapshot") or {}, base_manifest.get("data_snapshot") or {}
    return (manifest.get("method") == base_manifest.get("method")
            and snapshots.get("sources") == base_snapshots.get("sources")
            and (snapshots.get("targets") or {}).get(target) == snapshot_hash({target: samples}))


# ------------------------------------------------------------------ command line
def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Add ``farm add-device`` to the ``farm`` parser (``loop.cli`` calls it)."""
    from trainer.cli import hyper_from  # noqa: F401 - imported here so a broken trainer fails only this verb

    parser = subparsers.add_parser(
        "add-device", help="measure a new inventory device's sampled archs, transfer, predict the whole space",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("name", metavar="NAME", help="the device's name in the inventory")
    parser.add_argument("--space", default="nasbench201", help="search space (default nasbench201)")
    parser.add_argument("--samples", type=int, default=20, help="archs the sampler picks to measure (default 20)")
    parser.add_argument("--inventory", type=Path, default=Path("inventory.yaml"), help="default ./inventory.yaml")
    parser.add_argument("--store", type=Path, default=Path("measurements"), help="Parquet store (default ./measurements)")
    parser.add_argument("--registry", type=Path, default=Path("registry"), help="predictor registry (default ./registry)")
    parser.add_argument("--predictions", type=Path, default=Path("predictions"), help="default ./predictions")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="default ./reports")
    parser.add_argument("--pool", type=Path, metavar="FILE",
                        help="candidate archs to sample from and predict (default: the whole space where it can be "
                             "enumerated, else 10,000 archs sampled with --seed)")
    parser.add_argument("--seed", type=int, default=0, help="sampler and cross-validation seed (default 0)")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help=f"cross-validation folds (default {DEFAULT_FOLDS})")
    parser.add_argument("--ok-only", action="store_true",
                        help="learn from the device's ok rows only (default: ok and unstable rows)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs of the transfer (neural methods)")
    parser.add_argument("--hyper", action="append", metavar="KEY=VALUE", default=None,
                        help="a method hyper-parameter for the transfer; repeatable")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no campaign progress bar (step lines stay, on stderr)")
    parser.set_defaults(handler=run)
    return parser


def options_from(args: argparse.Namespace) -> AddDeviceOptions:
    """:class:`AddDeviceOptions` from parsed arguments."""
    from trainer.cli import _hyper_pair, hyper_from

    try:
        pairs = [_hyper_pair(text) for text in args.hyper or []]
    except argparse.ArgumentTypeError as error:
        raise UserError(f"--hyper: {error}") from None
    hyper = hyper_from(argparse.Namespace(hyper=pairs, epochs=args.epochs))
    return AddDeviceOptions(
        device=args.name, space=args.space, samples=args.samples, inventory=args.inventory, store=args.store,
        registry=args.registry, predictions=args.predictions, reports=args.reports, pool=args.pool, seed=args.seed,
        folds=args.folds, ok_only=args.ok_only, address=args.address, progress=not args.quiet and not args.json,
        hyper=hyper,
    )


def run(args: argparse.Namespace) -> int:
    """The ``farm add-device`` handler: the summary (or ``--json``) on stdout; 0, or 1 when an arch failed."""
    result = add_device(options_from(args))
    if args.json:
        json.dump(result.report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(result.summary())
    return result.exit_code


__all__ = ["AddDeviceOptions", "AddDeviceResult", "STEPS", "add_device", "marked", "options_from", "prepare", "register",
           "run"]
