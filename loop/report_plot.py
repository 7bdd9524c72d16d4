"""What every ``farm report`` figure shares: the Agg backend, a file-safe name, an atomic PNG write.

A figure is a :class:`Figure`: the PNG's path, a one-line caption for
``index.md`` and the numbers behind it (what ``farm report --json`` prints).

Example:
    >>> file_name("nasbench201", "cpu-local:torch:b1", "histogram")
    'nasbench201-cpu-local_torch_b1-histogram.png'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
from matplotlib.figure import Figure as MplFigure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from farm.atomic import write_atomic  # noqa: E402

#: Resolution of every PNG: sharp on a laptop screen, small enough for a wiki page.
DPI = 120

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Figure:
    """One written PNG: where it is, what it shows (one line), and the numbers behind it."""

    kind: str
    path: Path
    caption: str
    data: dict[str, Any] = field(default_factory=dict)
    space: str | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "space": self.space, "target": self.target, "file": self.path.name,
                "caption": self.caption, "data": self.data}


def file_name(*parts: str) -> str:
    """``part-part-part.png`` with every character a file name should not hold replaced by ``_``."""
    return "-".join(_UNSAFE.sub("_", part) for part in parts) + ".png"


def log_axis(axis: Any, low: float, high: float) -> None:
    """A log axis labelled with plain numbers (``0.5 1 2 5 10``): denser ticks the fewer decades it spans."""
    set_scale = axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale
    set_scale("log")
    decades = math.log10(high / low) if low > 0 else 3.0
    subs = (1.0, 2.0, 3.0, 5.0) if decades <= 1 else (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def save_png(figure: MplFigure, path: Path) -> Path:
    """Write ``figure`` to ``path`` atomically (:func:`farm.atomic.write_atomic`) and close it."""
    try:
        return write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=DPI, bbox_inches="tight"))
    finally:
        plt.close(figure)


__all__ = ["DPI", "Figure", "file_name", "log_axis", "plt", "save_png"]
