"""Device-to-device Spearman heatmap of one search space (like HELP's supplementary Table A.3).

Each cell is Spearman's rho between two targets' ``ok`` latencies over the
archs both have measured (at least :data:`MIN_SHARED`; grey otherwise).
Targets are ordered by average-linkage clustering on ``1 - rho`` (with the
optimal leaf order), so devices that rank architectures alike sit together;
values are written into the cells while the matrix is small enough to read.

Example:
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 6, 9], "c": [4.0, 3, 2, 1]})
    >>> m = spearman_matrix(wide)
    >>> m.pair("a", "b").rho, m.pair("a", "c").rho
    (1.0, -1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from loop.report_plot import Figure, file_name, plt, save_png
from loop.report_stats import Correlation, finite, interval
from loop.report_store import SpaceRows

#: Fewest shared archs for a pair's rho to be shown.
MIN_SHARED = 4
#: Largest matrix whose cells get their value written in.
ANNOTATE_UP_TO = 30


@dataclass(frozen=True)
class SpearmanMatrix:
    """Pairwise Spearman rho of targets (in display order) and the archs each pair shares."""

    names: list[str]
    rho: np.ndarray
    shared: np.ndarray
    ordering: str

    def pair(self, a: str, b: str) -> Correlation:
        """The correlation of targets ``a`` and ``b`` with its 95% interval."""
        i, j = self.names.index(a), self.names.index(b)
        rho, n = float(self.rho[i, j]), int(self.shared[i, j])
        return Correlation(rho, n, *interval(rho, n))

    def to_dict(self) -> dict[str, Any]:
        k = len(self.names)
        pairs = [self.pair(self.names[i], self.names[j]) for i in range(k) for j in range(i + 1, k)]
        return {
            "targets": self.names,
            "ordering": self.ordering,
            "min_shared_archs": MIN_SHARED,
            "spearman": [[finite(v) for v in row] for row in self.rho.tolist()],
            "shared_archs": self.shared.astype(int).tolist(),
            "pairs": [
                {"a": self.names[i], "b": self.names[j], **pair.to_dict()}
                for (i, j), pair in zip(((i, j) for i in range(k) for j in range(i + 1, k)), pairs)
            ],
        }


def spearman_matrix(latencies: pd.DataFrame) -> SpearmanMatrix:
    """Pairwise Spearman of the columns of ``latencies`` (NaN = unmeasured) over shared rows, clustered."""
    measured = latencies.notna().to_numpy(dtype="int64")
    shared = measured.T @ measured
    rho = latencies.corr(method="spearman", min_periods=MIN_SHARED).to_numpy(dtype="float64", copy=True)
    rho[shared < MIN_SHARED] = np.nan
    order, ordering = _cluster_order(rho)
    names = [str(latencies.columns[i]) for i in order]
    return SpearmanMatrix(names, rho[np.ix_(order, order)], shared[np.ix_(order, order)], ordering)


def _cluster_order(rho: np.ndarray) -> tuple[list[int], str]:
    k = rho.shape[0]
    if k < 3:
        return list(range(k)), "store order"
    distance = 1.0 - np.nan_to_num(rho, nan=0.0)  # no shared archs: as if unrelated
    distance = np.clip((distance + distance.T) / 2, 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    linkage = hierarchy.optimal_leaf_ordering(hierarchy.linkage(condensed, method="average"), condensed)
    return [int(i) for i in hierarchy.leaves_list(linkage)], "average-linkage clustering on 1 - Spearman"


def heatmap_figure(space_rows: SpaceRows, out: Path) -> Figure | None:
    """Write ``<space>-spearman.png``; None where the space has fewer than two targets."""
    latencies = space_rows.table.latencies
    if latencies.shape[1] < 2:
        return None
    matrix = spearman_matrix(latencies)
    path = out / file_name(space_rows.space, "spearman")
    save_png(_draw(matrix, space_rows.space), path)
    finite_rho = matrix.rho[~np.eye(len(matrix.names), dtype=bool)]
    finite_rho = finite_rho[~np.isnan(finite_rho)]
    spread = f"rho {finite_rho.min():.2f} to {finite_rho.max():.2f}" if finite_rho.size else "no pair shares enough archs"
    caption = (f"{space_rows.space}: Spearman rank correlation of latencies between every two of "
               f"{len(matrix.names)} targets over the archs both measured ({spread}); similar devices clustered together")
    return Figure("spearman_heatmap", path, caption, matrix.to_dict(), space=space_rows.space)


def _draw(matrix: SpearmanMatrix, space: str) -> Any:
    k = len(matrix.names)
    side = max(5.0, 0.36 * k + 2.6)
    figure, axes = plt.subplots(figsize=(side + 1.2, side))
    values = matrix.rho
    observed = values[~np.isnan(values)]
    low = max(-1.0, math.floor((float(observed.min()) if observed.size else 0.0) * 10) / 10)
    low = min(low, 0.9)
    colours = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    image = axes.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=low, vmax=1.0)
    measured = np.diag(matrix.shared).astype(int)
    varies = len(set(measured.tolist())) > 1
    rows = [f"{name} ({count})" for name, count in zip(matrix.names, measured)] if varies else matrix.names
    axes.set_xticks(range(k), matrix.names, rotation=90, fontsize=8)
    axes.set_yticks(range(k), rows, fontsize=8)
    axes.set_xticks(np.arange(-0.5, k, 1), minor=True)
    axes.set_yticks(np.arange(-0.5, k, 1), minor=True)
    axes.grid(which="minor", color="white", linewidth=0.6)
    axes.tick_params(which="minor", length=0)
    if k <= ANNOTATE_UP_TO:
        size = 9 if k <= 10 else 7 if k <= 18 else 5.5
        middle = (low + 1.0) / 2
        for i in range(k):
            for j in range(k):
                if i == j or math.isnan(values[i, j]):
                    continue
                text = f"{values[i, j]:.2f}".replace("0.", ".", 1) if k > 10 else f"{values[i, j]:.2f}"
                axes.text(j, i, text, ha="center", va="center", fontsize=size,
                          color="black" if values[i, j] > middle else "white")
    bar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    bar.set_label("Spearman rho over the archs both targets measured")
    shared = matrix.shared[~np.eye(k, dtype=bool)]
    counts = f"{int(shared.min())}-{int(shared.max())}" if shared.min() != shared.max() else f"{int(shared.min())}"
    per_target = "; (n) = archs measured ok" if varies else ""
    axes.set_title(f"{space}: device-to-device Spearman of measured latency\n"
                   f"{k} targets, {counts} shared archs per pair{per_target}; order: {matrix.ordering}", fontsize=10)
    return figure


__all__ = ["ANNOTATE_UP_TO", "MIN_SHARED", "SpearmanMatrix", "heatmap_figure", "spearman_matrix"]
