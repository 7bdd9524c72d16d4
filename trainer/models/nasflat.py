"""NASFLAT: op-wise hardware embeddings, an op-hardware GNN and an ensemble DGF/GAT GNN.

Akhauri & Abdelfattah, "On Latency Predictors for Neural Architecture Search", MLSys 2024.

.. math::
    \\hat s(a, d) = \\mathrm{head}\\big([\\, \\overline{G_{main}(X_0, A, U)} \\,\\|\\, \\mathrm{enc}(z_a) \\,]\\big),
    \\qquad U = \\mathrm{MLP}\\big([\\, O^{(d)} \\,\\|\\, \\mathrm{MLP}(G_{op}(X_0, A, O^{(d)})_g) \\,]\\big)

* ``O^{(d)}``: each node's operation embedding joined to the op-wise hardware embedding of
  device ``d`` (:class:`~trainer.models.layers.OpHardwareEmbedding`, a [num_ops, 24] table per
  device; op embedding 24, joined 48).
* ``X_0``: node embeddings (48: one for the input node, one shared by the others) mapped to the
  hidden size 96; ``A``: the ``farm.spaces`` graph with its global node.
* ``G_op``: the op-hardware GNN, 2 ensemble layers of 128
  (:class:`~trainer.models.layers.DGFGATEnsemble`, DGF and gated GAT); its global node's state
  goes through an MLP [128, 128, 128] and, joined to ``O^{(d)}``, through the update MLP [128]
  to the updated operation embedding ``U`` (48) that gates ``G_main``.
* ``G_main``: 3 ensemble layers of 128 gated by ``U``, read out as the mean over every node
  but the input node.
* ``z_a``: supplementary encodings (zero-cost proxies; ``supplementary``, by default the log of
  FLOPs and params, exact from ``farm.spaces``; any of the 13 proxies of the ``encodings`` table
  can be added), z-scored over the pre-training archs, through an MLP [128, 128] -> 48, joined
  before the regression head [200, 200, 200] (dropout 0.1).
* Loss: pairwise hinge (margin 0.1) between archs of the same device (+ ``mse_weight`` x MSE
  on min-max scaled latency; 0 as in the paper). The score is a rank, so each device's scores
  are mapped to its latency by a least-squares affine map fitted on that device's training
  archs (the target's: its samples), which keeps the order and gives milliseconds.
* ``pretrain``: AdamW lr 1e-3, weight decay 1e-5, cosine schedule to 1e-6, 150 epochs.
* ``transfer``: the target gets a copy of the op-wise hardware table of the source whose
  predicted latencies on the target's samples correlate best (Spearman) with the samples (as
  :mod:`trainer.models.multipredict` does: no source data is shipped with the predictor);
  then the whole network is fine-tuned on the samples, 40 epochs at 3e-3 (NAS-Bench-201) or
  30 at 1e-3 (FBNet and others), AdamW with a cosine schedule. Each target keeps its copy.

Deviations from the paper and its code, with the reason:

* Batches: a pre-training step draws ``batch_size / #sources`` archs with *all* their source
  latencies (about ``batch_size`` = 128 (arch, device) pairs, the code's pre-training batch;
  the paper's table says 16). Pairs are compared only within a device: scaled latencies of
  two devices are not comparable (the code compares across devices).
* GAT score: additive (GAT's own) instead of the code's product of projected states, which
  builds a [B, N, N, 128] tensor per layer (see :mod:`trainer.models.layers.gat`).
* Hardware embeddings are op-wise tables as the paper describes; the code gives every node
  the same device vector.
* The affine score-to-latency map is ours: the paper reports rank correlation only, but the
  project's predictors return milliseconds.
* Pre-training epochs are capped by ``node_budget`` (node visits: epochs x pairs x graph nodes).
  On this 2-core CPU, shared with other jobs (load average 5-17), one epoch over ND's sources
  (9 x 900 pairs of 9-node graphs) took 11.5 s and one over an FBNet split at 4,000 archs on 5
  sources (20,000 pairs of 25-node graphs) 64 s, so the paper's 150 epochs would take 29 min
  and 2.7 h against budgets of 10 and 15 min. The default budget of 3.6M node visits gives ND
  49 epochs, FD (9 x 900 FBNet pairs) 17 and the FBNet split 7 (about 7.5 min).

Example:
    >>> NASFLAT("nasbench201").config.transfer_schedule("nasbench201")
    (40, 0.003)
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from farm.errors import UserError
from trainer import encodings
from trainer.models import arch_inputs
from trainer.models.base import Predictor, load_prefixed, prefixed_state
from trainer.models.layers import MLP, DGFGATEnsemble, OpHardwareEmbedding
from trainer.models.multipredict import rank_correlations
from trainer.models.target_scaler import ScalerKind, TargetScaler
from trainer.models.training import (
    EpochProgress,
    _epoch_hook,
    config_from_hyper,
    in_config_threads,
    pairwise_hinge,
    predict_in_chunks,
)

#: Supplementary encodings computed exactly from ``farm.spaces`` (no encodings table needed).
SPACE_ENCODINGS: dict[str, Callable[[str, Sequence[str]], np.ndarray]] = {
    "flops": encodings.flops,
    "params": encodings.params,
}


@dataclass(frozen=True)
class NASFLATConfig:
    """Hyper-parameters; defaults are the paper's and its code's unless the module docstring says otherwise."""

    op_dim: int = 24
    hw_dim: int = 24
    node_dim: int = 48
    hidden: int = 96
    op_gnn: tuple[int, ...] = (128, 128)
    op_summary: tuple[int, ...] = (128, 128, 128)
    op_update: tuple[int, ...] = (128,)
    main_gnn: tuple[int, ...] = (128, 128, 128)
    head: tuple[int, ...] = (200, 200, 200)
    head_dropout: float = 0.1
    #: Supplementary encodings joined before the head: ``flops``/``params`` (exact, from the space) or
    #: proxy names of the ``encodings`` table (``trainer.proxy_encodings``; a missing value is an
    #: error naming it, never a silent fill). Empty: none. Default flops and params, two of the 13
    #: zero-cost proxies, which need no table: on HELP's data (seed 0, 20 random samples) they took
    #: FD from 0.857 to 0.959 mean Spearman and ND from 0.957 to 0.958.
    supplementary: tuple[str, ...] = ("flops", "params")
    #: Store whose ``encodings`` table holds the proxies of ``supplementary`` (``farm encode --store``).
    encodings_store: str | None = None
    supplementary_hidden: tuple[int, ...] = (128, 128)
    supplementary_dim: int = 48
    lr: float = 1e-3
    weight_decay: float = 1e-5
    min_lr: float = 1e-6
    #: (arch, device) pairs per pre-training step (each step draws batch_size / #sources archs).
    batch_size: int = 128
    source_epochs: int = 150
    #: Caps pre-training at this many node visits (epochs x (arch, source) pairs x graph nodes):
    #: ``epochs = min(source_epochs, budget // (pairs x nodes))``, at least 1; ``None``: no cap.
    #: 3.6M gives ND (9 sources x 900 archs, 9 nodes) 49 epochs and an FBNet split at 4,000 archs
    #: per source (5 sources, 25 nodes) 7 epochs; see the module docstring for the measurement.
    node_budget: int | None = 3_600_000
    #: ``None``: 40 for nasbench201, 30 otherwise (the paper).
    target_epochs: int | None = None
    #: ``None``: 3e-3 for nasbench201, 1e-3 otherwise (the paper).
    target_lr: float | None = None
    rank_margin: float = 0.1
    #: Weight of an MSE term on min-max scaled latency next to the hinge loss (0: the paper).
    mse_weight: float = 0.0
    scaler: ScalerKind = "minmax"
    threads: int = 1
    #: Shorthand (``trainer --epochs N``): caps both pre-training and transfer epochs at N.
    epochs: int | None = None

    def pretrain_epochs(self, pairs: int, nodes: int) -> int:
        """Epochs of pre-training on ``pairs`` (arch, source) pairs of graphs of ``nodes`` nodes.

        Example:
            >>> NASFLATConfig().pretrain_epochs(9 * 900, 9), NASFLATConfig().pretrain_epochs(5 * 4000, 25)
            (49, 7)
        """
        epochs = self.source_epochs if self.epochs is None else min(self.source_epochs, self.epochs)
        if self.node_budget is not None:
            epochs = min(epochs, max(1, self.node_budget // max(1, pairs * nodes)))
        return epochs

    def transfer_schedule(self, space: str) -> tuple[int, float]:
        """(epochs, lr) of fine-tuning: the paper's 40 at 3e-3 for NAS-Bench-201, 30 at 1e-3 otherwise."""
        nb201 = space == "nasbench201"
        epochs = self.target_epochs if self.target_epochs is not None else (40 if nb201 else 30)
        lr = self.target_lr if self.target_lr is not None else (3e-3 if nb201 else 1e-3)
        return (epochs if self.epochs is None else min(epochs, self.epochs)), lr


@dataclass(frozen=True)
class GraphInputs:
    """Op types [B, N] (long), receive adjacency [B, N, N] without self loops, global node [B]."""

    ops: torch.Tensor
    adj: torch.Tensor
    readout: torch.Tensor

    def __len__(self) -> int:
        return self.ops.shape[0]

    def take(self, idx: torch.Tensor | slice) -> "GraphInputs":
        return GraphInputs(self.ops[idx], self.adj[idx], self.readout[idx])

    def repeat_each(self, times: int) -> "GraphInputs":
        """Each graph ``times`` times in a row (one copy per device of a pre-training step)."""
        return GraphInputs(self.ops.repeat_interleave(times, 0), self.adj.repeat_interleave(times, 0),
                           self.readout.repeat_interleave(times, 0))


def graph_inputs(space: str, archs: Sequence[str]) -> GraphInputs:
    """NASFLAT's inputs from :func:`trainer.models.arch_inputs.graph_batch` (which caches per arch).

    Example:
        >>> g = graph_inputs("nasbench201", ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
        >>> tuple(g.ops.shape), float(g.adj[0].diagonal().sum()), g.readout.tolist()
        ((1, 9), 0.0, [8])
    """
    batch = arch_inputs.graph_batch(space, archs, arch_inputs.num_node_types(space))
    eye = torch.eye(batch.adj.shape[-1])
    return GraphInputs(batch.x.argmax(-1), (batch.adj - eye).clamp(min=0.0), batch.readout)


class NASFLATNet(nn.Module):
    """Op-hardware GNN -> updated op embeddings -> main ensemble GNN -> mean readout (+ encodings) -> head.

    Example:
        >>> cfg = NASFLATConfig(op_gnn=(8,), op_summary=(8,), op_update=(8,), main_gnn=(8,), head=(8,))
        >>> net = NASFLATNet(num_ops=8, num_devices=2, supplementary=0, cfg=cfg)
        >>> g = graph_inputs("nasbench201", ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 3)
        >>> net(g, torch.tensor([0, 1, 1])).shape
        torch.Size([3])
    """

    def __init__(self, num_ops: int, num_devices: int, supplementary: int, cfg: NASFLATConfig) -> None:
        super().__init__()
        joined = cfg.op_dim + cfg.hw_dim
        self.op_embedding = nn.Embedding(num_ops, cfg.op_dim)
        self.hardware = OpHardwareEmbedding(num_devices, num_ops, cfg.hw_dim)
        self.node_embedding = nn.Embedding(2, cfg.node_dim)  # 0: the input node, 1: every other node
        self.node_hidden = nn.Linear(cfg.node_dim, cfg.hidden)
        self.op_gnn = _stack(cfg.hidden, cfg.op_gnn, joined)
        self.op_summary = MLP(cfg.op_gnn[-1], cfg.op_summary[:-1], cfg.op_summary[-1])
        self.op_update = MLP(joined + cfg.op_summary[-1], cfg.op_update, joined)
        self.main_gnn = _stack(cfg.hidden, cfg.main_gnn, joined)
        self.encoder = (
            MLP(supplementary, cfg.supplementary_hidden, cfg.supplementary_dim, dropout=cfg.head_dropout)
            if supplementary else None
        )
        head_in = cfg.main_gnn[-1] + (cfg.supplementary_dim if supplementary else 0)
        self.head = MLP(head_in, cfg.head, 1, dropout=cfg.head_dropout)

    def node_states(self, num_nodes: int) -> torch.Tensor:
        """[N, hidden]: X_0, the same for every arch (the input node first)."""
        kinds = torch.ones(num_nodes, dtype=torch.long)
        kinds[0] = 0
        return self.node_hidden(self.node_embedding(kinds))

    def forward(self, graphs: GraphInputs, device: torch.Tensor, supplementary: torch.Tensor | None = None) -> torch.Tensor:
        ops = torch.cat([self.op_embedding(graphs.ops), self.hardware(device, graphs.ops)], dim=-1)
        # X_0 is the same for every graph: a batch of one broadcasts, so the first layer of each GNN
        # projects N rows instead of B x N.
        x0 = self.node_states(graphs.ops.shape[1]).unsqueeze(0)
        states = _run(self.op_gnn, x0, graphs.adj, ops)
        summary = self.op_summary(states[torch.arange(len(graphs)), graphs.readout])
        updated = self.op_update(torch.cat([ops, summary.unsqueeze(1).expand(-1, ops.shape[1], -1)], dim=-1))
        pooled = _run(self.main_gnn, x0, graphs.adj, updated)[:, 1:].mean(1)
        if self.encoder is not None:
            if supplementary is None:
                raise ValueError("this NASFLAT network was built with supplementary encodings; pass them")
            pooled = torch.cat([pooled, self.encoder(supplementary)], dim=-1)
        return self.head(pooled).squeeze(-1)


def _stack(in_channels: int, sizes: Sequence[int], op_channels: int) -> nn.ModuleList:
    dims = [in_channels, *sizes]
    return nn.ModuleList(DGFGATEnsemble(a, b, op_channels) for a, b in zip(dims[:-1], dims[1:]))


def _run(layers: nn.ModuleList, x: torch.Tensor, adj: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
    for i, layer in enumerate(layers):
        x = layer(x, adj, ops)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


@dataclass(frozen=True)
class Calibration:
    """Affine map of a device's scores to its scaled latency, fitted by least squares (slope > 0).

    Example:
        >>> c = Calibration.fit(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]))
        >>> c.slope, c.intercept
        (2.0, 1.0)
    """

    slope: float
    intercept: float

    @classmethod
    def fit(cls, scores: np.ndarray, scaled: np.ndarray) -> "Calibration":
        spread = float(np.var(scores))
        slope = float(np.cov(scores, scaled, bias=True)[0, 1] / spread) if spread > 1e-12 else 0.0
        # A non-increasing fit would reverse the predictor's order; keep the order, match the spread.
        if slope <= 0.0:
            slope = float(np.std(scaled) / math.sqrt(spread)) if spread > 1e-12 else 1.0
        return cls(slope, float(np.mean(scaled) - slope * np.mean(scores)))

    def apply(self, scores: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(scores, dtype="float64") + self.intercept


class NASFLAT(Predictor):
    """NASFLAT few-shot latency predictor (``--method nasflat``)."""

    method: ClassVar[str] = "nasflat"
    uses_sources: ClassVar[bool] = True
    min_target_samples: ClassVar[int] = 3

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        super().__init__(space, seed, **hyper)
        self.config  # noqa: B018 - an unknown hyper-parameter is a UserError now, not at pretrain
        self.base: NASFLATNet | None = None
        self.source_scalers: dict[str, TargetScaler] = {}
        self.calibrations: dict[str, Calibration] = {}
        self.tuned: dict[str, NASFLATNet] = {}
        self.target_scalers: dict[str, TargetScaler] = {}
        self.transfer_info: dict[str, dict[str, Any]] = {}
        #: (mean, std) of each supplementary encoding over the pre-training archs.
        self.supplementary_stats: list[tuple[float, float]] = []

    @property
    def config(self) -> NASFLATConfig:
        return config_from_hyper(NASFLATConfig, self.hyper, self.method)

    @property
    def scalers(self) -> dict[str, TargetScaler]:
        """Per-target latency scaling of every source and transferred target."""
        return {**self.source_scalers, **self.target_scalers}

    # -- inputs ---------------------------------------------------------------------------
    def _net(self, num_devices: int) -> NASFLATNet:
        return NASFLATNet(arch_inputs.num_node_types(self.space), num_devices, len(self.config.supplementary), self.config)

    def _raw_supplementary(self, archs: Sequence[str]) -> np.ndarray:
        """[n, E] supplementary encodings (log of flops/params); a missing proxy value is a UserError."""
        names = self.config.supplementary
        columns = []
        table_names = [n for n in names if n not in SPACE_ENCODINGS]
        table = _proxy_table(self.space, archs, table_names, self.config.encodings_store) if table_names else None
        for name in names:
            values = (np.log1p(np.maximum(SPACE_ENCODINGS[name](self.space, archs), 0.0)) if name in SPACE_ENCODINGS
                      else table[:, table_names.index(name)])  # type: ignore[index]
            bad = ~np.isfinite(values)
            if bad.any():
                raise UserError(
                    f"nasflat: supplementary encoding {name!r} is missing or not finite for {int(bad.sum())} arch(s) "
                    f"(e.g. {archs[int(np.argmax(bad))]}); compute it with `farm encode` or drop {name!r} "
                    f"from supplementary (flops and params need no table)"
                )
            columns.append(values.astype("float64"))
        return np.stack(columns, axis=1) if columns else np.zeros((len(archs), 0))

    def _supplementary(self, archs: Sequence[str]) -> torch.Tensor | None:
        if not self.config.supplementary:
            return None
        raw = self._raw_supplementary(archs)
        mean = np.array([m for m, _ in self.supplementary_stats])
        std = np.array([s for _, s in self.supplementary_stats])
        return torch.tensor((raw - mean) / std, dtype=torch.float32)

    # -- training -------------------------------------------------------------------------
    @in_config_threads
    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:
        """Learn from every (arch, source) pair of ``sources`` (name -> arch -> ms)."""
        if len(sources) < 1:
            raise UserError("nasflat needs at least one source target to pre-train on")
        cfg = self.config
        names = list(sources)
        for name in names:
            _check_latencies(name, sources[name])
        self.source_scalers = {n: TargetScaler.fit(sources[n].to_numpy(), cfg.scaler) for n in names}
        archs = list(dict.fromkeys(a for n in names for a in sources[n].index))
        frame = pd.DataFrame({n: pd.Series(self.source_scalers[n].transform(sources[n].to_numpy()), sources[n].index) for n in names})
        y = torch.tensor(frame.reindex(archs).to_numpy(), dtype=torch.float32)
        measured = ~torch.isnan(y)
        graphs = graph_inputs(self.space, archs)
        if cfg.supplementary:
            raw = self._raw_supplementary(archs)
            self.supplementary_stats = [(float(c.mean()), float(c.std()) or 1.0) for c in raw.T]
        supplementary = self._supplementary(archs)
        archs_per_step = max(1, round(cfg.batch_size / len(names)))
        all_devices = torch.arange(len(names))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = self._net(len(names))

            def batch_loss(idx: torch.Tensor) -> torch.Tensor:
                devices = all_devices.repeat(len(idx))
                supp = supplementary[idx].repeat_interleave(len(names), 0) if supplementary is not None else None
                scores = net(graphs.take(idx).repeat_each(len(names)), devices, supp)
                mask = measured[idx].reshape(-1)
                return self._loss(scores[mask], y[idx].reshape(-1)[mask], devices[mask])

            epochs = cfg.pretrain_epochs(int(measured.sum()), graphs.ops.shape[1])
            _train(net, batch_loss, len(archs), archs_per_step, epochs, cfg.lr, cfg, self.seed, "nasflat pretrain")
        self.base = net.eval()
        scores = self._scores(net, archs, torch.arange(len(names)))
        self.calibrations = {
            n: Calibration.fit(scores[d][measured[:, d].numpy()], y[:, d][measured[:, d]].double().numpy())
            for d, n in enumerate(names)
        }
        self.tuned, self.target_scalers, self.transfer_info = {}, {}, {}

    def _loss(self, scores: torch.Tensor, scaled: torch.Tensor, groups: torch.Tensor | None) -> torch.Tensor:
        cfg = self.config
        loss = pairwise_hinge(scores, scaled, cfg.rank_margin, groups)
        if cfg.mse_weight > 0:
            loss = loss + cfg.mse_weight * nn.functional.mse_loss(scores, scaled)
        return loss

    def _scores(self, net: NASFLATNet, archs: Sequence[str], devices: torch.Tensor) -> np.ndarray:
        """[len(devices), n] scores of ``net`` (eval mode, no gradients) for each device row."""
        graphs = graph_inputs(self.space, archs)
        supplementary = self._supplementary(archs)
        rows = []
        for device in devices.tolist():
            index = torch.full((len(archs),), device)
            rows.append(predict_in_chunks(
                lambda part: net(graphs.take(part), index[part], None if supplementary is None else supplementary[part]),
                len(archs)))
        return np.stack(rows)

    @in_config_threads
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Add ``target``: copy the best-correlated source's op-wise table, then fine-tune a copy on ``samples``."""
        if self.base is None:
            raise UserError("nasflat is not pre-trained; run pretrain (trainer pretrain --method nasflat) first")
        if len(samples) < self.min_target_samples:
            raise UserError(f"nasflat needs at least {self.min_target_samples} samples of {target!r}, got {len(samples)}")
        _check_latencies(target, samples)
        cfg = self.config
        archs = list(samples.index)
        names = list(self.source_scalers)
        rhos = rank_correlations(self._scores(self.base, archs, torch.arange(len(names))), samples.to_numpy())
        best = int(np.argmax(rhos))
        scaler = TargetScaler.fit(samples.to_numpy(), cfg.scaler)
        y = torch.tensor(scaler.transform(samples.to_numpy()), dtype=torch.float32)
        graphs = graph_inputs(self.space, archs)
        supplementary = self._supplementary(archs)
        net = copy.deepcopy(self.base)
        row = net.hardware.add_copy(best)
        rows = torch.full((len(archs),), row)
        epochs, lr = cfg.transfer_schedule(self.space)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            _train(net, lambda idx: self._loss(
                net(graphs.take(idx), rows[idx], None if supplementary is None else supplementary[idx]), y[idx], None),
                len(archs), len(archs), epochs, lr, cfg, self.seed, None)
        net.eval()
        scores = self._scores(net, archs, torch.tensor([row]))[0]
        self.tuned[target], self.target_scalers[target] = net, scaler
        self.calibrations[target] = Calibration.fit(scores, y.double().numpy())
        self.transfer_info[target] = {
            "samples": len(samples), "init_source": names[best],
            "source_spearman": dict(zip(names, rhos.round(4).tolist())), "epochs": epochs, "lr": lr,
        }

    # -- inference ------------------------------------------------------------------------
    @in_config_threads
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Latency in ms of each arch on a source or transferred target."""
        if target in self.tuned:
            net, row, scaler = self.tuned[target], len(self.source_scalers), self.target_scalers[target]
        elif target in self.source_scalers and self.base is not None:
            net, row, scaler = self.base, list(self.source_scalers).index(target), self.source_scalers[target]
        else:
            raise UserError(f"nasflat knows no target {target!r}; known: {', '.join(self.targets()) or 'none'}")
        scores = self._scores(net, list(archs), torch.tensor([row]))[0]
        return scaler.inverse(self.calibrations[target].apply(scores))

    def targets(self) -> list[str]:
        return [*self.source_scalers, *self.tuned]

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = prefixed_state([("base", self.base), *((f"target{i}", net) for i, net in enumerate(self.tuned.values()))])
        config = {
            "method": self.method, "space": self.space, "seed": self.seed, "hyper": asdict(self.config),
            "pretrained": self.base is not None,
            "supplementary_stats": [list(s) for s in self.supplementary_stats],
            "sources": [{"name": n, "scaler": s.to_json(), "calibration": asdict(self.calibrations[n])}
                        for n, s in self.source_scalers.items()],
            "targets": [
                {"name": t, "scaler": self.target_scalers[t].to_json(), "calibration": asdict(self.calibrations[t]),
                 "transfer": self.transfer_info.get(t, {})}
                for t in self.tuned
            ],
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "NASFLAT":
        model = cls(config["space"], seed=config["seed"], **config["hyper"])
        model.supplementary_stats = [(float(m), float(s)) for m, s in config.get("supplementary_stats", [])]
        for entry in config["sources"]:
            model.source_scalers[entry["name"]] = TargetScaler.from_json(entry["scaler"])
            model.calibrations[entry["name"]] = Calibration(**entry["calibration"])

        def load(prefix: str, num_devices: int) -> NASFLATNet:
            return load_prefixed(model._net(num_devices), tensors, prefix).eval()

        if config["pretrained"]:
            model.base = load("base", len(model.source_scalers))
        for i, entry in enumerate(config["targets"]):
            model.tuned[entry["name"]] = load(f"target{i}", len(model.source_scalers) + 1)
            model.target_scalers[entry["name"]] = TargetScaler.from_json(entry["scaler"])
            model.calibrations[entry["name"]] = Calibration(**entry["calibration"])
            model.transfer_info[entry["name"]] = dict(entry.get("transfer", {}))
        return model


def _train(net: nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], num_examples: int, batch_size: int,
           epochs: int, lr: float, cfg: NASFLATConfig, seed: int, desc: str | None) -> None:
    """AdamW with a per-epoch cosine schedule from ``lr`` to ``cfg.min_lr`` (NASFLAT's optimiser)."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=cfg.min_lr)
    generator = torch.Generator().manual_seed(seed)
    hook = _epoch_hook.get() if desc is not None else None
    loss_sum = float("nan")
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(num_examples, generator=generator)
        loss_sum = 0.0
        for start in range(0, num_examples, batch_size):
            idx = order[start : start + batch_size]
            loss = batch_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
        schedule.step()
        if hook is not None:
            hook(EpochProgress(desc, epoch, epochs, loss_sum / num_examples))
    if hook is not None:
        hook(EpochProgress(desc, epochs, epochs, loss_sum / max(1, num_examples), finished=True))
    net.eval()


def _check_latencies(name: str, latencies: pd.Series) -> None:
    values = latencies.to_numpy(dtype="float64")
    bad = int((~np.isfinite(values) | (values <= 0)).sum()) if values.size else 0
    if values.size == 0 or bad:
        raise UserError(f"nasflat: latencies of {name!r} must be finite and positive ms; "
                        f"{bad} of {values.size} are not (drop those rows or re-measure)")


def _proxy_table(space: str, archs: Sequence[str], proxies: Sequence[str], store: str | None) -> np.ndarray:
    """[n, len(proxies)] values of ``store``'s encodings table (``trainer.proxy_encodings``).

    A missing pair is a :class:`~farm.errors.UserError` naming it: never a silent zero.
    """
    if store is None:
        raise UserError(
            f"nasflat: supplementary encodings {', '.join(proxies)} are read from a store's encodings table; "
            f"set encodings_store (the --store that `farm encode` wrote), or use only flops/params"
        )
    try:
        from trainer import proxy_encodings
    except ModuleNotFoundError:
        raise UserError("nasflat: trainer.proxy_encodings is not installed; use only flops/params") from None
    try:
        return proxy_encodings.load(store, space, list(archs), list(proxies))
    except proxy_encodings.MissingEncodings as error:
        raise UserError(f"nasflat: {error}") from None
