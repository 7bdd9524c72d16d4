"""The held-out slice: a fixed ~10% of every search space's archs that no registered predictor trains on.

An arch is held out when the SHA-256 of ``"<space>\\0<arch>"`` (canonical arch
string), read as a big-endian integer modulo 10,000, is below 1,000. The test
depends on the arch only, never on the device, so the same archs are held out
on every device: any two predictors of a target, trained at different times on
different amounts of data, are compared on the same rows, and a source's
held-out archs are never seen in pre-training either.

Registered predictors record that they excluded the slice: every ``pretrain``
and ``transfer`` event in their manifest's ``history`` carries
``{"holdout": {"scheme": SCHEME, "version": VERSION}}`` (:data:`MARKER`), and
:class:`trainer.versions.PredictorRegistry` refuses a predictor whose history
lacks it (:func:`unmarked_reason`).

Scores (:func:`score`) are Spearman rho with a 95% interval (Fisher z with the
Bonett-Wright standard error), Kendall tau, and the share of held-out archs
predicted within +-5% / +-10%; with fewer than :data:`MIN_SCORED` held-out rows
the metrics are ``None`` and ``reason`` says why.

Example:
    >>> import pandas as pd
    >>> from farm import spaces
    >>> archs = spaces.get("nasbench201").sample(2000, seed=0)
    >>> share = sum(is_held_out("nasbench201", a) for a in archs) / len(archs)
    >>> 0.08 < share < 0.12
    True
    >>> trainable, held_out = split(pd.Series(1.0, index=archs), "nasbench201")
    >>> len(trainable) + len(held_out) == 2000 and not set(trainable.index) & set(held_out.index)
    True
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from trainer.evaluate import Metrics
from trainer.models.base import Predictor

SCHEME = "sha256(space\\0arch) mod 10000 < 1000"
VERSION = 1
#: Parts per 10,000 held out.
_HELD_PER_10K = 1000
#: What a training step of a registered predictor records in its history event.
MARKER: dict[str, Any] = {"holdout": {"scheme": SCHEME, "version": VERSION}}
#: Fewer held-out rows than this give no score (Spearman on 3 rows says nothing).
MIN_SCORED = 5
#: Manifest history actions that learn from latencies.
TRAINING_ACTIONS = ("pretrain", "transfer")


def is_held_out(space: str, arch: str) -> bool:
    """Whether ``arch`` (canonical string) of ``space`` belongs to the held-out slice, on every device.

    Example:
        >>> is_held_out("nasbench201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") in (True, False)
        True
    """
    digest = hashlib.sha256(f"{space}\0{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < _HELD_PER_10K


def held_out_mask(space: str, archs: Iterable[str]) -> np.ndarray:
    """Boolean array: :func:`is_held_out` of each arch."""
    return np.fromiter((is_held_out(space, a) for a in archs), dtype=bool)


def split(series: pd.Series, space: str) -> tuple[pd.Series, pd.Series]:
    """(trainable, held-out) rows of a latency series indexed by arch.

    Example:
        >>> trainable, held = split(pd.Series(dtype="float64"), "fbnet")
        >>> len(trainable), len(held)
        (0, 0)
    """
    mask = held_out_mask(space, series.index)
    return series[~mask], series[mask]


def score(predictor: Predictor, target: str, held_out: pd.Series) -> dict[str, Any]:
    """Metrics of ``predictor`` on ``target``'s held-out rows (arch -> measured ms).

    Returns ``n`` always; ``spearman``, ``spearman_ci95``, ``kendall``, ``within_5``
    and ``within_10`` (``None`` with a ``reason`` when fewer than :data:`MIN_SCORED`).

    Example:
        >>> from trainer.models import get_method
        >>> score(get_method("flops")("nasbench201"), "t", pd.Series(dtype="float64"))["reason"]
        'no held-out rows of t'
    """
    n = len(held_out)
    if n < MIN_SCORED:
        what = "no held-out rows" if n == 0 else f"only {n} held-out row(s) (need {MIN_SCORED})"
        return {"n": n, "spearman": None, "spearman_ci95": None, "kendall": None, "within_5": None,
                "within_10": None, "reason": f"{what} of {target}"}
    predicted = np.asarray(predictor.predict(list(held_out.index), target), dtype="float64")
    metrics = Metrics.compute(predicted, held_out.to_numpy(dtype="float64"))
    return {"n": n, "spearman": metrics.spearman, "spearman_ci95": list(spearman_interval(metrics.spearman, n)),
            "kendall": metrics.kendall, "within_5": metrics.within_5, "within_10": metrics.within_10}


def spearman_interval(rho: float, n: int) -> tuple[float, float]:
    """95% interval of a Spearman rho on ``n`` rows: Fisher z, Bonett-Wright standard error.

    Example:
        >>> low, high = spearman_interval(0.9, 100)
        >>> round(low, 3) < 0.9 < round(high, 3)
        True
    """
    clipped = min(max(rho, -0.999999), 0.999999)
    half = 1.959964 * math.sqrt((1 + clipped**2 / 2) / max(n - 3, 1))
    z = math.atanh(clipped)
    return math.tanh(z - half), math.tanh(z + half)


def unmarked_reason(manifest: Mapping[str, Any]) -> str | None:
    """Why a predictor's manifest does not prove it excluded the held-out slice (``None`` when it does).

    Example:
        >>> unmarked_reason({"history": [{"action": "pretrain", **MARKER}]}) is None
        True
        >>> unmarked_reason({"history": [{"action": "transfer", "target": "pixel2"}]})
        "its 'transfer' step (target pixel2) does not record excluding the held-out slice"
    """
    history = manifest.get("history") or []
    steps = [event for event in history if isinstance(event, Mapping) and event.get("action") in TRAINING_ACTIONS]
    if not steps:
        return "its manifest records no pretrain/transfer step"
    for event in steps:
        if event.get("holdout") != MARKER["holdout"]:
            where = f" (target {event['target']})" if event.get("target") else ""
            return f"its {event.get('action')!r} step{where} does not record excluding the held-out slice"
    return None


__all__ = ["MARKER", "MIN_SCORED", "SCHEME", "VERSION", "held_out_mask", "is_held_out", "score", "spearman_interval",
           "split", "unmarked_reason"]
