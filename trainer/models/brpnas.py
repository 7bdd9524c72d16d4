"""BRP-NAS latency predictor: a GCN trained from scratch on one device.

Dudziak, Chau, Abdelfattah, Lee, Kim, Lane: "BRP-NAS: Prediction-based NAS
using GCNs", NeurIPS 2020. The arch graph (``farm.spaces`` ``graph()``: nodes
are operations, plus a global node connected to all nodes, self loops added)
goes through 4 GCN layers of 600 units,

.. math::
    H^{(l+1)} = \\mathrm{ReLU}(A H^{(l)} W^{(l)}), \\qquad \\hat y = w^\\top H^{(4)}_{global} + b

with the directed adjacency left unnormalised. Training follows the paper:
AdamW (lr 8e-4, weight decay 5e-4), batch 10, dropout 0.002, the learning
rate halved after 10 epochs without improvement, at most 250 epochs and early
stopping with patience 35.

Early-stopping signal (the paper's choice with 900 training archs is a
validation split): when a target brings at least ``min_val_samples`` samples,
``val_fraction`` of them are held out (deterministic in ``seed``) and the
monitored loss is the validation MSE. With fewer samples, e.g. the 20 of a
few-shot transfer, holding out 2-4 archs would make the stopping point noise,
so all samples train and the monitored loss is the epoch's training loss.

Deviation: detached nodes keep their op features (``zero_detached=False``);
BRP-NAS zeroes them, which on measured NAS-Bench-201 latencies merges cells
whose dangling convolutions still run (see ``trainer.models.arch_inputs``).

Latency is z-scored per target on the training samples only (``scaler``).
BRP-NAS learns from the target alone: ``pretrain`` ignores sources, and
``transfer`` trains a fresh network per target.

Example:
    >>> BRPNAS("nasbench201", epochs=5).config.hidden
    600
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from farm.errors import UserError
from trainer.models import arch_inputs
from trainer.models.base import Predictor
from trainer.models.layers import GraphEncoder
from trainer.models.target_scaler import ScalerKind, TargetScaler
from trainer.models.training import (
    FitConfig,
    config_from_hyper,
    fit,
    in_config_threads,
    predict_in_chunks,
    regression_loss,
)


@dataclass(frozen=True)
class BRPNASConfig:
    """Hyper-parameters; defaults are the paper's."""

    hidden: int = 600
    layers: int = 4
    dropout: float = 0.002
    lr: float = 8e-4
    weight_decay: float = 5e-4
    batch_size: int = 10
    epochs: int = 250
    patience: int = 35
    lr_patience: int = 10
    lr_factor: float = 0.5
    val_fraction: float = 0.1
    min_val_samples: int = 100
    scaler: ScalerKind = "zscore"
    rank_weight: float = 0.0
    #: BRP-NAS zeroes the features of detached nodes; that hides dangling ops that still run
    #: (see ``trainer.models.arch_inputs``), so by default they keep their op features.
    zero_detached: bool = False
    #: Intra-op threads while training and predicting (small tensors: 1 is fastest).
    threads: int = 1


class BRPNASNet(nn.Module):
    """GCN encoder read out at the global node, then one linear layer to a scalar."""

    def __init__(self, num_node_types: int, cfg: BRPNASConfig) -> None:
        super().__init__()
        self.encoder = GraphEncoder(num_node_types, [cfg.hidden] * cfg.layers, dropout=cfg.dropout)
        self.fc = nn.Linear(cfg.hidden, 1)

    def forward(self, graphs: arch_inputs.GraphBatch) -> torch.Tensor:
        return self.fc(self.encoder(graphs.x, graphs.adj, graphs.readout)).squeeze(-1)


class BRPNAS(Predictor):
    """One BRP-NAS GCN per target, trained on that target's samples."""

    method: ClassVar[str] = "brpnas"
    uses_sources: ClassVar[bool] = False
    min_target_samples: ClassVar[int] = 3

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        super().__init__(space, seed, **hyper)
        _ = self.config  # validate the hyper-parameters now
        self.num_node_types: int | None = None
        self.nets: dict[str, BRPNASNet] = {}
        self.scalers: dict[str, TargetScaler] = {}
        self.fit_results: dict[str, dict[str, Any]] = {}

    @property
    def config(self) -> BRPNASConfig:
        """The hyper-parameters in ``self.hyper`` (the CLI may update them before ``transfer``)."""
        return config_from_hyper(BRPNASConfig, self.hyper, self.method)

    def _new_net(self) -> BRPNASNet:
        if self.num_node_types is None:
            self.num_node_types = arch_inputs.num_node_types(self.space)
        return BRPNASNet(self.num_node_types, self.config)

    @in_config_threads
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Train a fresh GCN on ``samples`` (arch -> ms) of ``target``."""
        if len(samples) < self.min_target_samples:
            raise UserError(f"brpnas needs at least {self.min_target_samples} samples of {target!r}, got {len(samples)}")
        cfg = self.config
        scaler = TargetScaler.fit(samples.to_numpy(), cfg.scaler)
        y = torch.tensor(scaler.transform(samples.to_numpy()), dtype=torch.float32)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = self._new_net()
            graphs = arch_inputs.graph_batch(self.space, list(samples.index), self.num_node_types, cfg.zero_detached)
            order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(self.seed))
            n_val = int(round(cfg.val_fraction * len(samples))) if len(samples) >= cfg.min_val_samples else 0
            val, train = order[:n_val], order[n_val:]
            fit_cfg = FitConfig(
                lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, epochs=cfg.epochs,
                patience=cfg.patience, lr_patience=cfg.lr_patience, lr_factor=cfg.lr_factor,
                rank_weight=cfg.rank_weight, seed=self.seed,
            )
            train_graphs, train_y = graphs.index(train), y[train]

            def batch_loss(idx: torch.Tensor) -> torch.Tensor:
                return regression_loss(net(train_graphs.index(idx)), train_y[idx], fit_cfg)

            def validation_loss() -> float:
                with torch.no_grad():
                    return float(nn.functional.mse_loss(net(graphs.index(val)), y[val]))

            result = fit(
                net, batch_loss, len(train), fit_cfg,
                validation_loss=validation_loss if n_val else None, desc=f"brpnas {target}",
            )
        self.nets[target], self.scalers[target] = net, scaler
        self.fit_results[target] = {"epochs": result.epochs, "best_loss": result.best_loss, "n_train": len(train), "n_val": n_val}

    @in_config_threads
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Latency in ms of each arch on a target this predictor was trained for."""
        if target not in self.nets:
            raise UserError(f"brpnas has no model for target {target!r}; trained: {', '.join(self.nets) or 'none'}")
        net = self.nets[target].eval()
        graphs = arch_inputs.graph_batch(self.space, list(archs), self.num_node_types, self.config.zero_detached)
        scaled = predict_in_chunks(lambda part: net(graphs.index(part)), len(archs))
        return self.scalers[target].inverse(scaled)

    def targets(self) -> list[str]:
        return list(self.nets)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {
            f"target{i}.{key}": value.detach().clone()
            for i, net in enumerate(self.nets.values())
            for key, value in net.state_dict().items()
        }
        config = {
            "method": self.method, "space": self.space, "seed": self.seed, "hyper": asdict(self.config),
            "num_node_types": self.num_node_types,
            "targets": [{"name": t, "scaler": self.scalers[t].to_json(), "fit": self.fit_results.get(t, {})} for t in self.nets],
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "BRPNAS":
        model = cls(config["space"], seed=config["seed"], **config["hyper"])
        model.num_node_types = config["num_node_types"]
        for i, entry in enumerate(config["targets"]):
            prefix = f"target{i}."
            net = model._new_net()
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            model.nets[entry["name"]] = net.eval()
            model.scalers[entry["name"]] = TargetScaler.from_json(entry["scaler"])
            model.fit_results[entry["name"]] = dict(entry.get("fit", {}))
        return model

