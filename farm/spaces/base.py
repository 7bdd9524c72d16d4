"""The search-space contract shared by every space in ``farm.spaces``.

A space maps canonical arch strings to buildable PyTorch models and to the
encodings predictors read. This module imports torch and numpy only.
"""

from __future__ import annotations

import abc
from typing import Any, Iterator, Sequence

import numpy as np
import torch


class ArchError(ValueError):
    """A malformed arch string. The message names the position and the allowed values."""


class SearchSpace(abc.ABC):
    """One NAS search space.

    Methods take canonical arch strings; ``parse``/``format`` convert to and
    from the space's parsed form.
    """

    name: str
    default_input_size: int

    @abc.abstractmethod
    def parse(self, arch: str) -> Any:
        """Parse a canonical arch string; raise :class:`ArchError` naming the bad position."""

    @abc.abstractmethod
    def format(self, parsed: Any) -> str:
        """The canonical string of a parsed arch."""

    def canonical(self, arch: str) -> str:
        """Normalise an arch string (parse then format)."""
        return self.format(self.parse(arch))

    @abc.abstractmethod
    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct archs drawn uniformly, deterministic in ``seed``."""

    def enumerate(self) -> Iterator[str]:
        """Every arch, in the space's official order. Only finite, small spaces implement it."""
        raise NotImplementedError(f"{self.name} is too large to enumerate; use sample(n, seed)")

    @abc.abstractmethod
    def build(self, arch: str, input_size: int | None = None, **kwargs: Any) -> torch.nn.Module:
        """The model for ``arch``, in eval mode, on CPU."""

    def input_shape(self, arch: str, batch_size: int = 1, input_size: int | None = None) -> tuple[int, int, int, int]:
        """NCHW shape of the input ``build(arch)`` expects."""
        size = input_size or self.default_input_size
        return (batch_size, 3, size, size)

    @abc.abstractmethod
    def graph(self, arch: str) -> tuple[np.ndarray, np.ndarray]:
        """(adjacency [N, N] directed, op indices [N]) with a global node connected to all nodes."""

    def graphs(self, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`graph` of many archs stacked for batching: (adjacency [B, N, N], op indices [B, N])."""
        pairs = [self.graph(arch) for arch in archs]
        return np.stack([a for a, _ in pairs]), np.stack([o for _, o in pairs])

    @abc.abstractmethod
    def onehot(self, arch: str) -> np.ndarray:
        """Flat one-hot vector encoding (float32)."""

    @abc.abstractmethod
    def flops(self, arch: str, input_size: int | None = None) -> int:
        """Multiply-accumulates the built module executes for one input."""

    @abc.abstractmethod
    def params(self, arch: str) -> int:
        """Parameters of the built module."""
