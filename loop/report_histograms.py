"""Per-target latency histograms of one search space: one small panel per target, in one PNG.

Each panel stacks the ``ok`` rows and the ``unstable`` ones (failed rows have
no latency). Where a target's latencies span more than a factor of
:data:`LOG_RATIO` the bins are log-spaced and the x axis is logarithmic.

Example:
    >>> import numpy as np
    >>> h = histogram(np.array([1.0, 2.0, 50.0]), np.array([]))
    >>> h["log_x"], sum(h["ok_counts"])
    (True, 3)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Patch

from loop.report_plot import Figure, file_name, log_axis, plt, save_png
from loop.report_store import SpaceRows

#: max / min latency above which a histogram uses a log x axis.
LOG_RATIO = 10.0
BINS = 30
COLUMNS = 6
OK_COLOUR = "#3b75af"
UNSTABLE_COLOUR = "#ef8636"


def histogram(ok: np.ndarray, unstable: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Shared bin edges and counts of the ok and unstable latencies (ms), with quartiles of both together.

    Fewer bins for few rows (twice the square root of their number, at least 5), so a target
    with a dozen rows is not a comb of ones.
    """
    values = np.concatenate([ok, unstable])
    values = values[np.isfinite(values)]
    bins = min(bins, max(5, int(2 * math.sqrt(values.size))))
    if values.size == 0:
        return {"n_ok": 0, "n_unstable": 0, "log_x": False, "edges_ms": [], "ok_counts": [], "unstable_counts": []}
    low, high = float(values.min()), float(values.max())
    log_x = low > 0 and high / low > LOG_RATIO
    if log_x:
        edges = np.geomspace(low, high, bins + 1)
    elif low == high:
        edges = np.linspace(low - 0.5, high + 0.5, bins + 1) if low == 0 else np.linspace(low * 0.95, high * 1.05, bins + 1)
    else:
        edges = np.linspace(low, high, bins + 1)
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {
        "n_ok": int(ok.size),
        "n_unstable": int(unstable.size),
        "log_x": bool(log_x),
        "edges_ms": edges.tolist(),
        "ok_counts": np.histogram(ok, edges)[0].astype(int).tolist(),
        "unstable_counts": np.histogram(unstable, edges)[0].astype(int).tolist(),
        "median_ms": float(median),
        "iqr_ms": [float(q25), float(q75)],
        "min_ms": low,
        "max_ms": high,
    }


def histograms_figure(space_rows: SpaceRows, out: Path) -> Figure | None:
    """Write ``<space>-latency-histograms.png``; None where no target has a latency."""
    rows = space_rows.rows
    data: dict[str, dict[str, Any]] = {}
    for target in space_rows.targets():
        mine = rows[rows["target"] == target]
        ok = mine.loc[mine["status"] == "ok", "latency_ms"].dropna().to_numpy(dtype="float64")
        unstable = mine.loc[mine["status"] == "unstable", "latency_ms"].dropna().to_numpy(dtype="float64")
        data[target] = histogram(ok, unstable)
    drawn = {t: h for t, h in data.items() if h["edges_ms"]}
    if not drawn:
        return None
    path = out / file_name(space_rows.space, "latency-histograms")
    save_png(_draw(drawn, space_rows.space), path)
    caption = (f"{space_rows.space}: distribution of measured latency per target ({len(drawn)} targets; "
               "ok rows, unstable rows stacked in orange; log x where the range exceeds 10x)")
    return Figure("latency_histograms", path, caption, {"targets": data}, space=space_rows.space)


def _draw(data: dict[str, dict[str, Any]], space: str) -> Any:
    k = len(data)
    columns = min(COLUMNS, k)
    lines = math.ceil(k / columns)
    figure, grid = plt.subplots(lines, columns, figsize=(2.6 * columns, 2.1 * lines + 0.6), squeeze=False)
    for axes, (target, h) in zip(grid.flat, data.items()):
        edges = np.asarray(h["edges_ms"])
        widths = np.diff(edges)
        axes.bar(edges[:-1], h["ok_counts"], width=widths, align="edge", color=OK_COLOUR, label="ok")
        if h["n_unstable"]:
            axes.bar(edges[:-1], h["unstable_counts"], width=widths, align="edge", bottom=h["ok_counts"],
                     color=UNSTABLE_COLOUR, label="unstable")
        if h["log_x"]:
            log_axis(axes.xaxis, h["min_ms"], h["max_ms"])
        axes.axvline(h["median_ms"], color="black", linewidth=0.8, linestyle="--")
        unstable = f" + {h['n_unstable']} unstable" if h["n_unstable"] else ""
        axes.set_title(f"{target}\n{h['n_ok']} ok{unstable}, median {_ms(h['median_ms'])}", fontsize=8)
        axes.tick_params(which="both", labelsize=7)
        axes.set_xlabel("latency (ms)", fontsize=7)
    for axes in list(grid.flat)[k:]:
        axes.set_visible(False)
    grid.flat[0].set_ylabel("rows", fontsize=7)
    if any(h["n_unstable"] for h in data.values()):
        handles = [Patch(color=OK_COLOUR, label="ok"), Patch(color=UNSTABLE_COLOUR, label="unstable")]
        figure.legend(handles=handles, loc="upper right", ncol=2, fontsize=8, frameon=False)
    figure.suptitle(f"{space}: measured latency per target (dashed: median)", fontsize=11)
    figure.tight_layout()
    return figure


def _ms(value: float) -> str:
    return f"{value:.3g} ms"


__all__ = ["BINS", "LOG_RATIO", "histogram", "histograms_figure"]
