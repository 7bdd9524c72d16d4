"""``make demo``: the project's main job on this machine, end to end, with the figure that shows it works.

1. **import**: HELP's public NB201 latencies (``data/help_latency.parquet``, or ``--table``) into the demo store;
2. **base**: pre-train the default method on HELP's ND source devices (900 archs each,
   held-out slice excluded) and register it as the base (a second run reuses it);
3. **add-device**: ``farm add-device cpu-local``: this machine's own CPU, from
   ``./inventory.yaml``, measures the ~20 archs the base's sampler chooses, for real;
4. **ground truth**: measures 100 further archs, drawn at random among those that
   are neither measured on the device nor held out, into a separate store
   (``<root>/truth``), so they can never leak into a transfer;
5. **score**: Spearman of the predictions against those 100 measurements, with a
   bootstrap interval, a predicted-vs-measured PNG, and the wall time.

Everything lives under ``--root`` (default ``.demo/``): ``store/``, ``truth/``,
``registry/``, ``predictions/``, ``reports/``. Every step is idempotent: a second
run imports, trains and measures nothing new and prints the same figure.

Example:
    >>> build_parser().parse_args([]).truth
    100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from farm.errors import UserError, exit_on_user_error
from farm.store import Store
from loop.add_device import AddDeviceOptions, add_device, prepare
from farm.atomic import write_atomic, write_text_atomic
from loop.base import DEFAULT_SOURCE_SAMPLES, HELP_TABLE, BaseOptions, import_space, pretrain_base
from loop.device_report import fmt, jsonable, plain_log_ticks
from loop.predictions import latest, read_predictions
from loop.sample_campaign import MEASURED_STATUSES, default_configuration, measure_missing, measured_archs
from loop.stats import SpearmanEstimate, spearman_with_interval
from loop.steps import StepClock
from trainer.data import choose
from trainer.evaluate import TASKS
from trainer.holdout import is_held_out
from trainer.versions import BASE, PredictorRegistry

SPACE = "nasbench201"
STEPS: tuple[str, ...] = ("import", "base", "add-device", "ground truth", "score")


@dataclass(frozen=True)
class DemoOptions:
    """The demo's folders and sizes."""

    root: Path = Path(".demo")
    table: Path = HELP_TABLE
    inventory: Path = Path("inventory.yaml")
    device: str = "cpu-local"
    samples: int = 20
    truth: int = 100
    seed: int = 0
    sources: Sequence[str] = TASKS["ND"].sources
    source_samples: int = DEFAULT_SOURCE_SAMPLES
    method: str | None = None
    epochs: int | None = None
    progress: bool = True

    def folder(self, name: str) -> Path:
        return self.root / name


def truth_archs(options: DemoOptions, measured: set[str]) -> list[str]:
    """``options.truth`` archs drawn with the seed among those neither ``measured`` on the device nor held out."""
    from farm import spaces

    pool = [a for a in spaces.get(SPACE).enumerate() if a not in measured and not is_held_out(SPACE, a)]
    return choose(pool, options.truth, options.seed)


def truth_latencies(store: Path, device_name: str, archs: Sequence[str]) -> pd.Series:
    """Median stored latency (ok and unstable rows) per arch of ``archs``."""
    rows = Store(store).read(search_space=SPACE, device=device_name, where={"status": list(MEASURED_STATUSES)},
                             columns=["arch", "latency_ms"])
    rows = rows[rows["arch"].isin(set(archs))]
    return rows.groupby("arch")["latency_ms"].median()


def write_scatter(path: Path, predicted: np.ndarray, measured: np.ndarray, estimate: SpearmanEstimate, title: str) -> Path:
    """Predicted against measured latency (log-log) with the y = x line and the Spearman in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.2, 5.0))
    axis.scatter(measured, predicted, s=16, alpha=0.8, color="#4C72B0")
    low = float(min(measured.min(), predicted.min())) * 0.9
    high = float(max(measured.max(), predicted.max())) * 1.1
    axis.plot([low, high], [low, high], color="#999999", linewidth=1, label="y = x")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    plain_log_ticks(axis.xaxis, axis.yaxis)
    axis.set_xlabel("measured latency (ms)")
    axis.set_ylabel("predicted latency (ms)")
    axis.set_title(f"{title}\nSpearman {estimate.rho:.3f} [{estimate.low:.3f}, {estimate.high:.3f}], n = {estimate.n}",
                   fontsize=10)
    axis.legend(frameon=False)
    figure.tight_layout()
    try:
        return write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=120))
    finally:
        plt.close(figure)


def run_demo(options: DemoOptions, *, stream: Any = sys.stderr) -> dict[str, Any]:
    """The five steps of the module docstring; returns the summary (JSON-ready)."""
    import ray

    from farm import inventory as inventories
    from farm.run import connect

    started = time.perf_counter()
    device = default_configuration(inventories.load(options.inventory).get(options.device))
    clock = StepClock(STEPS, stream=stream)
    store, truth_store = options.folder("store"), options.folder("truth")
    with clock.step("import") as step:
        added = import_space(options.table, store, SPACE)
        step.note(f"{added} rows of {options.table.name} added to {store}" if added else f"{options.table.name} already in {store}")
    with clock.step("base") as step:
        registry = PredictorRegistry(options.folder("registry"))
        base = registry.current(SPACE, BASE)
        if base is None:
            hyper = {"epochs": options.epochs} if options.epochs else {}
            base, _ = pretrain_base(BaseOptions(store, registry.root, SPACE, options.sources, options.source_samples,
                                                options.method, options.seed, hyper),
                                    say=lambda text: clock.announce(f"      {text}"))
            step.note(f"pre-trained and registered {BASE} v{base.number} ({base.summary['method']})")
        else:
            step.note(f"reusing {BASE} v{base.number} ({base.summary['method']}) of {registry.root}")
    add_options = AddDeviceOptions(
        device=options.device, space=SPACE, samples=options.samples, inventory=options.inventory, store=store,
        registry=registry.root, predictions=options.folder("predictions"), reports=options.folder("reports"),
        seed=options.seed, progress=options.progress, hyper={"epochs": options.epochs} if options.epochs else {},
    )
    prepare(add_options)  # bad input fails here, before Ray starts
    started_here = connect()
    try:
        with clock.step("add-device") as step:
            clock.announce(f"      farm add-device {options.device} --store {store} --registry {registry.root} ...")
            result = add_device(add_options, stream=_Indented(stream) if stream is not None else None)
            step.note(f"predictions for {result.report['predictions']['archs']} archs -> {result.report['predictions']['path']}")
        with clock.step("ground truth") as step:
            archs = truth_archs(options, measured_archs(Store(store), SPACE, device))
            campaign = measure_missing(truth_store, SPACE, device, archs, seed=options.seed, progress=options.progress)
            step.note(f"{campaign.requested} random archs ({campaign.already_stored} already stored, "
                      f"{campaign.new_rows} rows added) -> {truth_store}")
    finally:
        if started_here:
            ray.shutdown()
    with clock.step("score") as step:
        target = result.report["target"]
        path = latest(add_options.predictions, SPACE, target)
        assert path is not None  # add-device has just written one
        predicted = read_predictions(path)[0].set_index("arch")["predicted_ms"]
        measured = truth_latencies(truth_store, device.name, archs)
        estimate = spearman_with_interval(predicted.loc[measured.index].to_numpy(), measured.to_numpy(), seed=options.seed)
        scatter = write_scatter(options.folder("reports") / "demo-truth.png", predicted.loc[measured.index].to_numpy(),
                                measured.to_numpy(), estimate, f"{device.name}: {len(measured)} measured ground-truth archs")
        step.note(f"Spearman {estimate} -> {scatter}")
    summary = {
        "device": device.name, "target": target, "predictions": str(path),
        "spearman": estimate.to_dict(), "truth_archs": int(len(measured)), "truth_missing": len(archs) - int(len(measured)),
        "add_device": {k: result.report[k] for k in ("selection", "campaign", "version", "expected_spearman", "correlated")},
        "report": result.report["files"], "scatter": str(scatter),
        "timings": dict(clock.seconds), "wall_s": round(time.perf_counter() - started, 1),
    }
    write_text_atomic(json.dumps(jsonable(summary), indent=1) + "\n", options.folder("reports") / "demo.json")
    return jsonable(summary)


class _Indented:
    """A stream that indents add-device's step lines under the demo's own."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write("".join(f"      {line}" if line.strip() else line for line in text.splitlines(True)))

    def flush(self) -> None:
        self.stream.flush()


def render(summary: dict[str, Any]) -> str:
    """The demo's closing lines."""
    rho = summary["spearman"]
    expected = summary["add_device"]["expected_spearman"]["pooled"]
    return "\n".join([
        f"demo: {summary['device']} predicted from {summary['add_device']['campaign']['requested']} sampled archs; "
        f"against {summary['truth_archs']} measured random archs: Spearman {fmt(rho['rho'])} "
        f"(95% bootstrap interval [{fmt(rho['low'])}, {fmt(rho['high'])}])",
        f"      expected from cross-validation on the samples: {fmt(expected['rho'])} [{fmt(expected['low'])}, {fmt(expected['high'])}]",
        f"      report {summary['report']['markdown']}; scatter {summary['scatter']}",
        f"wall time: {summary['wall_s']:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items()) + ")",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make demo", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(".demo"), help="demo folder (default .demo)")
    parser.add_argument("--table", type=Path, default=HELP_TABLE, help="public latency table to import (default HELP's)")
    parser.add_argument("--inventory", type=Path, default=Path("inventory.yaml"))
    parser.add_argument("--device", default="cpu-local", help="inventory device to add (default cpu-local)")
    parser.add_argument("--samples", type=int, default=20, help="archs the sampler picks (default 20)")
    parser.add_argument("--truth", type=int, default=100, help="random archs measured as ground truth (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", help="comma-separated HELP devices to pre-train on (default: HELP's ND sources)")
    parser.add_argument("--source-samples", type=int, default=DEFAULT_SOURCE_SAMPLES)
    parser.add_argument("--method", help="default: the project's best")
    parser.add_argument("--epochs", type=int, help="training epochs (neural methods; fewer = faster, worse)")
    parser.add_argument("--quiet", action="store_true", help="no campaign progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.samples < 1 or args.truth < 2:
        raise UserError("--samples must be >= 1 and --truth >= 2")
    options = DemoOptions(
        root=args.root, table=args.table, inventory=args.inventory, device=args.device, samples=args.samples, truth=args.truth,
        seed=args.seed, sources=[s for s in (args.sources or "").split(",") if s] or TASKS["ND"].sources,
        source_samples=args.source_samples, method=args.method, epochs=args.epochs,
        progress=not args.quiet and not args.json,
    )
    summary = run_demo(options)
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
