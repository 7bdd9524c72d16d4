"""Stacked transfer: MultiPredict's fine-tuned network and six closed-form models, blended by cross-validation.

The project's own method (beyond the papers). After pre-training MultiPredict
on the source devices (:mod:`trainer.models.multipredict`) it also fits, per
source, a log-linear table over the one-hot (position, op) encoding on that
source's archs,

.. math::  \\log t_s(a) = b_s + \\sum_{p} \\theta_{s,p,\\mathrm{op}_p(a)}

(closed-form ridge; FBNet latencies are almost exactly log-additive over
(position, op): on HELP's table such a fit ranks half the archs from the other
half at Spearman 0.999), the same table in ms, and, on narrow encodings, a table with
pairwise interactions in ms. Transfer to a target with a few samples builds seven component
predictors, each from those samples only:

* ``network``: MultiPredict's fine-tuned copy (row initialised from the best-correlated source);
* ``layerwise``: the per-op latency table (:mod:`trainer.models.layerwise`);
* ``flops``: latency affine in MACs (:mod:`trainer.models.flops`);
* ``sources``: a ridge of the target's log latency on the log latencies the
  pre-trained network predicts for every source row (:mod:`trainer.models.log_ridge`);
* ``tables``: the same ridge over the per-source tables' log predictions;
* ``pairs``: a ridge of the target's latency (in ms over its mean, not log) over per-source
  tables with pairwise (position, op) interactions, also additive in ms. Some devices are: on
  HELP's NAS-Bench-201 table, raspi4 and pixel3 are ranked at Spearman 0.97 by such a table
  fitted on 7,000 of their 15,625 archs, 0.94 by an additive ms table and 0.90 by an additive
  log one. Only
  where the one-hot is at most ``pair_table_max_width`` wide (NAS-Bench-201's 30 columns give
  435 products; FBNet's 198 would give 19,503): elsewhere the blend has the other six and
  :meth:`Stack.transfer_summary` says why;
* ``costs``: the same kind of ridge over the per-source additive ms tables plus the arch's MACs
  and parameter count, a compute and a memory term. HELP's FBNet latencies of raspi4, fpga and
  eyeriss are exact sums of per-layer costs (an additive ms table fitted on 3,000 of their archs
  ranks the rest at Spearman 1.000); from 20 samples this ranks them at 0.981 (3 seeds), 0.974
  without the parameter count.

and predicts their geometric blend

.. math::  \\log \\hat y(a) = \\sum_k w_k \\log \\hat y_k(a), \\qquad w_k \\ge 0, \\; \\sum_k w_k = 1

with ``w`` chosen on out-of-fold predictions over the grid ``w_k in {0, 1/4, ...,
1}``: every component is refitted on 4 of 5 folds of the target's samples (the
network fine-tuned again) and predicts the fifth, the grid point with the least
squared log error on those is found on
each of 100 bootstrap resamples of the samples, and ``w`` is the mean of those
points (bagging the choice; one arg-min over 10-20 noisy errors jumps). The
weights see only the target's samples, never its other archs. The two ridges
have non-negative weights (Breiman's stacked regressions): with 10
cosine-sampled ND samples a free ridge over the sources ranked pixel2 at 0.77,
the constrained one at 0.90. Which components earn weight differs by device and
space; ``trainer transfer`` prints the blend it chose (:meth:`Stack.transfer_summary`).

Example:
    >>> Stack("fbnet").config.components
    ('network', 'layerwise', 'flops', 'sources', 'tables', 'pairs', 'costs')
    >>> Stack("fbnet").unavailable_components()["pairs"]
    "fbnet's one-hot is 198 wide, over pair_table_max_width=64"
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from farm import spaces
from farm.errors import UserError
from trainer import encodings
from trainer.models.flops import FlopsProxy
from trainer.models.layerwise import LayerwiseTable
from trainer.models.log_ridge import RIDGE_GRID, apply_log_ridge, fit_log_ridge
from trainer.models.multipredict import MultiPredict, MultiPredictConfig, floored_log
from trainer.models.training import config_from_hyper, in_config_threads

COMPONENTS: tuple[str, ...] = ("network", "layerwise", "flops", "sources", "tables", "pairs", "costs")
#: The per-source tables a pre-trained stack keeps in its JSON config, by attribute (and key) name.
_TABLE_STATE: tuple[str, ...] = ("source_tables", "source_ms_tables", "source_pair_tables")


@dataclass(frozen=True)
class StackConfig(MultiPredictConfig):
    """MultiPredict's hyper-parameters (its ``blend_weight`` is unused here) plus the stack's own."""

    #: Components the blend may weight, a subset of ``COMPONENTS``.
    components: tuple[str, ...] = COMPONENTS
    #: Spacing of the simplex grid of blend weights (1 / an integer).
    weight_step: float = 0.25
    #: Ridge penalty of the per-source (position, op) log tables, on one-hot features.
    table_ridge: float = 0.1
    #: Ridge penalty of the per-source pairwise tables (in latency / mean latency), on one-hot products.
    pair_table_ridge: float = 1.0
    #: Widest one-hot encoding that gets pairwise tables (NAS-Bench-201: 30 columns, 435 products;
    #: FBNet's 198 would give 19,503 and OFA's 145 10,440, more than 900 source archs can fit).
    pair_table_max_width: int = 64
    #: Penalties tried by leave-one-out for the ``sources`` and ``tables`` ridges.
    stack_ridges: tuple[float, ...] = RIDGE_GRID
    #: Constrain those ridges' weights to be non-negative (Breiman's stacked regressions).
    nonnegative: bool = True
    #: Bootstrap resamples of the out-of-fold errors over which the weights' arg-min is averaged (0: one arg-min).
    weight_bootstraps: int = 100


def simplex_grid(components: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector over ``components`` with entries in multiples of ``step`` summing to 1.

    Example:
        >>> simplex_grid(2, 0.5)
        [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    """
    parts = round(1.0 / step)
    if parts < 1 or not np.isclose(parts * step, 1.0):
        raise UserError(f"stack: weight_step={step!r}; use 1 / n for a whole number n (0.25, 0.2, ...)")
    return [tuple(c / parts for c in combo)
            for combo in itertools.product(range(parts + 1), repeat=components) if sum(combo) == parts]


def bagged_weights(grid: np.ndarray, held_out_log: np.ndarray, measured_log: np.ndarray, bootstraps: int, seed: int) -> np.ndarray:
    """The grid point with the least squared log error, averaged over bootstrap resamples of the samples.

    ``grid`` is ``[G, K]``, ``held_out_log`` the ``[K, n]`` out-of-fold log predictions, ``measured_log``
    ``[n]``. With ``bootstraps=0`` the plain arg-min over all samples (ties: the first grid point). Bagging
    the choice (Breiman, 1996) smooths the jumps of an arg-min over 10-20 noisy errors; the average of
    grid points stays on the simplex.

    Example:
        >>> grid = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> bagged_weights(grid, np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0.9, 1.1]), 0, 0).tolist()
        [0.0, 1.0]
    """
    def arg_min(rows: np.ndarray) -> np.ndarray:
        errors = np.round(((grid @ held_out_log[:, rows] - measured_log[rows]) ** 2).mean(axis=1), 12)
        return grid[int(np.argmin(errors))]

    n = len(measured_log)
    if bootstraps <= 0:
        return arg_min(np.arange(n))
    rng = np.random.default_rng(seed)
    return np.mean([arg_min(rng.integers(0, n, n)) for _ in range(bootstraps)], axis=0)


def fit_op_table(onehot: np.ndarray, target: np.ndarray, ridge: float) -> dict[str, Any]:
    """Closed-form ridge ``target = b + onehot @ theta`` (intercept unpenalised): ``{"theta", "intercept"}``.

    ``onehot`` is the (position, op) encoding or :func:`with_pairs` of it; ``target`` log ms or scaled ms.

    Example:
        >>> x = np.eye(3)[[0, 1, 2, 0]]
        >>> fit = fit_op_table(x, x @ np.array([0.0, 1.0, 2.0]), ridge=1e-9)
        >>> np.allclose(x @ fit["theta"] + fit["intercept"], x @ np.array([0.0, 1.0, 2.0]))
        True
    """
    mean_x, mean_y = onehot.mean(axis=0), float(target.mean())
    centred = onehot - mean_x
    theta = np.linalg.solve(centred.T @ centred + ridge * np.eye(onehot.shape[1]), centred.T @ (target - mean_y))
    return {"theta": theta.tolist(), "intercept": mean_y - float(mean_x @ theta)}


def apply_op_tables(tables: Mapping[str, Mapping[str, Any]], features: np.ndarray) -> np.ndarray:
    """``[n, S]``: each of the ``S`` tables of :func:`fit_op_table` applied to the ``[n, d]`` ``features``.

    Example:
        >>> apply_op_tables({"a": {"theta": [1.0, 2.0], "intercept": 0.5}}, np.eye(2)).tolist()
        [[1.5], [2.5]]
    """
    return np.stack([features @ np.asarray(t["theta"]) + t["intercept"] for t in tables.values()], axis=1)


def with_pairs(onehot: np.ndarray) -> np.ndarray:
    """``[n, d]`` one-hot columns followed by the products of every pair of them, ``[n, d + d(d-1)/2]``.

    Example:
        >>> with_pairs(np.array([[1.0, 0.0, 1.0]])).tolist()
        [[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]
    """
    first, second = np.triu_indices(onehot.shape[1], 1)
    return np.concatenate([onehot, onehot[:, first] * onehot[:, second]], axis=1)


def _scaled_ms_ridge(features: np.ndarray, samples: pd.Series, ridges: Sequence[float], nonnegative: bool) -> dict[str, Any]:
    """:func:`fit_log_ridge` of latency over its mean (an additive model in ms, not log) and that mean."""
    scale = float(samples.mean())
    return {"scale": scale, "ridge": fit_log_ridge(features, samples.to_numpy(dtype="float64") / scale, ridges, nonnegative)}


def geometric_blend(log_predictions: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """``exp(sum_k w_k log p_k)`` of ``[K, n]`` log predictions.

    Example:
        >>> geometric_blend(np.log([[4.0], [1.0]]), (0.5, 0.5)).round(6).tolist()
        [2.0]
    """
    return np.exp(np.tensordot(np.asarray(weights, dtype="float64"), log_predictions, axes=1))


class Stack(MultiPredict):
    """MultiPredict plus per-source tables; transfer blends seven components by cross-validation."""

    method: ClassVar[str] = "stack"
    #: Below 5 samples the blend is cross-validated leave-one-out; every fold keeps 2 to fit on.
    min_target_samples: ClassVar[int] = 3

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        super().__init__(space, seed, **hyper)
        unknown = sorted(set(self.config.components) - set(COMPONENTS))
        if unknown or not self.config.components:
            raise UserError(f"stack: components={list(self.config.components)!r}; choose from {', '.join(COMPONENTS)}")
        simplex_grid(len(self.config.components), self.config.weight_step)
        self.source_tables: dict[str, dict[str, Any]] = {}
        self.source_pair_tables: dict[str, dict[str, Any]] = {}
        self.source_ms_tables: dict[str, dict[str, Any]] = {}

    @property
    def config(self) -> StackConfig:
        return config_from_hyper(StackConfig, self.hyper, self.method)

    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:
        """MultiPredict's pre-training, then each source's (position, op) tables on its own archs: in log
        ms, in ms over its mean, and pairwise in ms where the encoding is narrow enough."""
        super().pretrain(sources)
        cfg = self.config
        self.source_tables, self.source_ms_tables, self.source_pair_tables = {}, {}, {}
        for name, values in sources.items():
            onehot, ms = encodings.onehot(self.space, list(values.index)).astype("float64"), values.to_numpy(dtype="float64")
            relative = ms / ms.mean()
            self.source_tables[name] = fit_op_table(onehot, floored_log(ms), cfg.table_ridge)
            self.source_ms_tables[name] = fit_op_table(onehot, relative, cfg.table_ridge)
            if onehot.shape[1] <= cfg.pair_table_max_width:
                self.source_pair_tables[name] = fit_op_table(with_pairs(onehot), relative, cfg.pair_table_ridge)

    def unavailable_components(self) -> dict[str, str]:
        """Components in ``components`` that sit out of this predictor's blend, each with the reason.

        Example:
            >>> Stack("nasbench201", components=["layerwise", "costs"]).unavailable_components()
            {'costs': 'its pre-training fitted no ms tables (a predictor from before they existed); pre-train again to use them'}
        """
        wanted, reasons = set(self.config.components), {}
        before = "its pre-training fitted no {} (a predictor from before they existed); pre-train again to use them"
        if "pairs" in wanted and not self.source_pair_tables:
            width = encodings.onehot(self.space, spaces.get(self.space).sample(1)).shape[1]
            reasons["pairs"] = (f"{self.space}'s one-hot is {width} wide, over pair_table_max_width={self.config.pair_table_max_width}"
                                if width > self.config.pair_table_max_width else before.format("pairwise tables"))
        if "costs" in wanted and not self.source_ms_tables:
            reasons["costs"] = before.format("ms tables")
        return reasons

    @property
    def active_components(self) -> tuple[str, ...]:
        """``components`` less those :meth:`unavailable_components` gives a reason for."""
        unavailable = self.unavailable_components()
        return tuple(c for c in self.config.components if c not in unavailable)

    # -- the components ----------------------------------------------------------------
    def _source_log_ms(self, archs: Sequence[str]) -> np.ndarray:
        """``[n, S]`` log ms the pre-trained network predicts for every source row."""
        scaled = self.source_predictions(archs)
        return np.stack([floored_log(scaler.inverse(row)) for row, scaler in zip(scaled, self.source_scalers.values())], axis=1)

    def _table_log_ms(self, archs: Sequence[str]) -> np.ndarray:
        """``[n, S]`` log ms of every source's (position, op) table."""
        return apply_op_tables(self.source_tables, encodings.onehot(self.space, list(archs)).astype("float64"))

    def _pair_scaled_ms(self, archs: Sequence[str]) -> np.ndarray:
        """``[n, S]`` latency over its mean of every source's pairwise table."""
        return apply_op_tables(self.source_pair_tables, with_pairs(encodings.onehot(self.space, list(archs)).astype("float64")))

    def _cost_features(self, archs: Sequence[str]) -> np.ndarray:
        """``[n, S + 2]``: every source's additive ms table (over its mean), MACs (M) and parameters (M)."""
        tables = apply_op_tables(self.source_ms_tables, encodings.onehot(self.space, list(archs)).astype("float64"))
        return np.column_stack([tables, encodings.flops(self.space, list(archs)) / 1e6, encodings.params(self.space, list(archs)) / 1e6])

    def _fit_components(self, samples: pd.Series, network: bool) -> dict[str, Any]:
        """Every closed-form component in ``active_components`` fitted on ``samples``, and when ``network``
        the fine-tuned net as (net, scaler, source rhos, row initialisation weights)."""
        archs, log_y = list(samples.index), floored_log(samples.to_numpy())
        wanted, fitted = set(self.active_components), {}
        ridges, nonnegative = self.config.stack_ridges, self.config.nonnegative
        if "layerwise" in wanted:
            fitted["layerwise"] = LayerwiseTable(self.space).fit_parameters(samples)
        if "flops" in wanted:
            fitted["flops"] = FlopsProxy(self.space).fit_parameters(samples)
        if "sources" in wanted:
            fitted["sources"] = fit_log_ridge(self._source_log_ms(archs), log_y, ridges, nonnegative)
        if "tables" in wanted:
            if not self.source_tables:
                raise UserError("stack: this predictor has no per-source tables; pre-train it with `trainer pretrain --method stack`")
            fitted["tables"] = fit_log_ridge(self._table_log_ms(archs), log_y, ridges, nonnegative)
        if "pairs" in wanted:
            # Additive in ms, not log: on HELP's table raspi4's and pixel3's NB201 latencies are ranked at
            # Spearman 0.97 by a pairwise ms table and 0.91 by a pairwise log one (fitted on 7,000 archs, the rest ranked).
            fitted["pairs"] = _scaled_ms_ridge(self._pair_scaled_ms(archs), samples, ridges, nonnegative)
        if "costs" in wanted:
            # Compute and memory terms next to the source tables: HELP's FBNet latencies of raspi4, fpga and
            # eyeriss are sums of per-layer costs, ranked at 0.98 from 20 samples with parameters, 0.974 without.
            fitted["costs"] = _scaled_ms_ridge(self._cost_features(archs), samples, ridges, nonnegative)
        if network:
            fitted["network"] = self._finetune(samples)
        return fitted

    def _component_log_ms(self, name: str, fitted: Any, archs: Sequence[str]) -> np.ndarray:
        predictors: dict[str, Callable[[], np.ndarray]] = {
            "network": lambda: floored_log(self._net_predict(fitted[0], len(self.source_scalers), fitted[1], archs)),
            "layerwise": lambda: floored_log(LayerwiseTable(self.space).predict_with(fitted, archs)),
            "flops": lambda: floored_log(FlopsProxy(self.space).predict_with(fitted, archs)),
            "sources": lambda: apply_log_ridge(fitted, self._source_log_ms(archs)),
            "tables": lambda: apply_log_ridge(fitted, self._table_log_ms(archs)),
            "pairs": lambda: floored_log(fitted["scale"] * apply_log_ridge(fitted["ridge"], self._pair_scaled_ms(archs))),
            "costs": lambda: floored_log(fitted["scale"] * apply_log_ridge(fitted["ridge"], self._cost_features(archs))),
        }
        return predictors[name]()

    def _out_of_fold(self, samples: pd.Series) -> np.ndarray:
        """``[K, n]`` log ms of each component on each sample, fitted without that sample's fold."""
        components = self.active_components
        folds = self._blend_folds(len(samples))
        held_out_log = np.zeros((len(components), len(samples)))
        for fold in folds:
            train, held_out = samples.drop(index=samples.index[fold]), list(samples.index[fold])
            fitted = self._fit_components(train, network="network" in components)
            for k, name in enumerate(components):
                held_out_log[k, fold] = self._component_log_ms(name, fitted[name], held_out)
        return held_out_log

    # -- transfer and prediction -----------------------------------------------------------
    @in_config_threads
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Fine-tune the network, fit the closed-form components, choose the blend by 5-fold CV on ``samples``."""
        if len(samples) < self.min_target_samples:
            raise UserError(
                f"stack needs at least {self.min_target_samples} samples of {target!r}, got {len(samples)}; measure more archs"
            )
        components = self.active_components
        fitted = self._fit_components(samples, network=True)
        held_out_log = self._out_of_fold(samples)
        measured_log = floored_log(samples.to_numpy())
        grid = np.asarray(simplex_grid(len(components), self.config.weight_step))
        chosen = bagged_weights(grid, held_out_log, measured_log, self.config.weight_bootstraps, self.seed)
        weights = dict(zip(components, chosen.round(6).tolist()))
        net, scaler, rhos, init = fitted.pop("network")
        self.tuned[target], self.target_scalers[target] = net, scaler
        self.transfer_info[target] = {
            **self._initialisation_info(len(samples), rhos, init),
            "stack_weights": weights,
            "component_cv_log_mse": {name: float(np.mean((held_out_log[k] - measured_log) ** 2))
                                     for k, name in enumerate(components)},
            "blend_cv_log_mse": float(np.mean((chosen @ held_out_log - measured_log) ** 2)),
            "components": fitted,
        }

    @in_config_threads
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Latency in ms on a source (the pre-trained network) or a transferred target (the blend)."""
        if target not in self.tuned:
            return super().predict(archs, target)
        info = self.transfer_info[target]
        used = [(name, w) for name, w in info["stack_weights"].items() if w > 0]
        fitted = {**info["components"], "network": (self.tuned[target], self.target_scalers[target])}
        logs = np.stack([self._component_log_ms(name, fitted[name], archs) for name, _ in used])
        return geometric_blend(logs, [w for _, w in used])

    def transfer_summary(self, target: str) -> str:
        """The blend's weights, largest first, and the source the network's row started from.

        Example:
            >>> model = Stack("nasbench201", components=["network", "layerwise", "tables"])
            >>> model.transfer_info["t"] = {"stack_weights": {"network": 0.0, "layerwise": 0.75, "tables": 0.25},
            ...                             "init_source": "pixel3"}
            >>> model.transfer_summary("t")
            'blend of t: layerwise 0.75, tables 0.25 (network row initialised from pixel3)'
        """
        info = self.transfer_info.get(target)
        if not info:
            return ""
        weights = sorted(((w, name) for name, w in info["stack_weights"].items() if w > 0), reverse=True)
        parts = ", ".join(f"{name} {w:.2f}" for w, name in weights)
        left_out = "".join(f"; {name} left out: {reason}" for name, reason in self.unavailable_components().items()
                           if name not in info["stack_weights"])
        return f"blend of {target}: {parts} (network row initialised from {info['init_source']}{left_out})"

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, config = super().state()
        return tensors, {**config, **{key: getattr(self, key) for key in _TABLE_STATE}}

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "Stack":
        model = super().from_state(tensors, config)
        assert isinstance(model, Stack)
        for key in _TABLE_STATE:  # a predictor saved before a kind of table existed has none of it
            setattr(model, key, {name: dict(table) for name, table in config.get(key, {}).items()})
        return model
