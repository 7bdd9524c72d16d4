"""The candidate archs of a search space: what ``add-device`` samples from and predicts for.

NAS-Bench-201 is enumerated (15,625 archs). FBNet (9^22) and OFA are too large:
their pool is ``--pool FILE`` (one arch string a line, or Parquet with an
``arch`` column), else :data:`DEFAULT_POOL_SIZE` archs drawn with
``SearchSpace.sample`` and the seed, the same pool ``trainer sample`` uses.

Example:
    >>> pool = candidate_pool("nasbench201")
    >>> len(pool.archs), pool.origin
    (15625, 'every arch of nasbench201')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farm import spaces
from trainer.cli import read_arch_file
from trainer.workflow import SAMPLE_POOL

#: Archs sampled (with ``--seed``) as the pool of a space too large to enumerate.
DEFAULT_POOL_SIZE = SAMPLE_POOL


@dataclass(frozen=True)
class CandidatePool:
    """Canonical arch strings (unique, in a fixed order) and one line saying where they came from."""

    space: str
    archs: list[str]
    origin: str


def candidate_pool(space_name: str, pool_file: Path | None = None, seed: int = 0) -> CandidatePool:
    """The archs of ``pool_file``, else every arch of the space, else a seeded sample of it."""
    if pool_file is not None:
        archs = list(dict.fromkeys(read_arch_file(pool_file, space_name)))
        return CandidatePool(space_name, archs, f"{len(archs)} archs of {pool_file}")
    space = spaces.get(space_name)
    try:
        return CandidatePool(space_name, list(space.enumerate()), f"every arch of {space_name}")
    except NotImplementedError:
        archs = list(dict.fromkeys(space.sample(DEFAULT_POOL_SIZE, seed)))
        return CandidatePool(space_name, archs, f"{len(archs)} archs of {space_name} sampled with seed {seed} (--pool FILE to choose)")


__all__ = ["CandidatePool", "DEFAULT_POOL_SIZE", "candidate_pool"]
