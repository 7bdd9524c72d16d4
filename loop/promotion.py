"""Register a transferred predictor as the next version of its target; promote it by ``trainer nightly``'s policy.

The policy itself is :func:`trainer.promotion.decide` (held-out Spearman,
a tie keeps ``current``; with too few held-out rows, promote unverified only
when the candidate learned from more rows). The version's metrics use the
same keys as ``trainer nightly`` (``held_out``, ``rows``, ``base_version``),
so a later nightly run sees which base a version came from and how many rows
it learned from. Every decision, either way, is logged to the target's
``history.jsonl``.

Example:
    >>> import tempfile
    >>> from trainer import holdout, registry
    >>> from trainer.models import get_method
    >>> work = Path(tempfile.mkdtemp())
    >>> folder = registry.save(get_method("flops")("nasbench201"), work / "p",
    ...                        registry.ManifestUpdate("transfer", target="t", event=holdout.MARKER))
    >>> reg = PredictorRegistry(work / "registry")
    >>> version, decision = register(reg, "nasbench201", "t", folder, score={"n": 0, "spearman": None},
    ...                              current_score=None, rows=20, base_version=1, note="example")
    >>> version.number, decision.promote, decision.reason
    (1, True, 'first version (nothing current)')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from trainer.promotion import Decision, decide
from trainer.versions import PredictorRegistry, Version


def register(
    registry: PredictorRegistry,
    space: str,
    target: str,
    folder: Path,
    *,
    score: Mapping[str, Any],
    current_score: Mapping[str, Any] | None,
    rows: int,
    base_version: int,
    note: str,
) -> tuple[Version, Decision]:
    """Add ``folder`` as the next version of (space, target); promote it, or log why not."""
    current = registry.current(space, target)
    current_rows = current.metrics.get("rows") if current is not None else None
    decision = decide(score, current_score if current is not None else None, rows, current_rows)
    metrics = {"held_out": dict(score), "rows": rows, "base_version": base_version}
    version = registry.add(space, target, folder, metrics=metrics, note=note)
    if decision.promote:
        registry.promote(space, target, version.number, reason=decision.reason)
    else:
        registry.record(space, target, {"action": "refuse", "version": version.number,
                                        "current": current.number if current else None, "reason": decision.reason})
    return version, decision


__all__ = ["register"]
