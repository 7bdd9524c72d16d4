"""Search spaces: NAS-Bench-201, FBNet and OFA-MobileNetV3.

Example:
    >>> from farm import spaces
    >>> space = spaces.get("nasbench201")
    >>> space.name
    'nasbench201'
"""

from __future__ import annotations

from farm.spaces.base import ArchError, SearchSpace

NAMES = ("nasbench201", "fbnet", "ofa")

_cache: dict[str, SearchSpace] = {}


def get(name: str) -> SearchSpace:
    """The space object for ``name``; raises ``KeyError`` with the known names otherwise."""
    if name not in NAMES:
        raise KeyError(f"unknown search space {name!r}; known: {', '.join(NAMES)}")
    if name not in _cache:
        if name == "nasbench201":
            from farm.spaces.nasbench201 import NasBench201 as cls
        elif name == "fbnet":
            from farm.spaces.fbnet import FBNet as cls
        else:
            from farm.spaces.ofa import OFAMobileNetV3 as cls
        _cache[name] = cls()
    return _cache[name]


__all__ = ["ArchError", "NAMES", "SearchSpace", "get"]
