"""Zero-cost proxies: 13 scores of an untrained network on one fixed mini-batch (NAS-Bench-Suite-Zero's set).

One module per proxy, each with its paper and definition: :mod:`~farm.proxies.epe_nas`,
:mod:`~farm.proxies.fisher`, :mod:`~farm.proxies.flops`, :mod:`~farm.proxies.grad_norm`,
:mod:`~farm.proxies.grasp`, :mod:`~farm.proxies.jacov`, :mod:`~farm.proxies.l2_norm`,
:mod:`~farm.proxies.nwot`, :mod:`~farm.proxies.params`, :mod:`~farm.proxies.plain`,
:mod:`~farm.proxies.snip`, :mod:`~farm.proxies.synflow`, :mod:`~farm.proxies.zen`. Each has
``NAME``, ``VERSION`` (bumped whenever its definition or computation changes, so stored values
of an older version are recomputed, never mixed) and ``score(context) -> float``.

:mod:`farm.proxies.compute` scores an arch of a search space deterministically;
:mod:`farm.proxies.table` is the ``encodings`` Parquet table; ``farm encode``
(:mod:`farm.encode`) fills it with Ray tasks.

Example:
    >>> len(NAMES), NAMES[:3]
    (13, ('epe_nas', 'fisher', 'flops'))
    >>> parse_names("snip, nwot")
    ('nwot', 'snip')
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from farm.proxies import (
    epe_nas,
    fisher,
    flops,
    grad_norm,
    grasp,
    jacov,
    l2_norm,
    nwot,
    params,
    plain,
    snip,
    synflow,
    zen,
)
from farm.proxies.context import ProxyContext

__all__ = ["NAMES", "PROXIES", "ProxyContext", "parse_names", "score_fn", "version"]

#: Proxy modules by name.
PROXIES: dict[str, ModuleType] = {
    module.NAME: module
    for module in (epe_nas, fisher, flops, grad_norm, grasp, jacov, l2_norm, nwot, params, plain, snip, synflow, zen)
}
#: The 13 proxy names, sorted (the column order of encodings arrays).
NAMES: tuple[str, ...] = tuple(sorted(PROXIES))


def score_fn(name: str) -> Callable[[ProxyContext], float]:
    """The ``score`` function of proxy ``name``; ``KeyError`` naming the known proxies otherwise."""
    if name not in PROXIES:
        raise KeyError(f"unknown proxy {name!r}; known: {', '.join(NAMES)}")
    return PROXIES[name].score  # type: ignore[no-any-return]


def version(name: str) -> int:
    """The definition version of proxy ``name``."""
    if name not in PROXIES:
        raise KeyError(f"unknown proxy {name!r}; known: {', '.join(NAMES)}")
    return int(PROXIES[name].VERSION)


def parse_names(text: str | None) -> tuple[str, ...]:
    """Proxy names from a comma-separated list (``None`` or empty: all), sorted and unique.

    Raises ``ValueError`` naming the first unknown name and the known ones.
    """
    if text is None or not text.strip():
        return NAMES
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(PROXIES))
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}; known: {', '.join(NAMES)}")
    return tuple(sorted(names))
