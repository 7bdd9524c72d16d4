"""HELP: a latency predictor meta-learned across devices, adapted to a new one in a few steps.

Lee, Lee, Chong, Hwang, "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021.

.. math::
    \\hat y(a, d) = f\\big([\\,\\mathrm{enc}(a) \\,\\|\\, \\mathrm{dev}(h_d)\\,];\\ \\theta_d\\big), \\qquad
    \\theta_d = \\mathrm{adapt}^{K}\\big(\\theta \\circ z_d,\\ S_d\\big), \\quad z_d \\sim q(z \\mid h_d)

* ``h_d``, the hardware embedding: the device's latencies on 10 fixed reference archs
  (:mod:`trainer.models.help_references`), min-max scaled among themselves.
* ``enc``: a 4-layer GCN of 100 units read out at the global node (NAS-Bench-201), or 2 MLP
  layers of 100 over the one-hot encoding (FBNet, OFA); ``dev``: 2 MLP layers of 100.
* ``f``, the header: 3 linear layers (200, 200, 1). The inference network
  (:class:`~trainer.models.layers.help_inference.HardwareInference`) maps ``h_d`` to a Gaussian
  over ``z``, which scales the header's weight columns and shifts its biases.
* ``adapt``: K = 2 gradient steps on the device's support set ``S_d`` (the reference archs and
  its few samples), with a learned step size per parameter (Meta-SGD, HELP's default).
* Meta-training: episodes of 8 source tasks; each adapts on its support set and is scored on a
  query set; Adam on the mean query MSE plus 0.1 x KL, 2,000 episodes at 1e-4 for NAS-Bench-201,
  4,000 at 1e-3 for FBNet/OFA; second-order gradients.
* Prediction: the mean over 10 draws of ``z``, each adapted on the support set.

The reference archs count against a target's sample budget: 20 measurements are the 10
reference archs plus 10 samples (``trainer sample --predictor`` of a HELP predictor names
the reference archs first).

Deviations from HELP's code, each for a measured or stated reason:

* Latencies of a task are min-max scaled over its *support set* (HELP's code scales a
  meta-test device over its whole trimmed pool, which uses latencies of archs that were
  never sampled); meta-training scales each task the same way so that training matches use.
* The support set of a meta-training task is the reference archs plus 10 random archs, as
  at transfer time (HELP's code draws 10 random archs); the query set is up to
  ``query_samples`` (default 200, HELP's code up to 1,000) archs of the trimmed pool.
* The GCN reads the project's op graph with a global node (``trainer.models.arch_inputs``),
  not HELP's 8-feature cell graph.

Example:
    >>> HELP("fbnet").encoder_kind, HELP("nasbench201").config.episodes_for("nasbench201")
    ('mlp', 2000)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Mapping, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from farm.errors import UserError
from trainer.models import arch_inputs
from trainer.models.base import Predictor, load_prefixed, prefixed_state
from trainer.models.help_references import reference_archs
from trainer.models.layers import MLP, GraphEncoder
from trainer.models.layers.help_inference import HardwareInference, Modulation
from trainer.models.target_scaler import TargetScaler
from trainer.models.training import EpochProgress, _epoch_hook, config_from_hyper, in_config_threads

ArchInputs = Union[arch_inputs.GraphBatch, torch.Tensor]
Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class HELPConfig:
    """Hyper-parameters; defaults are HELP's code (``parser.py``) unless the module docstring says otherwise."""

    hidden: int = 100
    gcn_layers: int = 4
    mlp_layers: int = 2
    meta_batch: int = 8
    inner_steps: int = 2
    #: ``None``: 2,000 episodes for nasbench201, 4,000 otherwise (the paper).
    episodes: int | None = None
    #: ``None``: 1e-4 for nasbench201, 1e-3 otherwise (the paper).
    meta_lr: float | None = None
    inner_lr: float = 1e-3
    #: Learn a step size per parameter (Meta-SGD); False: plain MAML with ``inner_lr``.
    meta_sgd: bool = True
    second_order: bool = True
    support_samples: int = 10
    query_samples: int = 200
    #: Keep the pool of a source between these latency quantiles (HELP: 10th-90th percentile).
    trim: tuple[float, float] = (0.1, 0.9)
    modulate: bool = True
    z_scaling: float = 0.01
    kl_scaling: float = 0.1
    mc_samples: int = 10
    threads: int = 1
    #: Shorthand (``trainer --epochs N``): caps the episodes at N.
    epochs: int | None = None

    def episodes_for(self, space: str) -> int:
        planned = self.episodes if self.episodes is not None else (2000 if space == "nasbench201" else 4000)
        return planned if self.epochs is None else min(planned, self.epochs)

    def meta_lr_for(self, space: str) -> float:
        return self.meta_lr if self.meta_lr is not None else (1e-4 if space == "nasbench201" else 1e-3)


class HELPNet(nn.Module):
    """Architecture encoder, device encoder and the 3-layer header over their concatenation.

    Example:
        >>> net = HELPNet("mlp", 6, 10, HELPConfig(hidden=8))
        >>> net(torch.ones(3, 6), torch.rand(10)).shape
        torch.Size([3])
    """

    def __init__(self, encoder_kind: str, in_channels: int, embedding_dim: int, cfg: HELPConfig) -> None:
        super().__init__()
        width = cfg.hidden
        self.encoder_kind = encoder_kind
        self.encoder: nn.Module = (
            GraphEncoder(in_channels, [width] * cfg.gcn_layers) if encoder_kind == "gcn"
            else MLP(in_channels, [width] * cfg.mlp_layers)
        )
        self.device_encoder = MLP(embedding_dim, [width, width])
        self.header = nn.ModuleList([nn.Linear(2 * width, 2 * width), nn.Linear(2 * width, 2 * width), nn.Linear(2 * width, 1)])

    def header_inputs(self) -> list[int]:
        return [layer.in_features for layer in self.header]

    def forward(self, inputs: ArchInputs, embedding: torch.Tensor) -> torch.Tensor:
        if isinstance(inputs, arch_inputs.GraphBatch):
            encoded = self.encoder(inputs.x, inputs.adj, inputs.readout)
        else:
            encoded = self.encoder(inputs)
        device = self.device_encoder(embedding.reshape(1, -1)).expand(encoded.shape[0], -1)
        out = torch.cat([encoded, device], dim=-1)
        for layer in self.header[:-1]:
            out = torch.relu(layer(out))
        return self.header[-1](out).squeeze(-1)


def hardware_embedding(reference_ms: np.ndarray) -> torch.Tensor:
    """The 10 reference latencies min-max scaled to [0, 1] (HELP's hardware embedding).

    Example:
        >>> hardware_embedding(np.array([2.0, 4.0, 3.0])).tolist()
        [0.0, 1.0, 0.5]
    """
    return torch.tensor(TargetScaler.fit(reference_ms, "minmax").transform(reference_ms), dtype=torch.float32)


class HELP(Predictor):
    """HELP's meta-learned predictor, adapted per target from its reference archs and samples."""

    method: ClassVar[str] = "help"
    uses_sources: ClassVar[bool] = True
    min_target_samples: ClassVar[int] = 11

    def __init__(self, space: str, seed: int = 0, **hyper: Any) -> None:
        super().__init__(space, seed, **hyper)
        self.encoder_kind = "gcn" if space == "nasbench201" else "mlp"
        self.references = reference_archs(space)
        self.in_channels: int | None = None
        self.net: HELPNet | None = None
        self.inference: HardwareInference | None = None
        self.step_sizes: nn.ParameterDict | None = None
        self.sources: list[str] = []
        #: Target -> its support set (arch -> ms, reference archs first), from which predict adapts.
        self.supports: dict[str, pd.Series] = {}
        self._adapted: dict[str, list[tuple[Params, torch.Tensor]]] = {}

    @classmethod
    def required_archs(cls, space: str) -> tuple[str, ...]:
        """Archs every source and target must have measured: the reference archs."""
        return reference_archs(space)

    @property
    def config(self) -> HELPConfig:
        return config_from_hyper(HELPConfig, self.hyper, self.method)

    # -- inputs -------------------------------------------------------------------------------
    def _inputs(self, archs: Sequence[str]) -> ArchInputs:
        if self.encoder_kind == "gcn":
            if self.in_channels is None:
                self.in_channels = arch_inputs.num_node_types(self.space)
            return arch_inputs.graph_batch(self.space, archs, self.in_channels, False)
        onehot = arch_inputs.onehot_batch(self.space, archs)
        self.in_channels = onehot.shape[1] if self.in_channels is None else self.in_channels
        return onehot

    def _build(self) -> None:
        assert self.in_channels is not None
        cfg = self.config
        self.net = HELPNet(self.encoder_kind, self.in_channels, len(self.references), cfg)
        self.inference = HardwareInference(len(self.references), self.net.header_inputs())
        self.step_sizes = nn.ParameterDict({
            _key(name): nn.Parameter(torch.full_like(p, cfg.inner_lr), requires_grad=cfg.meta_sgd)
            for name, p in self.net.named_parameters()
        })

    def _reference_latencies(self, name: str, latencies: pd.Series) -> np.ndarray:
        missing = [a for a in self.references if a not in latencies.index]
        if missing:
            raise UserError(
                f"help: {name!r} lacks {len(missing)} of the {len(self.references)} reference archs (e.g. {missing[0]}); "
                f"HELP describes a device by its latencies on them: measure them (`trainer sample` names them first)"
            )
        return latencies.loc[list(self.references)].to_numpy(dtype="float64")

    # -- the inner loop -----------------------------------------------------------------------
    def _initial(self, embedding: torch.Tensor, *, sample: bool) -> tuple[Params, torch.Tensor]:
        """θ ∘ z: the network's parameters with the header modulated by a draw of ``z`` (and its KL)."""
        assert self.net is not None and self.inference is not None
        params: Params = dict(self.net.named_parameters())
        cfg = self.config
        if not cfg.modulate:
            return params, embedding.new_zeros(())
        z, kl = self.inference(embedding, sample=sample)
        _modulate(params, z, cfg.z_scaling)
        return params, kl

    def _adapt(self, params: Params, inputs: ArchInputs, y: torch.Tensor, embedding: torch.Tensor,
               *, create_graph: bool) -> Params:
        assert self.net is not None and self.step_sizes is not None
        for _ in range(self.config.inner_steps):
            loss = nn.functional.mse_loss(functional_call(self.net, params, (inputs, embedding)), y)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
            params = {name: value - self.step_sizes[_key(name)] * grad
                      for (name, value), grad in zip(params.items(), grads)}
        return params

    # -- meta-training ------------------------------------------------------------------------
    @in_config_threads
    def pretrain(self, sources: Mapping[str, pd.Series]) -> None:
        """Meta-train on ``sources`` (name -> arch -> ms); each must include the reference archs."""
        if not sources:
            raise UserError("help needs at least one source target to meta-train on")
        cfg = self.config
        names = list(sources)
        embeddings = {n: hardware_embedding(self._reference_latencies(n, sources[n])) for n in names}
        pools = {n: _trimmed_pool(sources[n].drop(index=list(self.references)), cfg.trim) for n in names}
        small = [n for n in names if len(pools[n]) <= cfg.support_samples]
        if small:
            raise UserError(f"help: source {small[0]!r} has {len(pools[small[0]])} archs besides the reference archs "
                            f"after trimming; it needs more than {cfg.support_samples}")
        archs = list(dict.fromkeys([*self.references, *(a for n in names for a in pools[n].index)]))
        position = {a: i for i, a in enumerate(archs)}
        inputs = self._inputs(archs)
        rng = np.random.default_rng(self.seed)
        episodes = cfg.episodes_for(self.space)
        hook = _epoch_hook.get()
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self._build()
            assert self.net is not None and self.inference is not None and self.step_sizes is not None
            optimizer = torch.optim.Adam(
                [*self.net.parameters(), *self.inference.parameters(),
                 *(p for p in self.step_sizes.parameters() if p.requires_grad)],
                lr=cfg.meta_lr_for(self.space),
            )
            report_every = max(1, episodes // 20)
            running = 0.0
            for episode in range(1, episodes + 1):
                tasks = rng.choice(len(names), size=cfg.meta_batch, replace=len(names) < cfg.meta_batch)
                meta_loss = torch.zeros(())
                for task in tasks:
                    name = names[int(task)]
                    meta_loss = meta_loss + self._task_loss(name, sources[name], pools[name], embeddings[name],
                                                            inputs, position, rng) / len(tasks)
                optimizer.zero_grad(set_to_none=True)
                meta_loss.backward()
                optimizer.step()
                running += float(meta_loss.detach())
                if hook is not None and (episode % report_every == 0 or episode == episodes):
                    hook(EpochProgress("help meta-train", episode, episodes, running / report_every))
                    running = 0.0
            if hook is not None:
                hook(EpochProgress("help meta-train", episodes, episodes, float("nan"), finished=True))
        self.sources = names
        self.supports, self._adapted = {}, {}

    def _task_loss(self, name: str, latencies: pd.Series, pool: pd.Series, embedding: torch.Tensor,
                   inputs: ArchInputs, position: Mapping[str, int], rng: np.random.Generator) -> torch.Tensor:
        """Query MSE after adapting on a support set (references + random pool archs), plus the KL term."""
        cfg = self.config
        order = rng.permutation(len(pool))
        support = [*self.references, *pool.index[order[: cfg.support_samples]]]
        query = list(pool.index[order[cfg.support_samples: cfg.support_samples + cfg.query_samples]])
        scaler = TargetScaler.fit(latencies.loc[support].to_numpy(dtype="float64"), "minmax")

        def part(archs: Sequence[str]) -> tuple[ArchInputs, torch.Tensor]:
            index = torch.tensor([position[a] for a in archs])
            y = torch.tensor(scaler.transform(latencies.loc[list(archs)].to_numpy(dtype="float64")), dtype=torch.float32)
            return _take(inputs, index), y

        (support_x, support_y), (query_x, query_y) = part(support), part(query)
        params, kl = self._initial(embedding, sample=True)
        adapted = self._adapt(params, support_x, support_y, embedding, create_graph=cfg.second_order)
        assert self.net is not None
        query_loss = nn.functional.mse_loss(functional_call(self.net, adapted, (query_x, embedding)), query_y)
        return query_loss + cfg.kl_scaling * kl

    # -- transfer and prediction --------------------------------------------------------------
    def transfer(self, target: str, samples: pd.Series) -> None:
        """Keep ``target``'s support set: its reference archs (required) and its other samples."""
        if self.net is None:
            raise UserError("help is not meta-trained; run pretrain (trainer pretrain --method help) first")
        references = self._reference_latencies(target, samples)
        others = samples.drop(index=list(self.references))
        if len(others) < 1:
            raise UserError(f"help: {target!r} has only the reference archs; measure at least one more arch")
        self.supports[target] = pd.concat([pd.Series(references, index=list(self.references)), others]).astype("float64")
        self._adapted.pop(target, None)

    @in_config_threads
    def _adapted_draws(self, target: str) -> list[tuple[Params, torch.Tensor]]:
        """``mc_samples`` adapted parameter sets of ``target`` (seeded: the same on every call and reload)."""
        if target not in self._adapted:
            support = self.supports[target]
            embedding = hardware_embedding(support.loc[list(self.references)].to_numpy())
            scaler = TargetScaler.fit(support.to_numpy(), "minmax")
            inputs = self._inputs(list(support.index))
            y = torch.tensor(scaler.transform(support.to_numpy()), dtype=torch.float32)
            draws = []
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                for _ in range(max(1, self.config.mc_samples)):
                    params, _ = self._initial(embedding, sample=True)
                    adapted = self._adapt(params, inputs, y, embedding, create_graph=False)
                    draws.append(({k: v.detach() for k, v in adapted.items()}, embedding))
            self._adapted[target] = draws
        return self._adapted[target]

    @in_config_threads
    def predict(self, archs: Sequence[str], target: str) -> np.ndarray:
        """Latency in ms: the mean of the adapted draws, mapped back through the support set's scaling."""
        if self.net is None:
            raise UserError("help is not meta-trained; run pretrain (trainer pretrain --method help) first")
        if target not in self.supports:
            raise UserError(f"help knows no target {target!r}; known: {', '.join(self.targets()) or 'none'} "
                            "(HELP predicts for devices it was adapted to: run trainer transfer)")
        draws = self._adapted_draws(target)
        inputs = self._inputs(list(archs))
        with torch.no_grad():
            scaled = torch.stack([functional_call(self.net, params, (inputs, embedding)) for params, embedding in draws])
        support = self.supports[target]
        return TargetScaler.fit(support.to_numpy(), "minmax").inverse(scaled.mean(0).double().numpy())

    def targets(self) -> list[str]:
        return list(self.supports)

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = prefixed_state([("net", self.net), ("inference", self.inference), ("steps", self.step_sizes)])
        config = {
            "method": self.method, "space": self.space, "seed": self.seed, "hyper": asdict(self.config),
            "in_channels": self.in_channels, "pretrained": self.net is not None, "sources": self.sources,
            "targets": [{"name": t, "archs": list(s.index), "latency_ms": s.tolist()} for t, s in self.supports.items()],
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> "HELP":
        model = cls(config["space"], seed=config["seed"], **config["hyper"])
        model.in_channels, model.sources = config["in_channels"], list(config["sources"])
        if config["pretrained"]:
            model._build()
            for prefix, module in (("net", model.net), ("inference", model.inference), ("steps", model.step_sizes)):
                assert module is not None
                load_prefixed(module, tensors, prefix)
        for entry in config["targets"]:
            model.supports[entry["name"]] = pd.Series(entry["latency_ms"], index=entry["archs"], dtype="float64")
        return model


def _modulate(params: Params, z: Modulation, scaling: float) -> None:
    """Scale each header layer's weight columns by ``1 + s z_w`` and shift its bias by ``s z_b`` (in place)."""
    for layer, (scales, shift) in enumerate(zip(z.weight_scales, z.bias_shifts)):
        params[f"header.{layer}.weight"] = params[f"header.{layer}.weight"] * (1 + scaling * scales)
        params[f"header.{layer}.bias"] = params[f"header.{layer}.bias"] + scaling * shift


def _trimmed_pool(latencies: pd.Series, trim: tuple[float, float]) -> pd.Series:
    low, high = latencies.quantile(trim[0]), latencies.quantile(trim[1])
    return latencies[(latencies >= low) & (latencies <= high)]


def _take(inputs: ArchInputs, index: torch.Tensor) -> ArchInputs:
    return inputs.index(index) if isinstance(inputs, arch_inputs.GraphBatch) else inputs[index]


def _key(name: str) -> str:
    return name.replace(".", "__")
