"""The expected Spearman of a transferred predictor, from k-fold cross-validation on the device's own samples.

For each of ``k`` folds a fresh copy (:func:`trainer.evaluate.clone`) of the base predictor is transferred
with the other ``k - 1`` folds and predicts the held fold; the out-of-fold
predictions of all folds are pooled, and their Spearman against the measured
latencies (with a bootstrap interval) is the estimate. The per-fold Spearman
values give the spread. It is an estimate from ~20 archs that the sampler
chose for diversity, so the interval is wide; it never touches the held-out
slice.

Example:
    >>> import pandas as pd
    >>> from farm import spaces
    >>> from trainer.models import get_method
    >>> archs = spaces.get("nasbench201").sample(20, seed=0)
    >>> base = get_method("flops")("nasbench201")
    >>> samples = pd.Series([1.0 + a.count("conv_3x3") for a in archs], index=archs)
    >>> result = cross_validate(base, "new-device", samples, folds=4)
    >>> result.folds, result.pooled.n
    (4, 20)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from loop.stats import SpearmanEstimate, spearman_with_interval
from trainer.evaluate import clone
from trainer.models.base import Predictor

DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class CrossValidation:
    """Pooled out-of-fold Spearman (with interval) and the per-fold values."""

    pooled: SpearmanEstimate
    per_fold: list[float]
    folds: int

    @property
    def fold_mean(self) -> float:
        finite = [v for v in self.per_fold if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def fold_std(self) -> float:
        finite = [v for v in self.per_fold if math.isfinite(v)]
        return float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "pooled": self.pooled.to_dict(), "per_fold": self.per_fold,
                "fold_mean": self.fold_mean, "fold_std": self.fold_std}


def cross_validate(base: Predictor, target: str, samples: pd.Series, *, folds: int = DEFAULT_FOLDS, seed: int = 0,
                   hyper: Mapping[str, Any] | None = None) -> CrossValidation:
    """k-fold cross-validation of transferring ``base`` to ``target`` with ``samples`` (arch -> ms).

    ``folds`` is lowered to what the samples allow (each training part keeps the
    method's minimum of samples); fewer than 4 samples give NaN.
    """
    n = len(samples)
    needed = int(getattr(type(base), "min_target_samples", 2))
    k = min(folds, n)
    while k >= 2 and n - math.ceil(n / k) < needed:
        k -= 1
    if n < 4 or k < 2:
        return CrossValidation(SpearmanEstimate(math.nan, math.nan, math.nan, n), [], 0)
    order = np.random.default_rng(seed).permutation(n)
    assignment = np.empty(n, dtype=int)
    assignment[order] = np.arange(n) % k
    predicted = np.full(n, np.nan)
    per_fold = []
    archs = list(samples.index)
    for fold in range(k):
        held = assignment == fold
        model = clone(base)
        model.hyper.update(dict(hyper or {}))
        model.transfer(target, samples[~held])
        fold_pred = np.asarray(model.predict([archs[i] for i in np.flatnonzero(held)], target), dtype="float64")
        predicted[held] = fold_pred
        measured = samples.to_numpy(dtype="float64")[held]
        per_fold.append(spearman_with_interval(fold_pred, measured, resamples=1).rho if held.sum() >= 3 else math.nan)
    pooled = spearman_with_interval(predicted, samples.to_numpy(dtype="float64"), seed=seed)
    return CrossValidation(pooled, per_fold, k)


__all__ = ["CrossValidation", "DEFAULT_FOLDS", "cross_validate"]
