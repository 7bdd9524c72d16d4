"""The report ``add-device`` writes: Markdown for a person, JSON for scripts, a histogram PNG.

``report`` is the JSON-ready dict :func:`loop.add_device.add_device` builds
(see its keys below); this module only renders and writes it, atomically, to
``<reports>/add-device/<space>/<target>/<UTC stamp>/``:

- ``report.md``: what was measured (latency and interval per arch), the
  predicted distribution, the most-correlated known devices, the expected
  Spearman from cross-validation, the registry decision, wall time per step;
- ``report.json``: the same numbers;
- ``predicted.png``: histogram of the predicted latencies of every candidate
  arch, the measured samples marked beneath it.

Example:
    >>> quantiles([1.0, 2.0, 3.0, 4.0, 5.0])["p50"]
    3.0
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from farm.intervals import CI_LEVEL
from farm.atomic import write_atomic, write_text_atomic

#: Quantiles of the predicted distribution in the report.
QUANTILES: tuple[float, ...] = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


@dataclass(frozen=True)
class ReportFiles:
    """Where the report went."""

    folder: Path
    markdown: Path
    json: Path
    histogram: Path

    def to_dict(self) -> dict[str, str]:
        return {"folder": str(self.folder), "markdown": str(self.markdown), "json": str(self.json),
                "histogram": str(self.histogram)}


def quantiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """``p0 p5 p25 p50 p75 p95 p100`` of ``values`` (ms)."""
    array = np.asarray(values, dtype="float64")
    return {f"p{round(q * 100)}": float(np.quantile(array, q)) for q in QUANTILES}


def report_folder(root: str | os.PathLike[str], space: str, target: str) -> Path:
    """``<root>/add-device/<space>/<target>/<UTC stamp>`` (``:`` in a target name becomes ``_``)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / "add-device" / space / target.replace(":", "_") / stamp


def write_report(folder: Path, report: Mapping[str, Any], predicted_ms: np.ndarray, measured_ms: Sequence[float]) -> ReportFiles:
    """Write ``report.md``, ``report.json`` and ``predicted.png`` into ``folder``."""
    files = ReportFiles(folder, folder / "report.md", folder / "report.json", folder / "predicted.png")
    write_histogram(files.histogram, predicted_ms, measured_ms, title=f"{report['target']} ({report['space']})")
    payload = {**report, "files": files.to_dict()}
    write_text_atomic(json.dumps(jsonable(payload), indent=1) + "\n", files.json)
    write_text_atomic(render_markdown(payload), files.markdown)
    return files


def write_histogram(path: Path, predicted_ms: np.ndarray, measured_ms: Sequence[float], *, title: str) -> Path:
    """Histogram of the predictions (log x when they span more than 10x), measured samples as ticks under it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(predicted_ms, dtype="float64")
    values = values[np.isfinite(values) & (values > 0)]
    figure, axis = plt.subplots(figsize=(7, 3.6))
    log = values.size > 0 and values.max() / values.min() > 10
    bins = np.geomspace(values.min(), values.max(), 60) if log else 60
    axis.hist(values, bins=bins, color="#4C72B0", alpha=0.85, label=f"predicted, {values.size} archs")
    if log:
        axis.set_xscale("log")
        plain_log_ticks(axis.xaxis)
    measured = np.asarray(list(measured_ms), dtype="float64")
    if measured.size:
        axis.plot(measured, np.zeros_like(measured), "|", color="#C44E52", markersize=18, markeredgewidth=1.5,
                  label=f"measured samples ({measured.size})", clip_on=False)
    axis.set_xlabel("latency (ms)" + (", log scale" if log else ""))
    axis.set_ylabel("archs")
    axis.set_title(f"Predicted latency of every candidate arch on {title}")
    axis.legend(frameon=False, fontsize=9)
    figure.tight_layout()

    def save(handle: Any) -> None:
        figure.savefig(handle, format="png", dpi=120)

    try:
        return write_atomic(path, save)
    finally:
        plt.close(figure)


def plain_log_ticks(*axes: Any) -> None:
    """Label log-scale axes ``0.5 1 2 5 10`` instead of ``5x10^-1 10^0 ...``."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    label = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in axes:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(label)
        axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def render_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown report (see the module docstring)."""
    lines = [f"# add-device {report['device']} ({report['space']})", "",
             f"Created {report['created_at']}; target `{report['target']}`; base predictor "
             f"{report['base']['method']} {report['base']['version']} (`{report['base']['path']}`).", ""]
    lines += _measured_section(report)
    lines += _predictions_section(report)
    lines += _correlation_section(report)
    lines += _crossval_section(report)
    version = report["version"]
    if version["registered"]:
        decision = (f"New version v{version['number']} of `{report['space']}/{report['target']}`: "
                    f"{'promoted to current' if version['promoted'] else 'not promoted'} ({version['reason']}).")
    else:
        decision = f"Nothing registered: {version['reason']}."
    lines += ["## Registry", "", f"{decision} Predictions come from v{report['predictions']['version']}.", ""]
    lines += ["## Wall time per step", "", "| step | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in report["timings"].items()]
    lines += [f"| **total** | **{sum(report['timings'].values()):.1f}** |", "",
              "(Writing this report, the last step, is not included; `report.json` of the command's `--json` has it.)", ""]
    return "\n".join(lines)


def _measured_section(report: Mapping[str, Any]) -> list[str]:
    selection, campaign = report["selection"], report["campaign"]
    lines = ["## Measured archs", "",
             f"The {selection['sampler']} sampler chose {len(selection['samples'])} archs among "
             f"{selection['candidates']} candidates ({selection['held_out_excluded']} held-out archs excluded); "
             f"{campaign['already_stored']} were already stored, {campaign['new_rows']} rows were added now. "
             f"The transfer learned from {report['transfer']['samples']} rows of the target: these samples, "
             "the campaigns' drift anchors and any other stored rows of it, held-out archs excluded.", "",
             f"| arch | status | latency ms | {CI_LEVEL:.0%} interval ms | CV |", "| --- | --- | ---: | --- | ---: |"]
    for row in report["measured"]:
        interval = (f"[{row['ci_low_ms']:.3f}, {row['ci_high_ms']:.3f}]"
                    if _finite(row.get("ci_low_ms")) and _finite(row.get("ci_high_ms")) else "-")
        latency = f"{row['latency_ms']:.3f}" if _finite(row.get("latency_ms")) else "-"
        cv = f"{row['cv']:.1%}" if _finite(row.get("cv")) else "-"
        arch = str(row["arch"]).replace("|", "\\|")  # a literal | inside a table cell
        lines.append(f"| `{arch}` | {row['status']} | {latency} | {interval} | {cv} |")
    return lines + [""]


def _predictions_section(report: Mapping[str, Any]) -> list[str]:
    predictions = report["predictions"]
    q = predictions["quantiles"]
    return ["## Predicted distribution", "",
            f"{predictions['archs']} archs ({predictions['pool']}) -> `{predictions['path']}`.", "",
            "| min | p5 | p25 | median | p75 | p95 | max |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            "| " + " | ".join(fmt(q[k]) for k in ("p0", "p5", "p25", "p50", "p75", "p95", "p100")) + " |", "",
            "![predicted latency histogram](predicted.png)", ""]


def _correlation_section(report: Mapping[str, Any]) -> list[str]:
    lines = ["## Most-correlated known devices", "",
             "Spearman of this device's measured samples against each known target on the same archs "
             "(95% bootstrap interval).", "", "| target | Spearman | 95% interval | archs |", "| --- | ---: | --- | ---: |"]
    for item in report["correlated"]:
        lines.append(f"| {item['target']} | {fmt(item['rho'])} | [{fmt(item['low'])}, {fmt(item['high'])}] | {item['n']} |")
    if not report["correlated"]:
        lines.append("| (no known target shares enough archs) | | | |")
    return lines + [""]


def _crossval_section(report: Mapping[str, Any]) -> list[str]:
    cv = report["expected_spearman"]
    if not cv["folds"]:
        return ["## Expected Spearman", "", "Too few samples for cross-validation.", ""]
    pooled = cv["pooled"]
    return ["## Expected Spearman (cross-validation on the samples)", "",
            f"{cv['folds']}-fold: transfer on {cv['folds'] - 1} folds, predict the held fold; pooled out-of-fold "
            f"Spearman **{fmt(pooled['rho'])}** (95% bootstrap interval [{fmt(pooled['low'])}, {fmt(pooled['high'])}], "
            f"n = {pooled['n']}); per fold {fmt(cv['fold_mean'])} +- {fmt(cv['fold_std'])} (mean +- std).", ""]


def fmt(value: Any, spec: str = ".3f") -> str:
    """``value`` formatted with ``spec``, or ``-`` where it is missing (None, NaN).

    Example:
        >>> fmt(0.91234), fmt(None), fmt(float("nan"), ".1%")
        ('0.912', '-', '-')
    """
    return format(value, spec) if _finite(value) else "-"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf as None and numpy scalars as Python numbers (strict JSON).

    Example:
        >>> jsonable({"a": [float("nan"), np.float32(1.5)]})
        {'a': [None, 1.5]}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


__all__ = ["QUANTILES", "ReportFiles", "fmt", "jsonable", "plain_log_ticks", "quantiles", "render_markdown", "report_folder", "write_histogram", "write_report"]
