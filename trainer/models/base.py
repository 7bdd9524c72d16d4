"""The predictor contract every method in ``trainer.models`` implements.

A predictor maps (arch, target) to a latency in milliseconds. Methods that
learn from several devices are pre-trained on *source* targets, then
transferred to a new target with a few of its measurements; single-device
methods simply ignore ``pretrain`` and learn from the transfer samples.

Latencies go in and come out in milliseconds: a predictor normalises
internally and keeps its normalisation in :meth:`state` so that a reloaded
predictor predicts exactly what the saved one did.

Example:
    >>> import pandas as pd
    >>> samples = pd.Series({"a": 1.0, "b": 2.0})
    >>> float(samples.loc["b"])
    2.0
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn


class Predictor(abc.ABC):
    """Base class of all predictors.

    ``sources`` and ``samples`` are ``pd.Series`` of latency in ms indexed by
    canonical arch string.
    """

    #: Name used by ``trainer pretrain --method``.
    method: ClassVar[str]
    #: True where ``pretrain`` learns from source targets.
    uses_sources: ClassVar[bool] = False
    #: The fewest target samples ``transfer`` accepts.
    min_target_samples: ClassVar[int] = 2

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        self.space = space
        self.seed = seed
        self.hyper = dict(hyper)

    @classmethod
    def required_archs(cls, space: str) -> tuple[str, ...]:
        """Archs every source and target must have measured (HELP's reference archs; none by default).

        They count against a target's sample budget: samplers name them first.
        """
        return ()

    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:  # noqa: B027 - optional
        """Learn from source targets (name -> latencies). Single-device methods skip it."""

    @abc.abstractmethod
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Adapt to ``target`` from its few measured ``samples`` (arch -> ms)."""

    @abc.abstractmethod
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Predicted latency in ms of each arch on ``target`` (a source or a transferred target)."""

    @abc.abstractmethod
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-serialisable config) from which :meth:`from_state` rebuilds it exactly."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "Predictor":
        """Rebuild a predictor saved with :meth:`state`. Never unpickles objects."""

    def targets(self) -> list[str]:
        """Targets this predictor can predict for."""
        return []

    def transfer_summary(self, target: str) -> str:
        """One line on what :meth:`transfer` chose for ``target`` (e.g. blend weights); empty when nothing to say."""
        return ""


def prefixed_state(modules: Iterable[tuple[str, nn.Module | None]]) -> dict[str, torch.Tensor]:
    """The state dicts of ``(prefix, module)`` pairs as one flat tensor dict (``prefix.name``); ``None`` skipped.

    Example:
        >>> sorted(prefixed_state([("base", nn.Linear(2, 1)), ("extra", None)]))
        ['base.bias', 'base.weight']
    """
    return {f"{prefix}.{name}": value.detach().clone()
            for prefix, module in modules if module is not None
            for name, value in module.state_dict().items()}


def load_prefixed(module: nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str) -> nn.Module:
    """Load into ``module`` the entries of ``tensors`` saved under ``prefix`` by :func:`prefixed_state`.

    Example:
        >>> net = nn.Linear(2, 1)
        >>> load_prefixed(nn.Linear(2, 1), prefixed_state([("base", net)]), "base").weight.equal(net.weight)
        True
    """
    start = len(prefix) + 1
    module.load_state_dict({key[start:]: value for key, value in tensors.items() if key.startswith(prefix + ".")})
    return module
