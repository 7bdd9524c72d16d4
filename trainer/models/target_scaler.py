"""Per-target latency scaling kept inside a predictor (ms in, ms out).

A scaler is fitted on the latencies a predictor trains on for one target
(a source's training archs, or a new target's few samples) and nothing else,
so no held-out latency of a target can leak into training through it.

Kinds:
    ``minmax``: ``(y - min) / (max - min)`` (HELP and MultiPredict scale per device this way);
    ``zscore``: ``(y - mean) / std``;
    ``log_zscore``: z-score of ``log(y)``: a latency ratio becomes a distance, so a
    device that is uniformly 2x slower differs only by an offset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import numpy as np

ScalerKind = Literal["minmax", "zscore", "log_zscore"]
_TINY = 1e-6


@dataclass(frozen=True)
class TargetScaler:
    """An affine map of (optionally log-) latency to the training scale.

    Example:
        >>> s = TargetScaler.fit(np.array([1.0, 2.0, 3.0]), "minmax")
        >>> s.transform(np.array([2.0])).tolist(), s.inverse(np.array([1.0])).tolist()
        ([0.5], [3.0])
    """

    kind: ScalerKind
    shift: float
    scale: float

    @classmethod
    def fit(cls, latency_ms: np.ndarray, kind: ScalerKind) -> "TargetScaler":
        """Fit on the latencies (ms) of one target's training archs."""
        y = np.asarray(latency_ms, dtype=np.float64)
        if y.size == 0 or not np.all(np.isfinite(y)):
            raise ValueError("TargetScaler.fit needs at least one finite latency")
        if kind == "log_zscore":
            y = np.log(np.maximum(y, _TINY))
        if kind == "minmax":
            shift, scale = float(y.min()), float(y.max() - y.min())
        elif kind in ("zscore", "log_zscore"):
            shift, scale = float(y.mean()), float(y.std())
        else:
            raise ValueError(f"unknown scaler kind {kind!r}; use minmax, zscore or log_zscore")
        return cls(kind, shift, scale if scale > _TINY else 1.0)

    def transform(self, latency_ms: np.ndarray) -> np.ndarray:
        """Latency in ms -> training scale."""
        y = np.asarray(latency_ms, dtype=np.float64)
        if self.kind == "log_zscore":
            y = np.log(np.maximum(y, _TINY))
        return (y - self.shift) / self.scale

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Training scale -> latency in ms."""
        y = np.asarray(scaled, dtype=np.float64) * self.scale + self.shift
        return np.exp(y) if self.kind == "log_zscore" else y

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TargetScaler":
        return cls(kind=data["kind"], shift=float(data["shift"]), scale=float(data["scale"]))
