"""Which archs ``add-device`` measures: the base predictor's sampler over the candidates, held-out excluded.

The sampler is the method's own (a predictor class may name one in a
``default_sampler`` attribute; otherwise :data:`trainer.samplers.DEFAULT_SAMPLER`,
``cosine`` as in NASFLAT). It sees arch strings only. Archs of the fixed
held-out slice (:mod:`trainer.holdout`) are never offered, so a new device's
samples never include the rows its predictors are later compared on. A
method that needs reference archs measured on every device lists them in an
optional ``reference_archs`` attribute; they are measured too (none of
today's methods has any).

Example:
    >>> from trainer.models import get_method
    >>> pool = [a for a in __import__("farm").spaces.get("nasbench201").sample(200, seed=1)]
    >>> chosen = choose_archs(get_method("layerwise")("nasbench201"), pool, 5, seed=0)
    >>> len(chosen.samples), chosen.sampler, chosen.references
    (5, 'cosine', [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from farm.errors import UserError
from trainer.holdout import is_held_out
from trainer.models.base import Predictor
from trainer.samplers import DEFAULT_SAMPLER, get_sampler


@dataclass(frozen=True)
class ArchSelection:
    """The sampler's archs, the method's reference archs, and what was left out."""

    samples: list[str]
    sampler: str
    references: list[str] = field(default_factory=list)
    held_out_excluded: int = 0
    candidates: int = 0

    def archs(self) -> list[str]:
        """Every arch to measure: references first, then the samples (no duplicates)."""
        return list(dict.fromkeys([*self.references, *self.samples]))

    def to_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler, "samples": self.samples, "references": self.references,
                "held_out_excluded": self.held_out_excluded, "candidates": self.candidates}


def sampler_name(predictor: Predictor) -> str:
    """The predictor's own sampler where its class names one, else the trainer's default."""
    return str(getattr(predictor, "default_sampler", None) or DEFAULT_SAMPLER)


def choose_archs(predictor: Predictor, candidates: Sequence[str], n: int, *, seed: int = 0) -> ArchSelection:
    """``n`` archs the predictor's sampler picks among the non-held-out ``candidates``, plus its references."""
    space = predictor.space
    eligible = [arch for arch in dict.fromkeys(candidates) if not is_held_out(space, arch)]
    excluded = len(set(candidates)) - len(eligible)
    if n > len(eligible):
        raise UserError(
            f"--samples {n}: only {len(eligible)} candidate archs outside the held-out slice; ask for fewer or pass a larger --pool"
        )
    name = sampler_name(predictor)
    samples = get_sampler(name)(space, eligible, n, seed)
    references = [str(a) for a in (getattr(predictor, "reference_archs", None) or [])]
    return ArchSelection(samples, name, references, excluded, len(eligible))


__all__ = ["ArchSelection", "choose_archs", "sampler_name"]
