"""Which archs to measure on a new device: chosen from arch encodings only.

A sampler is a function ``(space, candidates, n, seed) -> list[str]`` that
picks ``n`` of the candidate arch strings. Its signature is the guarantee the
issue asks for: it is given arch strings and nothing else, so it cannot look
at any latency of the target device (or of any device).

- ``random``: uniform without replacement (:func:`trainer.data.choose`).
- ``cosine``: greedy diversity (NASFLAT, Akhauri & Abdelfattah 2024): start
  from a random arch, then repeatedly add the candidate whose mean cosine
  similarity to the archs chosen so far is lowest.
- ``kmeans``: k-means (k = n, k-means++ initialisation, Lloyd iterations) over
  the encodings, then the candidate nearest to each centroid.
- ``cosine-kmeans``: NASFLAT's mix of the two: k-means (k = n) splits the
  candidates into n clusters, then one arch is taken from each cluster in turn,
  the member whose mean cosine similarity to the archs chosen so far is lowest.
  Every region of the space gets one sample (k-means), and each is the most
  unlike the others (cosine). NASFLAT's public code has no such combined
  sampler, so this is our reading of "a mix of the two".

Encodings are :func:`trainer.encodings.onehot` by default. Ties are broken
by a seeded shuffle of the candidates, so every sampler is deterministic in
``seed`` and independent of the order in which candidates are given.

Example:
    >>> archs = ["|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ...     "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ...     "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"]
    >>> len(get_sampler("cosine")("nasbench201", archs, 2, seed=0))
    2
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from farm.errors import UserError
from trainer import encodings
from trainer.data import choose


class Sampler(Protocol):
    def __call__(self, space: str, candidates: Sequence[str], n: int, seed: int = 0) -> list[str]: ...


def _check(candidates: Sequence[str], n: int) -> list[str]:
    pool = sorted(set(candidates))
    if n < 1:
        raise UserError(f"--n: must be at least 1, got {n}")
    if n > len(pool):
        raise UserError(f"--n: asked for {n} archs but only {len(pool)} candidates exist; ask for fewer")
    return pool


def _shuffled(space: str, candidates: Sequence[str], n: int, seed: int, encoding: str) -> tuple[list[str], np.ndarray, np.random.Generator]:
    pool = _check(candidates, n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    pool = [pool[i] for i in order]
    return pool, encodings.VECTOR_ENCODINGS[encoding](space, pool).astype("float64"), rng


def random_sampler(space: str, candidates: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` candidates uniformly at random (sorted)."""
    return choose(_check(candidates, n), n, seed)


def cosine_sampler(space: str, candidates: Sequence[str], n: int, seed: int = 0, encoding: str = "onehot") -> list[str]:
    """Greedy minimum mean cosine similarity to the archs already chosen (in the order chosen)."""
    pool, x, _ = _shuffled(space, candidates, n, seed, encoding)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    chosen = [0]  # the first of the seeded shuffle: a random start
    similarity_sum = unit @ unit[0]
    taken = np.zeros(len(pool), dtype=bool)
    taken[0] = True
    while len(chosen) < n:
        score = np.where(taken, np.inf, similarity_sum)
        pick = int(np.argmin(score))  # first minimum = seeded tie-break
        chosen.append(pick)
        taken[pick] = True
        similarity_sum += unit @ unit[pick]
    return [pool[i] for i in chosen]


def kmeans_sampler(
    space: str, candidates: Sequence[str], n: int, seed: int = 0, encoding: str = "onehot", iterations: int = 50
) -> list[str]:
    """The candidate nearest to each of ``n`` k-means centroids (k-means++ start, Lloyd updates)."""
    pool, x, rng = _shuffled(space, candidates, n, seed, encoding)
    _, centroids = _lloyd(x, n, rng, iterations)
    chosen: list[int] = []
    taken = np.zeros(len(pool), dtype=bool)
    for k in range(n):
        distance = ((x - centroids[k]) ** 2).sum(axis=1)
        distance[taken] = np.inf
        pick = int(np.argmin(distance))
        chosen.append(pick)
        taken[pick] = True
    return [pool[i] for i in chosen]


def cosine_kmeans_sampler(
    space: str, candidates: Sequence[str], n: int, seed: int = 0, encoding: str = "onehot", iterations: int = 50
) -> list[str]:
    """One arch per k-means cluster (k = n), each the least cosine-similar to those already chosen.

    The first pick is the member nearest to the first centroid; clusters are then visited
    in the order of their centroids' k-means++ draw.
    """
    pool, x, rng = _shuffled(space, candidates, n, seed, encoding)
    assignment, centroids = _lloyd(x, n, rng, iterations)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    similarity_sum = np.zeros(len(pool))
    taken = np.zeros(len(pool), dtype=bool)
    chosen: list[int] = []
    for k in range(n):
        members = (assignment == k) & ~taken
        if not members.any():  # an empty cluster: any free candidate
            members = ~taken
        if chosen:
            score = np.where(members, similarity_sum, np.inf)
        else:
            score = np.where(members, ((x - centroids[k]) ** 2).sum(axis=1), np.inf)
        pick = int(np.argmin(score))
        chosen.append(pick)
        taken[pick] = True
        similarity_sum += unit @ unit[pick]
    return [pool[i] for i in chosen]


def _lloyd(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """(assignment, centroids) of k-means from a k-means++ start."""
    centroids = _kmeans_plus_plus(x, k, rng)
    for _ in range(iterations):
        assignment = _nearest(x, centroids)
        updated = centroids.copy()
        for c in range(k):
            members = x[assignment == c]
            if len(members):
                updated[c] = members.mean(axis=0)
        if np.allclose(updated, centroids):
            break
        centroids = updated
    return _nearest(x, centroids), centroids


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    distance = (x**2).sum(1)[:, None] - 2 * x @ centroids.T + (centroids**2).sum(1)[None, :]
    return np.argmin(distance, axis=1)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centroids = [x[0]]  # x is already in seeded random order
    closest = ((x - x[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = closest.sum()
        index = int(rng.choice(len(x), p=closest / total)) if total > 0 else int(rng.integers(len(x)))
        centroids.append(x[index])
        closest = np.minimum(closest, ((x - x[index]) ** 2).sum(axis=1))
    return np.stack(centroids)


SAMPLERS: dict[str, Callable[..., list[str]]] = {
    "random": random_sampler,
    "cosine": cosine_sampler,
    "kmeans": kmeans_sampler,
    "cosine-kmeans": cosine_kmeans_sampler,
}
DEFAULT_SAMPLER = "cosine"


def get_sampler(name: str) -> Callable[..., list[str]]:
    """The sampler called ``name``; a ``UserError`` lists the known ones otherwise."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise UserError(f"--sampler: unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None


__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "Sampler", "cosine_kmeans_sampler", "cosine_sampler", "get_sampler", "kmeans_sampler", "random_sampler"]
