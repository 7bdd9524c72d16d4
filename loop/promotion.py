"""Register a transferred predictor as a new version and decide whether it becomes ``current``.

The rule (the same comparison ``trainer nightly`` makes, on the fixed held-out slice):

1. no ``current`` version yet: promote;
2. both candidate and ``current`` are scored on the target's held-out rows
   (at least :data:`trainer.holdout.MIN_SCORED` of them): promote only if the
   candidate's Spearman is higher (a tie keeps ``current``);
3. too few held-out rows to judge (``add-device`` never measures held-out
   archs, so a new device usually has none): promote when the candidate
   learned from more of the target's rows than ``current`` did (it saw
   everything ``current`` saw and more), otherwise keep ``current``.

Every decision, either way, is logged to the target's ``history.jsonl``.

Example:
    >>> decide({"spearman": 0.91, "n": 40}, {"spearman": 0.93, "n": 40}, candidate_samples=20, current_samples=20).promote
    False
    >>> decide({"spearman": None, "n": 0}, {"spearman": None, "n": 0}, candidate_samples=25, current_samples=20).reason
    'no held-out row(s) to compare on; the candidate learned from 25 rows of the target, current from 20'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from trainer.versions import PredictorRegistry, Version


@dataclass(frozen=True)
class Decision:
    """Whether the candidate becomes current, and why (one line)."""

    promote: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason}


def decide(candidate: Mapping[str, Any], current: Mapping[str, Any] | None, *, candidate_samples: int,
           current_samples: int | None) -> Decision:
    """Apply the module's rule to two held-out scores (``current`` None: there is no current version)."""
    if current is None:
        return Decision(True, "no current version")
    ours, theirs = candidate.get("spearman"), current.get("spearman")
    if ours is not None and theirs is not None:
        verdict = ours > theirs
        return Decision(verdict, f"held-out Spearman {ours:.4f} vs current {theirs:.4f} on {candidate.get('n')} rows: "
                                 + ("better" if verdict else "not better, current kept"))
    more = current_samples is None or candidate_samples > current_samples
    rows = int(candidate.get("n") or 0)
    return Decision(more, f"{'no' if not rows else f'only {rows}'} held-out row(s) to compare on; the candidate learned from "
                          f"{candidate_samples} rows of the target, current from {current_samples if current_samples is not None else 'unknown'}"
                          + ("" if more else ": current kept"))


def target_samples(version: Version, target: str) -> int | None:
    """How many rows of ``target`` a registered version learned from (its manifest), if it says."""
    samples = version.summary.get("samples", {}).get("targets", {})
    value = samples.get(target)
    return int(value) if value is not None else None


def register(
    registry: PredictorRegistry,
    space: str,
    target: str,
    folder: Path,
    *,
    score: Mapping[str, Any],
    current_score: Mapping[str, Any] | None,
    samples: int,
    note: str,
) -> tuple[Version, Decision]:
    """Add ``folder`` as the next version of (space, target), promote it if :func:`decide` says so."""
    current = registry.current(space, target)
    decision = decide(score, current_score if current is not None else None, candidate_samples=samples,
                      current_samples=target_samples(current, target) if current is not None else None)
    version = registry.add(space, target, folder, metrics={"held_out": dict(score)}, note=note)
    if decision.promote:
        registry.promote(space, target, version.number, reason=decision.reason)
    else:
        registry.record(space, target, {"action": "refuse", "version": version.number, "reason": decision.reason})
    return version, decision


__all__ = ["Decision", "decide", "register", "target_samples"]
