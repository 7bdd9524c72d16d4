"""How repeatable each target's measurements are: the share of ok / unstable / failed rows and the CV.

One horizontal bar per target, three panels side by side:

1. the share of its rows that are ``ok``, ``unstable`` (the protocol's verdict:
   its estimate did not settle within the device's limits) and ``failed``;
2. the median coefficient of variation of its runs, with the interquartile
   range as the error bar (imported rows carry none: "no CV recorded" is written);
3. where the store has ``ci_low_ms`` / ``ci_high_ms``: the median relative
   half-width of each latency's confidence interval, ``(high - low) / 2 / latency``.

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"status": ["ok", "ok", "unstable", "failed"], "cv": [0.01, 0.03, 0.2, None],
    ...                      "latency_ms": [1.0, 2.0, 3.0, None]})
    >>> s = target_stability(rows)
    >>> s["rows"], s["share"]["unstable"], s["cv"]["median"]
    (4, 0.25, 0.03)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loop.report_plot import Figure, file_name, plt, save_png
from loop.report_store import CI_COLUMNS, SpaceRows

STATUSES: tuple[str, ...] = ("ok", "unstable", "failed")
_COLOURS = {"ok": "#4c9a2a", "unstable": "#ef8636", "failed": "#c0392b"}


def _quartiles(values: pd.Series) -> dict[str, Any]:
    clean = values.dropna().to_numpy(dtype="float64")
    if clean.size == 0:
        return {"n": 0, "median": None, "iqr": [None, None]}
    q25, median, q75 = np.percentile(clean, [25, 50, 75])
    return {"n": int(clean.size), "median": float(median), "iqr": [float(q25), float(q75)]}


def target_stability(rows: pd.DataFrame) -> dict[str, Any]:
    """Counts and shares per status, quartiles of the CV and (where present) of the relative CI half-width."""
    counts = {status: int((rows["status"] == status).sum()) for status in STATUSES}
    total = int(len(rows))
    measured = rows[rows["status"] != "failed"]
    result: dict[str, Any] = {
        "rows": total,
        "counts": counts,
        "share": {status: counts[status] / total if total else 0.0 for status in STATUSES},
        "cv": _quartiles(measured["cv"]),
    }
    if all(column in rows.columns for column in CI_COLUMNS):
        low, high = measured[CI_COLUMNS[0]], measured[CI_COLUMNS[1]]
        result["ci_relative_half_width"] = _quartiles((high - low) / 2 / measured["latency_ms"])
    return result


def stability_figure(space_rows: SpaceRows, out: Path) -> Figure:
    """Write ``<space>-stability.png`` and return it with the numbers per target."""
    rows = space_rows.rows
    data = {target: target_stability(rows[rows["target"] == target]) for target in space_rows.targets()}
    path = out / file_name(space_rows.space, "stability")
    save_png(_draw(data, space_rows.space, space_rows.has_ci), path)
    unstable = sum(d["counts"]["unstable"] for d in data.values())
    failed = sum(d["counts"]["failed"] for d in data.values())
    total = sum(d["rows"] for d in data.values())
    caption = (f"{space_rows.space}: per target, the share of ok / unstable / failed rows "
               f"({unstable} unstable and {failed} failed of {total}) and the median CV of the runs"
               + (" and the median relative CI half-width" if space_rows.has_ci else ""))
    return Figure("stability", path, caption, {"targets": data}, space=space_rows.space)


def _draw(data: dict[str, dict[str, Any]], space: str, with_ci: bool) -> Any:
    names = list(data)
    k = len(names)
    panels = 3 if with_ci else 2
    figure, axes = plt.subplots(1, panels, sharey=True, figsize=(4.0 * panels + 1.5, max(2.5, 0.32 * k + 1.4)),
                                squeeze=False)
    positions = np.arange(k)
    left = np.zeros(k)
    shares = axes[0, 0]
    for status in STATUSES:
        widths = np.array([data[n]["share"][status] for n in names])
        shares.barh(positions, widths, left=left, color=_COLOURS[status], label=status, height=0.7)
        left += widths
    for i, name in enumerate(names):
        counts = data[name]["counts"]
        shares.text(1.01, i, f"{counts['ok']}/{counts['unstable']}/{counts['failed']}", va="center", fontsize=7)
    shares.set_xlim(0, 1.28)
    shares.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    shares.set_xlabel("share of rows (right: ok/unstable/failed counts)", fontsize=8)
    shares.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    shares.set_yticks(positions, names, fontsize=8)
    shares.tick_params(axis="x", labelsize=7)
    shares.invert_yaxis()
    _quartile_bars(axes[0, 1], names, [data[n]["cv"] for n in names], "median CV of the runs (%), bar: IQR",
                   "no CV recorded")
    if with_ci:
        _quartile_bars(axes[0, 2], names, [data[n].get("ci_relative_half_width", {"n": 0}) for n in names],
                       "median CI half-width (% of latency), bar: IQR", "no CI")
    figure.suptitle(f"{space}: measurement stability per target", fontsize=11)
    figure.tight_layout()
    return figure


def _quartile_bars(axes: Any, names: list[str], quartiles: list[dict[str, Any]], label: str, missing: str) -> None:
    for i, q in enumerate(quartiles):
        if not q.get("n"):
            axes.text(0.02, i, missing, va="center", fontsize=7, color="#777777", transform=axes.get_yaxis_transform())
            continue
        median = 100 * q["median"]
        low, high = 100 * q["iqr"][0], 100 * q["iqr"][1]
        axes.barh(i, median, color="#3b75af", height=0.7)
        axes.errorbar(median, i, xerr=[[median - low], [high - median]], color="black", linewidth=0.8, capsize=2)
    axes.set_xlabel(label, fontsize=8)
    axes.set_xlim(left=0)
    axes.tick_params(labelsize=7)


__all__ = ["STATUSES", "stability_figure", "target_stability"]
