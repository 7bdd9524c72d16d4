"""Architecture encodings for predictors and samplers, computed from ``farm.spaces``.

Every function takes a space name and a sequence of canonical arch strings and
returns a NumPy array with one row (or one graph) per arch:

- :func:`onehot` - the space's flat one-hot vector (``[n, d]`` float32);
- :func:`graphs` - (adjacency ``[n, N, N]``, op indices ``[n, N]``) with the
  global node;
- :func:`flops` / :func:`params` - multiply-accumulates and parameter counts
  (``[n]`` float64), the inputs of the FLOPs proxy.

Values are memoised per (space, arch) in the process, because predictors and
samplers ask for the same archs again and again (every seed, every target).

Example:
    >>> x = onehot("nasbench201", ["|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"])
    >>> x.shape[0], x.dtype.name
    (1, 'float32')
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from farm import spaces

_cache: dict[tuple[str, str, str], object] = {}


def _memoised(kind: str, space: str, archs: Sequence[str], compute: Callable[[str], object]) -> list[object]:
    out = []
    for arch in archs:
        key = (kind, space, arch)
        value = _cache.get(key)
        if value is None:
            value = compute(arch)
            _cache[key] = value
        out.append(value)
    return out


def onehot(space: str, archs: Sequence[str]) -> np.ndarray:
    """``[n, d]`` float32 one-hot encodings (``SearchSpace.onehot``)."""
    space_obj = spaces.get(space)
    rows = _memoised("onehot", space, archs, space_obj.onehot)
    if not rows:
        return np.zeros((0, 0), dtype="float32")
    return np.stack([np.asarray(r, dtype="float32") for r in rows])


def graphs(space: str, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(adjacency ``[n, N, N]`` float32, op indices ``[n, N]`` int64) from ``SearchSpace.graph``.

    Every space here has one graph size (NB201 9, FBNet 25, OFA 23 nodes), so graphs stack.
    """
    space_obj = spaces.get(space)
    pairs = _memoised("graph", space, archs, space_obj.graph)
    adjacency = np.stack([np.asarray(a, dtype="float32") for a, _ in pairs])  # type: ignore[misc]
    ops = np.stack([np.asarray(o, dtype="int64") for _, o in pairs])  # type: ignore[misc]
    return adjacency, ops


def flops(space: str, archs: Sequence[str], input_size: int | None = None) -> np.ndarray:
    """``[n]`` multiply-accumulates per input (``SearchSpace.flops``) at ``input_size`` (space default)."""
    space_obj = spaces.get(space)
    values = _memoised(f"flops@{input_size}", space, archs, lambda a: space_obj.flops(a, input_size))
    return np.asarray(values, dtype="float64")


def params(space: str, archs: Sequence[str]) -> np.ndarray:
    """``[n]`` parameter counts (``SearchSpace.params``)."""
    space_obj = spaces.get(space)
    return np.asarray(_memoised("params", space, archs, space_obj.params), dtype="float64")


#: Encodings a sampler can use, by name.
VECTOR_ENCODINGS: dict[str, Callable[[str, Sequence[str]], np.ndarray]] = {"onehot": onehot}


def clear_cache() -> None:
    """Forget memoised encodings (tests; long-lived processes switching spaces)."""
    _cache.clear()


__all__ = ["VECTOR_ENCODINGS", "clear_cache", "flops", "graphs", "onehot", "params"]
