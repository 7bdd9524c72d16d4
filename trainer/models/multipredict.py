"""MultiPredict transfer learning: one predictor f(arch, hardware) for many devices.

Akhauri & Abdelfattah, "Multi-Predict: Few Shot Predictors For Efficient
Neural Architecture Search", AutoML 2023.

.. math::
    \\hat y(a, d) = \\mathrm{head}\\big([\\,\\mathrm{enc}(a) \\,\\|\\, E_d\\,]\\big)

``enc`` is a GCN (3 layers of 200, read out at the global node) over the
``farm.spaces`` graph for NAS-Bench-201 and an MLP (3 layers of 100) over the
one-hot encoding for FBNet/OFA; ``E`` is a learnable hardware-embedding table
with one row (dimension 8) per source device; the head is an MLP (200 x3 for
the GCN, 1000 x2 "interaction" layers for the MLP encoder).

* ``pretrain``: all (arch, source) pairs, each source's latency min-max scaled
  on its own training archs; AdamW lr 4e-4, weight decay 5e-4, batch 128,
  250 epochs.
* ``transfer``: the target gets a new row of ``E``, initialised from the source
  whose latencies correlate best (Spearman) with the target's few samples on the
  same archs, then the whole network is fine-tuned on those samples with a fresh
  AdamW at lr 1e-3 for 50 epochs (the paper; our default is 3e-4, measured
  better on ND and FD, see ``MultiPredictConfig.target_lr``). The source
  latencies on the sample archs are the pre-trained predictor's own predictions
  for each source row: the target's
  archs need not have been measured on the sources, and no source data has to be
  shipped with the predictor. Each target keeps its own fine-tuned copy, so
  transferring to one target never changes predictions for another.

By default (beyond the paper) the transferred predictor is a geometric blend with
a layer-wise table fitted on the same target samples,
``y = f(a, d)^(1-w) * t(a)^w``, where w is chosen per target by 5-fold
cross-validation on those samples (both models refitted on each fold): the
network carries what the sources teach, the table what the target's own
samples say about per-op costs, and the held-out folds decide how much of each.
A target unlike every source (HELP's FBNet fpga, which FLOPs alone ranks at 0.98
and the fine-tuned network at 0.89) then leans on the table.

Other options beyond the paper (see ``MultiPredictConfig``): an additive GCN readout
(every node priced given the device, then summed: a learned, device-conditioned
layer-wise table), log-latency scaling, a pairwise hinge rank loss, a
correlation-weighted row initialisation, fine-tuning only the hardware row (or
row and head), and an embedding-only first fine-tuning stage.

Example:
    >>> MultiPredict("fbnet").encoder_kind
    'mlp'
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from farm.errors import UserError
from trainer.models import arch_inputs
from trainer.models.base import Predictor, load_prefixed, prefixed_state
from trainer.models.layers import MLP, GraphEncoder, HardwareEmbedding
from trainer.models.layerwise import LayerwiseTable
from trainer.models.target_scaler import ScalerKind, TargetScaler
from trainer.models.training import (
    FitConfig,
    config_from_hyper,
    fit,
    in_config_threads,
    predict_in_chunks,
    regression_loss,
)

ArchInputs = Union[arch_inputs.GraphBatch, torch.Tensor]


@dataclass(frozen=True)
class MultiPredictConfig:
    """Hyper-parameters; defaults are the paper's (MultiPredict, AutoML 2023) except ``target_lr`` and ``blend_weight``."""

    #: ``auto``: GCN for nasbench201, MLP over the one-hot encoding otherwise.
    encoder: Literal["auto", "gcn", "mlp"] = "auto"
    gcn_hidden: tuple[int, ...] = (200, 200, 200)
    gcn_head: tuple[int, ...] = (200, 200, 200)
    mlp_hidden: tuple[int, ...] = (100, 100, 100)
    mlp_head: tuple[int, ...] = (1000, 1000)
    hw_dim: int = 8
    #: GCN readout. ``global`` (paper): the head reads the global node. ``additive``: the head
    #: prices every node given the device, ``y = sum_i head([h_i, E_d]) + b(E_d)`` (a learned,
    #: device-conditioned layer-wise table; the GCN states carry each op's context).
    readout: Literal["global", "additive"] = "global"
    dropout: float = 0.0
    source_lr: float = 4e-4
    #: Fine-tuning lr; the paper's is 1e-3. 3e-4 measured better with 20 samples: ND (GCN, 3 seeds)
    #: mean Spearman 0.9535 against 0.9501, 5 of 6 targets better; FD (MLP, seed 0, 50 pre-training
    #: epochs) 0.938 against 0.915, all 3 targets better.
    target_lr: float = 3e-4
    weight_decay: float = 5e-4
    batch_size: int = 128
    source_epochs: int = 250
    target_epochs: int = 50
    scaler: ScalerKind = "minmax"
    #: ``best``: copy the best-correlated source row (paper); ``softmax``: softmax(rho / T)-weighted mix of rows.
    init: Literal["best", "softmax"] = "best"
    init_temperature: float = 0.02
    #: What the fine-tuning stage trains: ``all`` (paper), ``embedding_head`` (the encoder stays
    #: as pre-trained) or ``embedding`` (only the hardware row: the target stays on the learned
    #: device manifold).
    finetune: Literal["all", "embedding_head", "embedding"] = "all"
    #: Epochs of a first stage that trains only the hardware row, at ``embedding_lr`` (0: none).
    embedding_epochs: int = 0
    embedding_lr: float = 1e-2
    rank_weight: float = 0.0
    #: Zero the node features of detached ops as BRP-NAS does (hurts latency; see ``arch_inputs``).
    zero_detached: bool = False
    #: Blend with a layer-wise table fitted on the same target samples (``trainer.models.layerwise``):
    #: ``y = exp((1 - w) log f(a, d) + w log t(a))``. ``None``: choose w per target from
    #: ``BLEND_GRID`` by ``blend_folds``-fold cross-validation on the target's samples (both models
    #: refitted on each fold); a number fixes w; 0 is the paper's predictor alone.
    #: Default ``None``: on HELP's data (20 samples, seeds 0 and 1) the blend took FD from 0.939 to 0.963
    #: mean Spearman and ND from 0.953 to 0.962 (``benchmarks/transfer.py`` has the 3-seed figures).
    blend_weight: float | None = None
    blend_folds: int = 5
    #: Intra-op threads while training and predicting (small tensors: 1 is fastest).
    threads: int = 1
    #: Shorthand (``trainer --epochs N``): caps both ``source_epochs`` and ``target_epochs`` at N.
    epochs: int | None = None
    #: Cap on pre-training work, in (arch, source) pair visits: epochs = min(source_epochs,
    #: pair_budget // pairs), at least 1; ``None``: no cap. 2.25M leaves HELP's splits (9 sources x
    #: 900 archs) their 250 epochs and gives an FBNet split at 4,000 archs on 9 sources 62 epochs
    #: (433 s on this 2-core CPU with two other benchmarks running, FD 0.9747 for ``stack``, seed 0;
    #: at that rate the paper's 250 would take about 29 min against a 15-minute budget).
    pair_budget: int | None = 2_250_000

    @property
    def pretrain_epochs(self) -> int:
        return self.source_epochs if self.epochs is None else min(self.source_epochs, self.epochs)

    def pretrain_epochs_for(self, pairs: int) -> int:
        """Pre-training epochs over ``pairs`` measured (arch, source) pairs, within ``pair_budget``.

        Example:
            >>> MultiPredictConfig().pretrain_epochs_for(9 * 900), MultiPredictConfig().pretrain_epochs_for(9 * 4000)
            (250, 62)
        """
        if self.pair_budget is None:
            return self.pretrain_epochs
        return min(self.pretrain_epochs, max(1, self.pair_budget // max(1, pairs)))

    @property
    def transfer_epochs(self) -> int:
        return self.target_epochs if self.epochs is None else min(self.target_epochs, self.epochs)


#: The paper's settings, spelled out, whatever the defaults above become (``benchmarks/transfer.py``
#: reports this configuration as ``multipredict-paper``).
PAPER_HYPER: dict[str, Any] = {
    "gcn_hidden": (200, 200, 200), "gcn_head": (200, 200, 200), "mlp_hidden": (100, 100, 100),
    "mlp_head": (1000, 1000), "hw_dim": 8, "source_lr": 4e-4, "target_lr": 1e-3, "weight_decay": 5e-4,
    "batch_size": 128, "source_epochs": 250, "target_epochs": 50, "scaler": "minmax", "init": "best",
    "finetune": "all", "rank_weight": 0.0, "readout": "global", "embedding_epochs": 0, "blend_weight": 0.0,
    "pair_budget": None,
}

#: Layer-wise weights tried when ``blend_weight`` is None.
BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


def blend(network_ms: np.ndarray, table_ms: np.ndarray, weight: float) -> np.ndarray:
    """Geometric blend ``network^(1-w) * table^w`` (the table's non-positive values are floored).

    Example:
        >>> blend(np.array([4.0]), np.array([1.0]), 0.5).round(6).tolist()
        [2.0]
    """
    if weight == 0.0:
        return np.asarray(network_ms, dtype="float64")
    return np.exp((1.0 - weight) * floored_log(network_ms) + weight * floored_log(table_ms))


def floored_log(ms: np.ndarray) -> np.ndarray:
    """``log`` of latencies in ms, non-positive values floored at 1e-6 ms (a closed-form fit may dip below 0).

    Example:
        >>> floored_log(np.array([1.0, -2.0])).round(3).tolist()
        [0.0, -13.816]
    """
    return np.log(np.maximum(np.asarray(ms, dtype="float64"), 1e-6))


def choose_blend_weight(network_ms: np.ndarray, table_ms: np.ndarray, measured_ms: np.ndarray) -> float:
    """The weight of ``BLEND_GRID`` with the least squared log error on held-out predictions (ties: less table)."""
    errors = [float(np.mean((np.log(blend(network_ms, table_ms, w)) - np.log(measured_ms)) ** 2)) for w in BLEND_GRID]
    return BLEND_GRID[int(np.argmin(np.round(errors, 12)))]


class MultiPredictNet(nn.Module):
    """Arch encoder + hardware-embedding table + MLP head."""

    def __init__(self, encoder_kind: str, in_channels: int, num_devices: int, cfg: MultiPredictConfig) -> None:
        super().__init__()
        if encoder_kind == "gcn":
            self.encoder: nn.Module = GraphEncoder(in_channels, cfg.gcn_hidden, dropout=cfg.dropout)
            head = cfg.gcn_head
        else:
            self.encoder = MLP(in_channels, cfg.mlp_hidden, dropout=cfg.dropout)
            head = cfg.mlp_head
        self.hardware = HardwareEmbedding(num_devices, cfg.hw_dim)
        self.head = MLP(self.encoder.out_channels + cfg.hw_dim, head, 1, dropout=cfg.dropout)
        self.additive = encoder_kind == "gcn" and cfg.readout == "additive"
        self.fixed_cost = nn.Linear(cfg.hw_dim, 1) if self.additive else None

    def encode(self, inputs: ArchInputs) -> torch.Tensor:
        """[B, hidden] embedding of each arch.

        With the additive readout: [B, N, hidden + 1], every node's state and, last, 1 for a
        real node and 0 for padding.
        """
        if isinstance(inputs, arch_inputs.GraphBatch):
            if self.additive:
                real = (inputs.adj.sum(-1, keepdim=True) > 0).to(inputs.x.dtype)  # self loops mark real nodes
                return torch.cat([self.encoder.node_states(inputs.x, inputs.adj), real], dim=-1)
            return self.encoder(inputs.x, inputs.adj, inputs.readout)
        return self.encoder(inputs)

    def score(self, encoded: torch.Tensor, device_index: torch.Tensor) -> torch.Tensor:
        """Scaled latency from arch embeddings and device rows."""
        device = self.hardware(device_index)
        if self.fixed_cost is not None:
            states, real = encoded[..., :-1], encoded[..., -1]
            nodes = device.unsqueeze(1).expand(-1, states.shape[1], -1)
            per_node = nn.functional.softplus(self.head(torch.cat([states, nodes], dim=-1))).squeeze(-1)
            return (per_node * real).sum(-1) + self.fixed_cost(device).squeeze(-1)
        return self.head(torch.cat([encoded, device], dim=-1)).squeeze(-1)

    def forward(self, inputs: ArchInputs, device_index: torch.Tensor) -> torch.Tensor:
        return self.score(self.encode(inputs), device_index)


def _take(inputs: ArchInputs, idx: torch.Tensor | slice) -> ArchInputs:
    return inputs.index(idx) if isinstance(inputs, arch_inputs.GraphBatch) else inputs[idx]


def rank_correlations(candidates: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Spearman rho of each row of ``candidates`` [S, n] with ``observed`` [n]; undefined (constant) -> -1."""
    rhos = []
    for row in candidates:
        rho = stats.spearmanr(row, observed).statistic if np.ptp(row) > 0 and np.ptp(observed) > 0 else np.nan
        rhos.append(-1.0 if np.isnan(rho) else float(rho))
    return np.asarray(rhos)


def init_weights(rhos: np.ndarray, mode: str, temperature: float) -> np.ndarray:
    """Convex weights over source rows: one-hot on the best rho, or softmax(rho / temperature)."""
    if mode == "best":
        weights = np.zeros_like(rhos)
        weights[int(np.argmax(rhos))] = 1.0
        return weights
    if mode == "softmax":
        logits = (rhos - rhos.max()) / temperature
        return np.exp(logits) / np.exp(logits).sum()
    raise ValueError(f"unknown init {mode!r}; use best or softmax")


class MultiPredict(Predictor):
    """Multi-device predictor with a hardware-embedding table, transferred by row initialisation + fine-tuning."""

    method: ClassVar[str] = "multipredict"
    uses_sources: ClassVar[bool] = True
    min_target_samples: ClassVar[int] = 3

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        super().__init__(space, seed, **hyper)
        encoder = self.config.encoder
        self.encoder_kind = ("gcn" if space == "nasbench201" else "mlp") if encoder == "auto" else encoder
        self.in_channels: int | None = None
        self.base: MultiPredictNet | None = None
        self.source_scalers: dict[str, TargetScaler] = {}
        self.tuned: dict[str, MultiPredictNet] = {}
        self.target_scalers: dict[str, TargetScaler] = {}
        self.transfer_info: dict[str, dict[str, Any]] = {}

    @property
    def config(self) -> MultiPredictConfig:
        """The hyper-parameters in ``self.hyper`` (the CLI may update them before ``transfer``)."""
        return config_from_hyper(MultiPredictConfig, self.hyper, self.method)

    @property
    def scalers(self) -> dict[str, TargetScaler]:
        """Per-target latency scaling of every source and transferred target (written to the manifest)."""
        return {**self.source_scalers, **self.target_scalers}

    # -- inputs ---------------------------------------------------------------------------
    def _inputs(self, archs: Sequence[str]) -> ArchInputs:
        if self.encoder_kind == "gcn":
            if self.in_channels is None:
                self.in_channels = arch_inputs.num_node_types(self.space)
            return arch_inputs.graph_batch(self.space, archs, self.in_channels, self.config.zero_detached)
        onehot = arch_inputs.onehot_batch(self.space, archs)
        self.in_channels = onehot.shape[1] if self.in_channels is None else self.in_channels
        return onehot

    def _net(self, num_devices: int) -> MultiPredictNet:
        assert self.in_channels is not None
        return MultiPredictNet(self.encoder_kind, self.in_channels, num_devices, self.config)

    # -- training -------------------------------------------------------------------------
    @in_config_threads
    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:
        """Learn f(arch, source) from every (arch, source) pair of ``sources`` (name -> arch -> ms)."""
        if len(sources) < 1:
            raise UserError("multipredict needs at least one source target to pre-train on")
        cfg = self.config
        names = list(sources)
        self.source_scalers = {name: TargetScaler.fit(sources[name].to_numpy(), cfg.scaler) for name in names}
        archs = list(dict.fromkeys(a for name in names for a in sources[name].index))
        # [archs, sources] matrix of scaled latency; NaN where a source did not measure an arch.
        frame = pd.DataFrame({n: pd.Series(self.source_scalers[n].transform(sources[n].to_numpy()), sources[n].index) for n in names})
        y = torch.tensor(frame.reindex(archs).to_numpy(), dtype=torch.float32)
        measured = ~torch.isnan(y)
        inputs = self._inputs(archs)
        # A step draws batch_size / #sources archs with all their source latencies: about batch_size
        # (arch, source) pairs as in the paper, but each arch is encoded once per step, not once per pair.
        archs_per_step = max(1, round(cfg.batch_size / len(names)))
        fit_cfg = FitConfig(
            lr=cfg.source_lr, weight_decay=cfg.weight_decay, batch_size=archs_per_step, epochs=cfg.pretrain_epochs_for(int(measured.sum())),
            rank_weight=cfg.rank_weight, seed=self.seed,
        )
        all_devices = torch.arange(len(names))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = self._net(len(names))

            def batch_loss(idx: torch.Tensor) -> torch.Tensor:
                encoded = net.encode(_take(inputs, idx))
                devices = all_devices.repeat(len(idx))
                pred = net.score(encoded.repeat_interleave(len(names), 0), devices)
                mask = measured[idx].reshape(-1)
                return regression_loss(pred[mask], y[idx].reshape(-1)[mask], fit_cfg, groups=devices[mask])

            fit(net, batch_loss, len(archs), fit_cfg, desc="multipredict pretrain")
        self.base = net.eval()
        self.tuned, self.target_scalers, self.transfer_info = {}, {}, {}

    @in_config_threads
    def source_predictions(self, archs: Sequence[str]) -> np.ndarray:
        """[S, n] scaled predictions of the pre-trained net for every source row."""
        if self.base is None:
            raise UserError("multipredict is not pre-trained; run pretrain (trainer pretrain) first")
        inputs = self._inputs(list(archs))
        with torch.no_grad():
            encoded = self.base.encode(inputs)
            return np.stack([
                self.base.score(encoded, torch.full((len(archs),), d)).double().numpy()
                for d in range(len(self.source_scalers))
            ])

    @in_config_threads
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Add ``target`` from its few ``samples`` (arch -> ms): initialise its row, then fine-tune a copy.

        With a layer-wise blend (``blend_weight`` not 0), a layer-wise table is fitted on the same
        samples and kept in ``transfer_info[target]``; with ``blend_weight=None`` its weight is
        chosen by cross-validation on the samples.
        """
        if len(samples) < self.min_target_samples:
            raise UserError(
                f"multipredict needs at least {self.min_target_samples} samples of {target!r}, got {len(samples)}"
            )
        cfg = self.config
        if cfg.blend_weight is not None and not 0.0 <= cfg.blend_weight <= 1.0:
            raise UserError(f"multipredict: blend_weight={cfg.blend_weight!r}; use a number in [0, 1] or null (chosen by cross-validation)")
        net, scaler, rhos, weights = self._finetune(samples)
        info = self._initialisation_info(len(samples), rhos, weights)
        if cfg.blend_weight != 0.0:
            info["blend_weight"] = self._cross_validated_weight(samples) if cfg.blend_weight is None else cfg.blend_weight
            info["layerwise"] = LayerwiseTable(self.space).fit_parameters(samples)
        self.tuned[target], self.target_scalers[target] = net, scaler
        self.transfer_info[target] = info

    def _initialisation_info(self, samples: int, rhos: np.ndarray, weights: np.ndarray) -> dict[str, Any]:
        """How a target's hardware row was initialised, for ``transfer_info``."""
        names = list(self.source_scalers)
        return {
            "samples": samples,
            "init_source": names[int(np.argmax(rhos))],
            "source_spearman": dict(zip(names, rhos.round(4).tolist())),
            "init_weights": dict(zip(names, weights.round(4).tolist())),
        }

    def _finetune(self, samples: pd.Series) -> tuple[MultiPredictNet, TargetScaler, np.ndarray, np.ndarray]:
        """A fine-tuned copy of the pre-trained net with a new hardware row: (net, scaler, rhos, init weights)."""
        cfg = self.config
        archs = list(samples.index)
        rhos = rank_correlations(self.source_predictions(archs), samples.to_numpy())
        weights = init_weights(rhos, cfg.init, cfg.init_temperature)
        scaler = TargetScaler.fit(samples.to_numpy(), cfg.scaler)
        y = torch.tensor(scaler.transform(samples.to_numpy()), dtype=torch.float32)
        inputs = self._inputs(archs)
        assert self.base is not None
        net = copy.deepcopy(self.base)
        row = net.hardware.add_row(torch.from_numpy(weights))
        trained = {
            "all": list(net.parameters()),
            "embedding_head": [*net.hardware.parameters(), *net.head.parameters()],
            "embedding": list(net.hardware.parameters()),
        }
        if cfg.finetune not in trained:
            raise UserError(f"multipredict: finetune={cfg.finetune!r}; use one of {', '.join(trained)}")
        stages = [(list(net.hardware.parameters()), cfg.embedding_lr, min(cfg.embedding_epochs, cfg.transfer_epochs)),
                  (trained[cfg.finetune], cfg.target_lr, cfg.transfer_epochs)]
        rows = torch.full((len(archs),), row)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            for params, lr, epochs in stages:
                if epochs == 0:
                    continue
                fit_cfg = FitConfig(lr=lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, epochs=epochs,
                                    rank_weight=cfg.rank_weight, seed=self.seed)
                fit(net, lambda idx, c=fit_cfg: regression_loss(net(_take(inputs, idx), rows[idx]), y[idx], c),
                    len(archs), fit_cfg, parameters=params)
        return net.eval(), scaler, rhos, weights

    def _blend_folds(self, n: int) -> list[np.ndarray]:
        """The seeded ``blend_folds``-fold split (leave-one-out below that) of ``n`` target samples."""
        return np.array_split(np.random.default_rng(self.seed).permutation(n), min(self.config.blend_folds, n))

    def _cross_validated_weight(self, samples: pd.Series) -> float:
        """Refit the net and the table on k-1 folds of ``samples``, predict the held-out fold, pick the blend."""
        folds = self._blend_folds(len(samples))
        layerwise = LayerwiseTable(self.space)
        network, table = np.zeros(len(samples)), np.zeros(len(samples))
        for fold in folds:
            train, held_out = samples.drop(index=samples.index[fold]), list(samples.index[fold])
            net, scaler, _, _ = self._finetune(train)
            network[fold] = self._net_predict(net, len(self.source_scalers), scaler, held_out)
            table[fold] = layerwise.predict_with(layerwise.fit_parameters(train), held_out)
        return choose_blend_weight(network, table, samples.to_numpy(dtype="float64"))

    # -- inference ------------------------------------------------------------------------
    @in_config_threads
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Latency in ms of each arch on a source or transferred target."""
        if target in self.tuned:
            predicted = self._net_predict(self.tuned[target], len(self.source_scalers), self.target_scalers[target], archs)
            info = self.transfer_info.get(target, {})
            weight = float(info.get("blend_weight", 0.0))
            if weight:
                predicted = blend(predicted, LayerwiseTable(self.space).predict_with(info["layerwise"], archs), weight)
            return predicted
        if target in self.source_scalers and self.base is not None:
            row = list(self.source_scalers).index(target)
            return self._net_predict(self.base, row, self.source_scalers[target], archs)
        raise UserError(f"multipredict knows no target {target!r}; known: {', '.join(self.targets()) or 'none'}")

    def _net_predict(self, net: MultiPredictNet, row: int, scaler: TargetScaler, archs: Sequence[str]) -> np.ndarray:
        inputs = self._inputs(list(archs))
        rows = torch.full((len(archs),), row)
        scaled = predict_in_chunks(lambda part: net(_take(inputs, part), rows[part]), len(archs))
        return scaler.inverse(scaled)

    def targets(self) -> list[str]:
        return [*self.source_scalers, *self.tuned]

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = prefixed_state([("base", self.base), *((f"target{i}", net) for i, net in enumerate(self.tuned.values()))])
        config = {
            "method": self.method, "space": self.space, "seed": self.seed, "hyper": asdict(self.config),
            "encoder_kind": self.encoder_kind, "in_channels": self.in_channels, "pretrained": self.base is not None,
            "sources": [{"name": n, "scaler": s.to_json()} for n, s in self.source_scalers.items()],
            "targets": [
                {"name": t, "scaler": self.target_scalers[t].to_json(), "transfer": self.transfer_info.get(t, {})}
                for t in self.tuned
            ],
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "MultiPredict":
        model = cls(config["space"], seed=config["seed"], **config["hyper"])
        model.encoder_kind, model.in_channels = config["encoder_kind"], config["in_channels"]
        model.source_scalers = {s["name"]: TargetScaler.from_json(s["scaler"]) for s in config["sources"]}

        def load(prefix: str, num_devices: int) -> MultiPredictNet:
            return load_prefixed(model._net(num_devices), tensors, prefix).eval()

        if config["pretrained"]:
            model.base = load("base", len(model.source_scalers))
        for i, entry in enumerate(config["targets"]):
            model.tuned[entry["name"]] = load(f"target{i}", len(model.source_scalers) + 1)
            model.target_scalers[entry["name"]] = TargetScaler.from_json(entry["scaler"])
            model.transfer_info[entry["name"]] = dict(entry.get("transfer", {}))
        return model
