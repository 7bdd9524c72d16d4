"""Samplers choose from arch encodings only; they never see a latency."""

from __future__ import annotations

import numpy as np
import pytest

from farm import spaces
from farm.errors import UserError
from trainer import encodings, registry
from trainer.cli import main
from trainer.samplers import SAMPLERS, cosine_sampler, get_sampler, random_sampler

SPACE = "nasbench201"


@pytest.fixture(scope="module")
def candidates() -> list[str]:
    return spaces.get(SPACE).sample(2000, seed=7)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_is_deterministic_distinct_and_order_free(name, candidates):
    sampler = get_sampler(name)
    picked = sampler(SPACE, candidates, 20, seed=3)
    assert len(picked) == len(set(picked)) == 20 and set(picked) <= set(candidates)
    assert picked == sampler(SPACE, list(reversed(candidates)), 20, seed=3)
    assert picked != sampler(SPACE, candidates, 20, seed=4)


def _mean_pairwise_cosine(archs: list[str]) -> float:
    x = encodings.onehot(SPACE, archs).astype("float64")
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit @ unit.T
    return float(similarity[~np.eye(len(archs), dtype=bool)].mean())


def test_cosine_sampler_is_more_diverse_than_random(candidates):
    cosine = np.mean([_mean_pairwise_cosine(cosine_sampler(SPACE, candidates, 20, seed=s)) for s in range(3)])
    uniform = np.mean([_mean_pairwise_cosine(random_sampler(SPACE, candidates, 20, seed=s)) for s in range(3)])
    assert cosine < uniform - 0.02


def test_too_many_or_unknown_is_a_user_error(candidates):
    with pytest.raises(UserError, match="only 5 candidates"):
        cosine_sampler(SPACE, candidates[:5], 6)
    with pytest.raises(UserError, match="unknown sampler"):
        get_sampler("magic")


@pytest.mark.parametrize("sampler", ["cosine", "kmeans"])
def test_sample_verb_is_the_same_with_or_without_the_target_in_the_store(
    capsys, store_without_new_device, store_dir, tmp_path, sampler
):
    """The sampler gets a predictor pre-trained on a store without the target (A) and one whose store
    also holds the target's rows (B): it names the same archs, so target latencies play no part."""
    outputs = []
    for name, store in (("a", store_without_new_device), ("b", store_dir)):
        out = tmp_path / name
        assert main(["pretrain", "--store", str(store), "--space", SPACE, "--sources", "1080ti_1,pixel3",
                     "--method", "flops", "--out", str(out)]) == 0
        assert "pixel2" not in registry.read_manifest(out)["sources"]
        capsys.readouterr()
        candidates = tmp_path / "candidates.txt"
        candidates.write_text("\n".join(spaces.get(SPACE).sample(500, seed=2)))
        assert main(["sample", "--predictor", str(out), "--n", "12", "--sampler", sampler, "--seed", "5",
                     "--candidates", str(candidates)]) == 0
        outputs.append(capsys.readouterr().out.split())
    assert len(outputs[0]) == 12 and outputs[0] == outputs[1]


def test_sample_verb_reads_no_store_at_all(capsys, store_without_new_device, tmp_path, monkeypatch):
    out = tmp_path / "pred"
    assert main(["pretrain", "--store", str(store_without_new_device), "--space", SPACE, "--sources", "pixel3",
                 "--method", "flops", "--out", str(out)]) == 0
    capsys.readouterr()

    def no_reading(*args, **kwargs):
        raise AssertionError("the sampler read measurements")

    from farm.store import Store

    monkeypatch.setattr(Store, "read", no_reading)
    assert main(["sample", "--predictor", str(out), "--n", "4", "--sampler", "random"]) == 0
    assert len(capsys.readouterr().out.split()) == 4


def test_cosine_kmeans_takes_one_arch_per_cluster_and_is_more_diverse_than_kmeans(candidates):
    mixed = get_sampler("cosine-kmeans")
    picked = mixed(SPACE, candidates, 20, seed=0)
    assert len(set(picked)) == 20
    from trainer.samplers import _lloyd, _shuffled

    pool, shuffled_x, rng = _shuffled(SPACE, candidates, 20, 0, "onehot")
    assignment, _ = _lloyd(shuffled_x, 20, rng, 50)
    cluster_of = dict(zip(pool, assignment.tolist()))
    assert len({cluster_of[a] for a in picked}) == len(set(assignment.tolist())), "one pick per non-empty cluster"
    kmeans = get_sampler("kmeans")
    mixed_cos = np.mean([_mean_pairwise_cosine(mixed(SPACE, candidates, 20, seed=s)) for s in range(3)])
    kmeans_cos = np.mean([_mean_pairwise_cosine(kmeans(SPACE, candidates, 20, seed=s)) for s in range(3)])
    assert mixed_cos <= kmeans_cos
