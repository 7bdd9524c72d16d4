"""Predicted against measured latency, log-log, on a range a person can read.

A few archs far from the rest (HELP's raspi4 has archs "measured" at 0.01 ms
next to a body at 5-90 ms) would squash the cloud into a corner. The axes
therefore span the data inside log-space fences (quartiles -/+ 3 interquartile
ranges of log10 latency, measured and predicted together); points outside are
drawn at the border as orange crosses and counted in the legend. Nothing is
dropped: the JSON keeps every point.

Example:
    >>> import numpy as np
    >>> body = np.geomspace(10, 80, 200)
    >>> low, high = display_range(np.concatenate([body, [0.01]]))
    >>> 0.01 < low < 10 and high >= 80
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loop.report_plot import log_axis, plt

#: Fences at the quartiles -/+ this many interquartile ranges of log10 latency.
FENCE_IQR = 3.0
_MARGIN = 1.12


def display_range(values: np.ndarray) -> tuple[float, float]:
    """(low, high) of the axes: the positive values inside the log-space fences, with a small margin."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return 0.1, 10.0
    logs = np.log10(positive)
    q25, q75 = np.percentile(logs, [25, 75])
    spread = max(q75 - q25, 0.05)
    inside = positive[(logs >= q25 - FENCE_IQR * spread) & (logs <= q75 + FENCE_IQR * spread)]
    return float(inside.min()) / _MARGIN, float(inside.max()) * _MARGIN


def draw_scatter(measured: np.ndarray, predicted: np.ndarray, title: str) -> Any:
    """The figure: points, y = x and +-10% lines, log axes on :func:`display_range`."""
    low, high = display_range(np.concatenate([measured, predicted]))
    x, y = np.clip(measured, low, high), np.clip(predicted, low, high)
    outside = (x != measured) | (y != predicted)
    figure, axes = plt.subplots(figsize=(5.2, 5.0))
    size = 18 if measured.size < 200 else 4
    axes.scatter(x[~outside], y[~outside], s=size, alpha=0.6, linewidths=0, color="#3b75af",
                 label=f"{int((~outside).sum())} held-out archs")
    if outside.any():
        axes.scatter(x[outside], y[outside], s=22, marker="x", linewidths=0.8, color="#ef8636",
                     label=f"{int(outside.sum())} outside the range, drawn at the border")
    axes.plot([low, high], [low, high], color="black", linewidth=0.8, label="y = x")
    axes.plot([low, high], [low * 1.1, high * 1.1], color="grey", linewidth=0.7, linestyle=":", label="+-10%")
    axes.plot([low, high], [low / 1.1, high / 1.1], color="grey", linewidth=0.7, linestyle=":")
    log_axis(axes.xaxis, low, high)
    log_axis(axes.yaxis, low, high)
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_aspect("equal")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("measured latency (ms)")
    axes.set_ylabel("predicted latency (ms)")
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(alpha=0.25, which="major")
    return figure


__all__ = ["FENCE_IQR", "display_range", "draw_scatter"]
