"""When ``trainer nightly`` promotes a candidate: the policy, in one function.

A candidate and the current predictor are scored on the same held-out rows
(:mod:`trainer.holdout`), measured now, so the comparison is fair even when
the held-out slice has grown since the current one was registered.

1. No current version (or one that no longer loads): promote.
2. Both have a held-out Spearman: promote only if the candidate's is higher
   by more than :data:`TIE_MARGIN` (0.001). A tie keeps the current
   predictor: no churn without evidence.
3. Too few held-out rows to score (fewer than :data:`trainer.holdout.MIN_SCORED`,
   e.g. a device whose only rows are the ~20 archs a sampler chose, which
   never include held-out ones): there is no evidence either way, so the
   candidate is promoted only if it learned from more rows than the current
   one (new measurements, nothing against them); the reason says it was
   promoted unverified. Measuring a few held-out archs on the device makes
   later comparisons real.

The base predictor's score is the mean held-out Spearman over the sources it
predicts, with ``n`` the held-out rows summed (:func:`combined`).

Example:
    >>> decide({"spearman": 0.91, "n": 30}, {"spearman": 0.90, "n": 30}, 200, 20).promote
    True
    >>> decide({"spearman": 0.9005, "n": 30}, {"spearman": 0.90, "n": 30}, 200, 20).reason
    'not better on the held-out slice: Spearman 0.9005 vs current 0.9000 (n=30; a tie within 0.001 keeps current)'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trainer.versions import PredictorRegistry, Version

TIE_MARGIN = 0.001


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and the one-line reason logged either way."""

    promote: bool
    reason: str


def decide(candidate: Mapping[str, Any], current: Mapping[str, Any] | None, candidate_rows: int,
           current_rows: int | None) -> Decision:
    """The promotion policy of the module docstring; ``current`` None means there is no current version."""
    if current is None:
        return Decision(True, "first version (nothing current)")
    new, old = candidate.get("spearman"), current.get("spearman")
    if new is not None and old is not None:
        n = candidate.get("n")
        if new > old + TIE_MARGIN:
            return Decision(True, f"better on the held-out slice: Spearman {new:.4f} vs current {old:.4f} (n={n})")
        return Decision(False, f"not better on the held-out slice: Spearman {new:.4f} vs current {old:.4f} "
                               f"(n={n}; a tie within {TIE_MARGIN} keeps current)")
    why = candidate.get("reason") or current.get("reason") or "no held-out score"
    if current_rows is None or candidate_rows > current_rows:
        return Decision(True, f"promoted unverified: {why}; it learned from more rows ({candidate_rows} vs "
                              f"{current_rows if current_rows is not None else 'unknown'})")
    return Decision(False, f"kept current: {why}, and the candidate learned from no more rows "
                           f"({candidate_rows} vs {current_rows})")


def register(registry: PredictorRegistry, space: str, target: str, folder: Path, *, score: Mapping[str, Any],
             current_score: Mapping[str, Any] | None, rows: int, base_version: int | None,
             note: str) -> tuple[Version, Decision]:
    """Add ``folder`` as the next version of (space, target), then promote it by :func:`decide` or log why not.

    The version's metrics keep what the next comparison needs: ``held_out`` (its score), ``rows``
    (trainable rows it learned from) and ``base_version`` (the base it was transferred from).
    """
    current = registry.current(space, target)
    decision = decide(score, current_score if current is not None else None, rows,
                      current.metrics.get("rows") if current is not None else None)
    metrics = {"held_out": dict(score), "rows": rows, "base_version": base_version}
    version = registry.add(space, target, folder, metrics=metrics, note=note)
    if decision.promote:
        registry.promote(space, target, version.number, reason=decision.reason)
    else:
        registry.record(space, target, {"action": "refuse", "version": version.number,
                                        "current": current.number if current else None, "reason": decision.reason})
    return version, decision


def combined(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One score over several targets: mean Spearman of those scored, ``n`` summed, per-target detail kept.

    Example:
        >>> combined({"a": {"spearman": 0.8, "n": 10}, "b": {"spearman": None, "n": 0, "reason": "no rows"}})["spearman"]
        0.8
    """
    scored = [s for s in scores.values() if s.get("spearman") is not None]
    result: dict[str, Any] = {"n": int(sum(int(s.get("n", 0)) for s in scored)), "per_target": dict(scores)}
    if not scored:
        result.update(spearman=None, reason="no held-out rows of any source")
    else:
        result["spearman"] = float(np.mean([s["spearman"] for s in scored]))
    return result


__all__ = ["Decision", "TIE_MARGIN", "combined", "decide", "register"]
