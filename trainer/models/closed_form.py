"""Shared machinery of the closed-form baselines (:mod:`.flops`, :mod:`.layerwise`).

Such a predictor fits a few numbers per target by least squares on that
target's measured archs and nothing else, so there is no pre-training across
devices: ``pretrain`` fits each source on its own (so that ``trainer predict
--target <source>`` works) and ``transfer`` fits the new target from its few
samples. Parameters are plain floats kept in the JSON config; there are no
tensors to save.

A subclass supplies :meth:`features` (arch -> feature matrix), :meth:`fit`
(features, latencies -> parameter dict) and :meth:`apply`.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from farm.errors import UserError
from trainer.models.base import Predictor


class ClosedFormPredictor(Predictor):
    """A per-target model with parameters from a closed-form fit."""

    #: Hyper-parameter names (and defaults) the constructor accepts.
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise UserError(f"method {self.method!r} has no hyper-parameter {unknown[0]!r}; it accepts: {accepted}")
        super().__init__(space, seed, **{**self.defaults, **hyper})
        self.parameters: dict[str, dict[str, Any]] = {}

    @abc.abstractmethod
    def features(self, archs: Sequence[str]) -> np.ndarray:
        """``[n, d]`` features of ``archs``."""

    @abc.abstractmethod
    def fit(self, x: np.ndarray, y_ms: np.ndarray) -> dict[str, Any]:
        """JSON-serialisable parameters fitted on features ``x`` and latencies ``y_ms``."""

    @abc.abstractmethod
    def apply(self, x: np.ndarray, parameters: Mapping[str, Any]) -> np.ndarray:
        """Predicted ms from features and fitted parameters."""

    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:
        """Fit every source on its own (no knowledge is shared across devices)."""
        for name, values in sources.items():
            self.transfer(name, values)

    def transfer(self, target: str, samples: pd.Series) -> None:
        if len(samples) < self.min_target_samples:
            raise UserError(
                f"target {target!r}: {len(samples)} measured archs, method {self.method!r} needs at least "
                f"{self.min_target_samples}; measure more archs on it"
            )
        self.parameters[target] = self.fit_parameters(samples)

    def fit_parameters(self, samples: pd.Series) -> dict[str, Any]:
        """The parameters fitted on ``samples`` (arch -> ms), without registering a target."""
        return self.fit(self.features(list(samples.index)), samples.to_numpy(dtype="float64"))

    def predict_with(self, parameters: Mapping[str, Any], archs: Sequence[str]) -> np.ndarray:
        """Predicted ms of ``archs`` under ``parameters`` from :meth:`fit_parameters`."""
        return self.apply(self.features(list(archs)), parameters)

    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        if target not in self.parameters:
            raise UserError(
                f"target {target!r} is unknown to this {self.method} predictor; it knows "
                f"{', '.join(self.targets()) or 'none'}: run `trainer transfer` for it first"
            )
        return self.predict_with(self.parameters[target], archs)

    def targets(self) -> list[str]:
        return list(self.parameters)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        config = {"space": self.space, "seed": self.seed, "hyper": dict(self.hyper), "parameters": self.parameters}
        return {}, config

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "ClosedFormPredictor":
        predictor = cls(config["space"], seed=int(config["seed"]), **dict(config["hyper"]))
        predictor.parameters = {name: dict(values) for name, values in config["parameters"].items()}
        return predictor
