"""Typed errors of zero-cost proxies, and the finiteness check every proxy value passes.

A proxy that is not defined for an architecture (a constant Jacobian has no
correlation matrix, a singular activation kernel has no log-determinant, a
value that overflows float64) raises :class:`ProxyUndefined`. It is a property
of the arch and the input spec, so it is deterministic: ``farm encode`` records
it and does not retry it. Anything else that goes wrong while computing a proxy
(a model that fails to build, out of memory) is a :class:`ProxyFailed`, which a
re-run retries.

Example:
    >>> finite(2.5, "snip")
    2.5
    >>> try:
    ...     finite(float("nan"), "jacov", "the Jacobian is constant")
    ... except ProxyUndefined as error:
    ...     str(error)
    'jacov: not finite (nan): the Jacobian is constant'
"""

from __future__ import annotations

import math

__all__ = ["ProxyError", "ProxyFailed", "ProxyUndefined", "finite"]


class ProxyError(Exception):
    """Base class: a proxy value could not be computed. ``str(error)`` names the proxy and why."""


class ProxyUndefined(ProxyError):
    """The proxy has no finite value for this arch and input spec (deterministic; not retried)."""


class ProxyFailed(ProxyError):
    """Computing the proxy failed for a reason outside its definition (retried by a re-run)."""


def finite(value: float, proxy: str, why: str = "") -> float:
    """``value`` as a float when it is finite; :class:`ProxyUndefined` naming ``proxy`` (and ``why``) otherwise."""
    number = float(value)
    if not math.isfinite(number):
        raise ProxyUndefined(f"{proxy}: not finite ({number})" + (f": {why}" if why else ""))
    return number
