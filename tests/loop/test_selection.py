"""loop.selection and loop.pool: sampler-chosen archs, never from the held-out slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import UserError
from loop.pool import DEFAULT_POOL_SIZE, candidate_pool
from loop.selection import choose_archs
from trainer import holdout
from trainer.models import get_method

SPACE = "nasbench201"


def test_nb201_pool_is_the_whole_space_and_samples_avoid_the_held_out_slice() -> None:
    pool = candidate_pool(SPACE)
    assert len(pool.archs) == 15625
    predictor = get_method("layerwise")(SPACE)
    chosen = choose_archs(predictor, pool.archs, 20, seed=0)
    assert len(set(chosen.samples)) == 20 and chosen.sampler == "cosine"
    assert not any(holdout.is_held_out(SPACE, a) for a in chosen.samples)
    assert chosen.held_out_excluded == sum(holdout.is_held_out(SPACE, a) for a in pool.archs) > 0
    assert choose_archs(predictor, list(reversed(pool.archs)), 20, seed=0).samples == chosen.samples


def test_reference_archs_are_measured_too() -> None:
    predictor = get_method("layerwise")(SPACE)
    pool = candidate_pool(SPACE).archs[:300]
    predictor.reference_archs = [pool[0]]  # a method that needs reference archs names them so
    chosen = choose_archs(predictor, pool, 5, seed=1)
    assert chosen.references == [pool[0]] and chosen.archs()[0] == pool[0]
    assert len(chosen.archs()) in (5, 6)


def test_too_many_samples_and_a_bad_pool_file_are_user_errors(tmp_path: Path) -> None:
    predictor = get_method("layerwise")(SPACE)
    with pytest.raises(UserError, match="--samples 50: only"):
        choose_archs(predictor, candidate_pool(SPACE).archs[:40], 50)
    bad = tmp_path / "pool.txt"
    bad.write_text("|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|\n")
    with pytest.raises(UserError, match="line 1"):
        candidate_pool(SPACE, bad)


def test_pool_of_a_large_space_is_a_seeded_sample_or_the_file(tmp_path: Path) -> None:
    pool = candidate_pool("fbnet", seed=4)
    assert len(pool.archs) == DEFAULT_POOL_SIZE and candidate_pool("fbnet", seed=4).archs == pool.archs
    listed = tmp_path / "pool.txt"
    listed.write_text("\n".join(pool.archs[:7]) + "\n")
    assert candidate_pool("fbnet", listed).archs == pool.archs[:7]
