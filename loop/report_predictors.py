"""Figures for each registered predictor: Spearman against target samples, and predicted against measured.

For every (space, target) of a :class:`trainer.versions.PredictorRegistry`
other than the space's base (``_pretrained``):

- **samples curve**: the space's current base predictor is transferred to the
  target with ``n`` of the target's *trainable* rows (``n`` in
  :attr:`CurveConfig.samples`, drawn with each of :attr:`CurveConfig.seeds`)
  and scored by Spearman on the target's held-out slice
  (:mod:`trainer.holdout`), which no registered predictor trains on. Mean over
  seeds, with the min-max band; the current predictor is the star at its own
  sample count.
- **predicted vs measured**: the current predictor of the target on its
  held-out slice, log-log, with the y = x line, Spearman and its 95% interval.

A target the curve or the scatter cannot be drawn for (no base predictor, no
rows of it in the store, too few held-out rows) gets a report whose ``error``
says why; the other figures are still written.

Example:
    >>> CurveConfig().usable(12)
    [5, 10]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from loop.report_plot import Figure, file_name, plt, save_png
from loop.report_progress import StepProgress
from loop.report_scatter import draw_scatter
from loop.report_stats import Correlation, finite, spearman
from loop.report_store import SpaceRows
from trainer import holdout, registry
from trainer.data import DataError, choose
from trainer.evaluate import Metrics, clone
from trainer.models import get_method
from trainer.models.base import Predictor
from trainer.versions import BASE, PredictorRegistry, Version

#: Fewest held-out rows a figure is drawn on (as for the registry's own scores).
MIN_HELD_OUT = holdout.MIN_SCORED


@dataclass(frozen=True)
class CurveConfig:
    """Which sample counts and seeds the Spearman-against-samples curve uses."""

    samples: tuple[int, ...] = (5, 10, 20, 50)
    seeds: tuple[int, ...] = (0, 1, 2)

    def usable(self, trainable: int, minimum: int = 2) -> list[int]:
        """The sample counts that fit in ``trainable`` rows (and that the method accepts)."""
        return [n for n in sorted(set(self.samples)) if minimum <= n <= trainable]


@dataclass
class PredictorReport:
    """What was drawn for one registered (space, target), or why not (``error``)."""

    space: str
    target: str
    version: str | None = None
    method: str | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, Any] | None = None
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "target": self.target, "version": self.version, "method": self.method,
                "curve": self.curve, "current": self.current, "files": [f.path.name for f in self.figures],
                "error": self.error}


@dataclass(frozen=True)
class _Job:
    """One registered target with everything its figures need."""

    space: str
    target: str
    version: Version
    predictor: Predictor
    manifest: dict[str, Any]
    trainable: pd.Series
    held_out: pd.Series
    base: Predictor | None
    sample_counts: list[int]


def predictor_reports(
    registry_root: Path, rows: dict[str, SpaceRows], out: Path, config: CurveConfig, progress: bool = True
) -> list[PredictorReport]:
    """Figures for every registered target of the spaces in ``rows``; one report per target."""
    store = PredictorRegistry(registry_root)
    reports: list[PredictorReport] = []
    jobs: list[tuple[_Job, PredictorReport]] = []
    for space, target in store.entries():
        if target == BASE or space not in rows:
            continue
        report = PredictorReport(space, target)
        reports.append(report)
        job = _prepare(store, rows[space], target, config, report)
        if job is not None:
            jobs.append((job, report))
    steps = StepProgress(sum(1 + len(j.sample_counts) * len(config.seeds) for j, _ in jobs if j.base is not None)
                         + sum(1 for j, _ in jobs if j.base is None), "report: predictor curves", enabled=progress)
    for job, report in jobs:
        scored = _score_current(job)
        report.current = scored.summary
        report.figures.append(_scatter_figure(job, scored, out))
        steps.step(f"{job.space}/{job.target} {job.version.name}: predicted vs measured")
        if job.base is None:
            report.error = (f"no current base predictor ({BASE}) of {job.space} in {registry_root}: "
                            "the samples curve needs one (run `trainer nightly`)")
            continue
        report.curve = _curve(job, config, steps.step)
        report.figures.append(_curve_figure(job, report.curve, report.current, out))
    steps.close()
    return reports


def _prepare(
    store: PredictorRegistry, space_rows: SpaceRows, target: str, config: CurveConfig, report: PredictorReport
) -> _Job | None:
    space = space_rows.space
    version = store.current(space, target)
    if version is None:
        report.error = f"{store.folder(space, target)}: no current version (none promoted yet)"
        return None
    predictor, manifest = registry.load(version.path)
    report.version, report.method = version.name, str(manifest["method"])
    try:
        series = space_rows.table.series(target)
    except DataError:
        report.error = f"{target}: no ok rows of this target in the store's {space} partition"
        return None
    trainable, held_out = holdout.split(series, space)
    if len(held_out) < MIN_HELD_OUT:
        report.error = f"{target}: {len(held_out)} held-out row(s) in the store; figures need {MIN_HELD_OUT}"
        return None
    base_version = store.current(space, BASE)
    base = registry.load(base_version.path)[0] if base_version is not None else None
    cls = type(base) if base is not None else get_method(str(manifest["method"]))
    if base is None and not cls.uses_sources:
        base = cls(space, seed=int(manifest.get("seed") or 0), **dict(manifest.get("hyper") or {}))
    counts = config.usable(len(trainable), cls.min_target_samples)
    return _Job(space, target, version, predictor, manifest, trainable, held_out, base, counts)


@dataclass(frozen=True)
class _Scored:
    """The current predictor on the held-out slice: its correlation, the JSON summary, the scatter's points."""

    correlation: Correlation
    summary: dict[str, Any]
    points: dict[str, list[Any]]


def _score_current(job: _Job) -> _Scored:
    predicted = np.asarray(job.predictor.predict(list(job.held_out.index), job.target), dtype="float64")
    measured = job.held_out.to_numpy(dtype="float64")
    correlation = spearman(predicted, measured)
    metrics = Metrics.compute(predicted, measured)
    trained_on = (job.manifest.get("samples") or {}).get("targets", {}).get(job.target)
    summary = {
        "version": job.version.name,
        "method": job.manifest["method"],
        "trained_on_samples": trained_on,
        **correlation.to_dict(),
        "kendall": metrics.kendall,
        "within_5": metrics.within_5,
        "within_10": metrics.within_10,
    }
    points = {"arch": list(job.held_out.index), "measured_ms": measured.tolist(), "predicted_ms": predicted.tolist()}
    return _Scored(correlation, summary, points)


def _curve(job: _Job, config: CurveConfig, step: Callable[[str], None]) -> list[dict[str, Any]]:
    assert job.base is not None
    archs = list(job.held_out.index)
    measured = job.held_out.to_numpy(dtype="float64")
    points = []
    for n in job.sample_counts:
        per_seed: list[Correlation] = []
        for seed in config.seeds:
            chosen = choose(list(job.trainable.index), n, seed)
            adapted = clone(job.base)
            adapted.transfer(job.target, job.trainable.loc[chosen])
            per_seed.append(spearman(np.asarray(adapted.predict(archs, job.target), dtype="float64"), measured))
            step(f"{job.space}/{job.target}: n={n} seed {seed} rho {per_seed[-1].rho:.3f}")
        values = np.array([c.rho for c in per_seed], dtype="float64")
        points.append({
            "samples": n,
            "seeds": list(config.seeds),
            "spearman": [finite(v) for v in values],
            "mean": finite(float(np.nanmean(values))) if np.isfinite(values).any() else None,
            "std": finite(float(np.nanstd(values, ddof=1))) if np.isfinite(values).sum() > 1 else None,
            "min": finite(float(np.nanmin(values))) if np.isfinite(values).any() else None,
            "max": finite(float(np.nanmax(values))) if np.isfinite(values).any() else None,
            "held_out": len(archs),
        })
    return points


def _scatter_figure(job: _Job, scored: _Scored, out: Path) -> Figure:
    measured = np.asarray(scored.points["measured_ms"])
    predicted = np.asarray(scored.points["predicted_ms"])
    title = (f"{job.target} ({job.space}): {job.manifest['method']} {job.version.name}\n"
             f"Spearman {scored.correlation.label()} held-out archs; within 10%: {scored.summary['within_10']:.0%}")
    path = out / file_name(job.space, job.target, "predicted-vs-measured")
    save_png(draw_scatter(measured, predicted, title), path)
    caption = (f"{job.space}/{job.target}: current predictor {job.version.name} ({job.manifest['method']}) against "
               f"the measured latency of the {len(measured)} held-out archs, Spearman {scored.correlation.label()}")
    data = {key: scored.summary[key] for key in ("version", "method", "spearman", "n", "ci95", "within_10")}
    return Figure("predicted_vs_measured", path, caption, {**data, "held_out": scored.points},
                  space=job.space, target=job.target)


def _curve_figure(job: _Job, curve: list[dict[str, Any]], current: dict[str, Any], out: Path) -> Figure:
    figure, axes = plt.subplots(figsize=(5.6, 4.0))
    drawn = [p for p in curve if p["mean"] is not None]
    if drawn:
        ns = [p["samples"] for p in drawn]
        axes.fill_between(ns, [p["min"] for p in drawn], [p["max"] for p in drawn], color="#3b75af", alpha=0.2,
                          label=f"min-max over {len(drawn[0]['seeds'])} seeds")
        axes.plot(ns, [p["mean"] for p in drawn], marker="o", color="#3b75af", label="mean over seeds")
        for p in drawn:
            axes.annotate(f"{p['mean']:.3f}", (p["samples"], p["mean"]), textcoords="offset points", xytext=(0, 7),
                          ha="center", fontsize=7)
    trained_on = current.get("trained_on_samples")
    if trained_on and current["spearman"] is not None:
        axes.plot([trained_on], [current["spearman"]], marker="*", markersize=13, color="#c0392b", linestyle="none",
                  label=f"current {job.version.name} ({trained_on} samples)")
    shown = [v for p in drawn for v in (p["min"], p["max"])] + ([current["spearman"]] if trained_on else [])
    if shown and None not in shown:
        bottom, top = min(shown), max(shown)
        margin = max(0.02, 0.12 * (top - bottom))
        axes.set_ylim(bottom - margin, top + margin)
    axes.set_xscale("log")
    ticks = sorted({*(p["samples"] for p in curve), *([trained_on] if trained_on else [])})
    axes.set_xticks(ticks, [str(t) for t in ticks])
    axes.minorticks_off()
    axes.set_xlabel(f"target samples used for the transfer (of {len(job.trainable)} trainable)")
    axes.set_ylabel(f"Spearman on {len(job.held_out)} held-out archs")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    base_method = job.base.method if job.base is not None else job.manifest["method"]
    axes.set_title(f"{job.target} ({job.space}): {base_method} base transferred with n samples", fontsize=9)
    path = out / file_name(job.space, job.target, "samples-curve")
    save_png(figure, path)
    summary = ", ".join(f"n={p['samples']}: {p['mean']:.3f}" for p in drawn) or "no sample count fits"
    caption = (f"{job.space}/{job.target}: held-out Spearman of the {base_method} base predictor transferred with n "
               f"of the target's samples, mean over seeds ({summary})")
    return Figure("samples_curve", path, caption, {"curve": curve, "base_method": base_method},
                  space=job.space, target=job.target)


__all__ = ["CurveConfig", "MIN_HELD_OUT", "PredictorReport", "predictor_reports"]
