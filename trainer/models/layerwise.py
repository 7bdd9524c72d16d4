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

Table keys are op types. In NAS-Bench-201 and FBNet every position's tensor
shapes are fixed by the macro-architecture, so an arch's cost is a sum of
per-(position, op) costs; :func:`op_macs` recovers that MACs table from
``SearchSpace.flops`` by finite differences. An op type that executes MACs is
priced per MAC (its feature is the MACs it executes in the arch: a depthwise
5x5 at 32x32 costs more than at 4x4), an op type without MACs (none, skip,
pooling) per occurrence (its feature is its count). Keying on (position, op)
instead would leave 198 unknowns on FBNet for 20 samples; that fit ranks
FBNet archs with Spearman 0.27, this one with 0.95. OFA's cost is not
additive over positions (depth masks, resolution), so there the keys fall
back to the one-hot (position, choice) entries.

Fitted on end-to-end latencies, this table is stronger than the papers'
layer-wise baseline built from isolated per-op timings (BRP-NAS reports about
30% of NB201 archs within +-10% for it).

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

import functools
import importlib
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from scipy.optimize import nnls

from farm import spaces
from trainer import encodings
from trainer.models.closed_form import ClosedFormPredictor


_VOCABULARIES: dict[str, tuple[str, str]] = {
    "nasbench201": ("farm.spaces.nasbench201", "OPS"),
    "fbnet": ("farm.spaces.fbnet", "BLOCKS"),
}


@functools.lru_cache(maxsize=None)
def op_macs(space: str) -> np.ndarray | None:
    """``[positions, ops]`` MACs of each op at each position (relative to the cheapest op there),
    by finite differences of ``flops``; None where the space is not additive over positions."""
    if space not in _VOCABULARIES:
        return None
    module, attribute = _VOCABULARIES[space]
    ops: tuple[str, ...] = getattr(importlib.import_module(module), attribute)
    space_obj = spaces.get(space)
    base = list(space_obj.parse(space_obj.sample(1, seed=0)[0]))
    reference = space_obj.flops(base)
    table = np.zeros((len(base), len(ops)))
    for position in range(len(base)):
        for k, op in enumerate(ops):
            table[position, k] = space_obj.flops([*base[:position], op, *base[position + 1:]]) - reference
    table -= table.min(axis=1, keepdims=True)
    base_sum = sum(table[p, ops.index(op)] for p, op in enumerate(base))
    for arch in space_obj.sample(5, seed=1):  # the decomposition must reproduce flops, the layout the one-hot
        parsed = list(space_obj.parse(arch))
        summed = sum(table[p, ops.index(op)] for p, op in enumerate(parsed))
        layout = space_obj.onehot(arch).reshape(len(base), len(ops)).argmax(axis=1).tolist()
        if not np.isclose(summed - base_sum, space_obj.flops(arch) - reference) or layout != [ops.index(o) for o in parsed]:
            return None
    return table


def layer_features(space: str, archs: Sequence[str]) -> np.ndarray:
    """``[n, keys]`` per-op-type features: MACs (millions) for ops that execute MACs, counts otherwise."""
    onehot = encodings.onehot(space, archs).astype("float64")
    macs = op_macs(space)
    if macs is None:
        return onehot
    positions, ops = macs.shape
    per_position = onehot.reshape(len(archs), positions, ops)
    counts = per_position.sum(axis=1)
    executed = (per_position * macs[None]).sum(axis=1) / 1e6
    priced_per_mac = macs.max(axis=0) > 0
    return np.where(priced_per_mac[None, :], executed, counts)


class LayerwiseTable(ClosedFormPredictor):
    """Per-op latency table by non-negative ridge least squares, summed, one scale factor."""

    method: ClassVar[str] = "layerwise"
    min_target_samples: ClassVar[int] = 2
    defaults: ClassVar[dict[str, Any]] = {"ridge": 0.01}

    def features(self, archs: Sequence[str]) -> np.ndarray:
        return layer_features(self.space, archs)

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
