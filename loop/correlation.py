"""Which known devices rank archs most like a new one: Spearman of its samples against each other target.

For every other target of the space in the store, the Spearman of the new
device's measured latencies against that target's latencies on the archs
both have (at least :data:`MIN_COMMON` of them), with a bootstrap interval;
sorted best first. It tells a person which known device the new one
resembles (and why a transfer from it works, or not).

Example:
    >>> import pandas as pd
    >>> from trainer.data import TargetTable
    >>> frame = pd.DataFrame({"arch": list("abcde") * 2, "device": ["d1"] * 5 + ["d2"] * 5,
    ...                       "latency_ms": [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]})
    >>> table = TargetTable.from_long(frame, "nasbench201")
    >>> new = pd.Series([1.0, 2.1, 2.9, 4.2, 5.0], index=list("abcde"))
    >>> [(c.target, round(c.estimate.rho, 2)) for c in most_correlated(table, new, exclude=())]
    [('d1', 1.0), ('d2', -1.0)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd

from loop.stats import SpearmanEstimate, spearman_with_interval
from trainer.data import TargetTable

#: Fewer shared archs than this give no correlation.
MIN_COMMON = 5


@dataclass(frozen=True)
class DeviceCorrelation:
    """Spearman of the new device against one known target, on the archs they share."""

    target: str
    estimate: SpearmanEstimate

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, **self.estimate.to_dict()}


def most_correlated(table: TargetTable, samples: pd.Series, *, exclude: Iterable[str], top: int | None = None) -> list[DeviceCorrelation]:
    """Known targets of ``table`` (except ``exclude``) by Spearman against ``samples`` (arch -> ms), best first."""
    skip = set(exclude)
    found = []
    for name in table.names():
        if name in skip:
            continue
        other = table.latencies[name].reindex(samples.index).dropna()
        if len(other) < MIN_COMMON:
            continue
        estimate = spearman_with_interval(samples.loc[other.index].to_numpy(), other.to_numpy())
        found.append(DeviceCorrelation(name, estimate))
    found.sort(key=lambda c: (-c.estimate.rho if math.isfinite(c.estimate.rho) else 2.0, c.target))  # NaN last
    return found[:top] if top is not None else found


__all__ = ["DeviceCorrelation", "MIN_COMMON", "most_correlated"]
