"""Layer-wise lookup table: per-op latencies fitted on measured archs, summed, scaled once.

The classic baseline BRP-NAS and HELP compare against (ProxylessNAS-style
latency lookup tables). Without per-layer timings, the table is recovered from
end-to-end latencies: each arch is a vector ``c(x)`` counting its ops per
table key, and the per-op latencies ``t >= 0`` plus a fixed cost ``t_0 >= 0``
(stem, reductions, head) solve the non-negative ridge least squares

.. math::
    \\min_{t \\ge 0,\\, t_0 \\ge 0} \\sum_i \\big(y_i / \\bar y - t_0 - c(x_i)^\\top t\\big)^2 + \\lambda \\lVert t \\rVert^2

on the target's samples (``y / mean(y)`` makes ``ridge`` = lambda scale-free).
The summed table is then calibrated to the end-to-end latencies of those same
samples by one scale factor ``s = <y, z> / <z, z>`` with ``z = t_0 + c^T t``:

.. math::  \\hat y(x) = s \\, \\bar y \\, (t_0 + c(x)^\\top t)

It misses fusion and parallelism, which is why the learned predictors beat it.

Table keys: on NAS-Bench-201 every edge of a cell sees the same tensor shape,
so the key is the op (5 counts per arch); on FBNet and OFA the input shape
changes along the network, so the key is (position, op), i.e. the one-hot
encoding of the space.

Example:
    >>> import pandas as pd
    >>> from farm import spaces
    >>> archs = spaces.get("nasbench201").sample(8, seed=0)
    >>> p = LayerwiseTable("nasbench201")
    >>> p.transfer("dev", pd.Series(range(1, 9), index=archs, dtype=float))
    >>> len(p.parameters["dev"]["table_ms"])
    5
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from scipy.optimize import nnls

from trainer import encodings
from trainer.models.closed_form import ClosedFormPredictor


def layer_counts(space: str, archs: Sequence[str]) -> np.ndarray:
    """``[n, keys]`` op counts per lookup-table key (see the module docstring)."""
    onehot = encodings.onehot(space, archs)
    if space == "nasbench201":
        from farm.spaces.nasbench201 import EDGES, OPS

        return onehot.reshape(len(archs), len(EDGES), len(OPS)).sum(axis=1).astype("float64")
    return onehot.astype("float64")


class LayerwiseTable(ClosedFormPredictor):
    """Per-op latency table by non-negative ridge least squares, summed, one scale factor."""

    method: ClassVar[str] = "layerwise"
    min_target_samples: ClassVar[int] = 2
    defaults: ClassVar[dict[str, Any]] = {"ridge": 0.01}

    def features(self, archs: Sequence[str]) -> np.ndarray:
        return layer_counts(self.space, archs)

    def fit(self, x: np.ndarray, y_ms: np.ndarray) -> dict[str, Any]:
        unit = float(np.mean(y_ms))
        target = y_ms / unit
        n, keys = x.shape
        design = np.column_stack([x, np.ones(n)])
        penalty = np.sqrt(float(self.hyper["ridge"])) * np.eye(keys, keys + 1)  # the fixed cost is not shrunk
        weights, _ = nnls(np.vstack([design, penalty]), np.concatenate([target, np.zeros(keys)]))
        summed = design @ weights
        power = float(summed @ summed)
        scale = float(summed @ target) / power if power > 0 else 1.0
        return {
            "table_ms": [float(w * unit) for w in weights[:keys]],
            "fixed_ms": float(weights[keys] * unit),
            "scale": scale,
        }

    def apply(self, x: np.ndarray, parameters: Mapping[str, Any]) -> np.ndarray:
        table = np.asarray(parameters["table_ms"], dtype="float64")
        return parameters["scale"] * (x @ table + parameters["fixed_ms"])
