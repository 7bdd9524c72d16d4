"""The mini-batch training loop shared by the neural predictors.

AdamW, ``ReduceLROnPlateau`` halving and early stopping with the best weights
restored, as BRP-NAS trains its GCN; MultiPredict uses the same loop without
early stopping. The loss is MSE on scaled latency plus, optionally, a pairwise
hinge term on rank order (NASFLAT trains with a pairwise hinge loss):

.. math::
    \\mathcal{L} = \\frac{1}{B}\\sum_i (\\hat y_i - y_i)^2
      + \\lambda \\frac{1}{|P|}\\sum_{(i,j) \\in P} \\max\\big(0, m - \\mathrm{sign}(y_i - y_j)(\\hat y_i - \\hat y_j)\\big)

over the pairs ``P`` of the batch with ``y_i != y_j`` (and, in multi-device
batches, the same device: scaled latencies of two devices are not comparable).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from farm.errors import UserError

_T = TypeVar("_T")


@dataclass(frozen=True)
class FitConfig:
    """Optimiser and schedule settings of one training run."""

    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    #: Epochs without improvement before stopping; None trains all epochs.
    patience: int | None = None
    #: Epochs without improvement before the LR is multiplied by ``lr_factor``; None keeps it fixed.
    lr_patience: int | None = None
    lr_factor: float = 0.5
    rank_weight: float = 0.0
    rank_margin: float = 0.1
    seed: int = 0


@dataclass
class FitResult:
    """What a training run did: epochs run, the best monitored loss and its history."""

    epochs: int
    best_loss: float
    history: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class EpochProgress:
    """What :func:`fit` reports after each epoch to the hook installed by :func:`reporting_epochs`."""

    #: The run's label (e.g. ``multipredict pretrain``); None when the caller gave none.
    desc: str | None
    #: Epochs done so far (1-based) and the planned total (early stopping may end sooner).
    epoch: int
    epochs: int
    #: The monitored loss of this epoch.
    loss: float
    #: True on the last report of a run (all epochs done, or stopped early).
    finished: bool = False


EpochHook = Callable[[EpochProgress], None]
_epoch_hook: contextvars.ContextVar[EpochHook | None] = contextvars.ContextVar("latfarm_epoch_hook", default=None)


@contextlib.contextmanager
def reporting_epochs(hook: EpochHook | None) -> Iterator[None]:
    """Within the block, every :func:`fit` calls ``hook`` after each epoch (and shows no bar of its own).

    This is how a caller (``trainer.workflow``) shows progress without threading a callback
    through every predictor's ``pretrain`` / ``transfer``. ``None`` leaves things as they are.

    Example:
        >>> seen = []
        >>> net = nn.Linear(1, 1)
        >>> cfg = FitConfig(lr=0.1, weight_decay=0.0, batch_size=4, epochs=3)
        >>> with reporting_epochs(seen.append):
        ...     _ = fit(net, lambda i: net(torch.ones(len(i), 1)).pow(2).mean(), 8, cfg)
        >>> [(p.epoch, p.epochs, p.finished) for p in seen]
        [(1, 3, False), (2, 3, False), (3, 3, False), (3, 3, True)]
    """
    token = _epoch_hook.set(hook) if hook is not None else None
    try:
        yield
    finally:
        if token is not None:
            _epoch_hook.reset(token)


def pairwise_hinge(
    pred: torch.Tensor, target: torch.Tensor, margin: float, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean hinge loss over ordered pairs with different targets, within the same group (0 when none)."""
    sign = torch.sign(target[:, None] - target[None, :])
    mask = sign != 0
    if groups is not None:
        mask = mask & (groups[:, None] == groups[None, :])
    if not bool(mask.any()):
        return pred.new_zeros(())
    gap = pred[:, None] - pred[None, :]
    return torch.relu(margin - sign * gap)[mask].mean()


def regression_loss(
    pred: torch.Tensor, target: torch.Tensor, cfg: FitConfig, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """MSE plus ``cfg.rank_weight`` times the pairwise hinge term (pairs within a group, e.g. one device)."""
    loss = nn.functional.mse_loss(pred, target)
    if cfg.rank_weight > 0:
        loss = loss + cfg.rank_weight * pairwise_hinge(pred, target, cfg.rank_margin, groups)
    return loss


def fit(
    model: nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    num_examples: int,
    cfg: FitConfig,
    *,
    parameters: Iterable[nn.Parameter] | None = None,
    validation_loss: Callable[[], float] | None = None,
    desc: str | None = None,
) -> FitResult:
    """Train ``model`` by minimising ``batch_loss(indices)`` over shuffled mini-batches.

    The monitored loss (for LR halving and early stopping) is ``validation_loss()``
    when given, else the epoch's mean training loss. With ``cfg.patience`` the
    weights of the best epoch are restored at the end. ``desc`` shows a tqdm bar
    (on a terminal) unless a hook installed by :func:`reporting_epochs` reports instead.

    Example:
        >>> net = nn.Linear(1, 1)
        >>> xs = torch.linspace(0, 1, 16)[:, None]
        >>> cfg = FitConfig(lr=0.1, weight_decay=0.0, batch_size=4, epochs=50)
        >>> res = fit(net, lambda i: ((net(xs[i]) - 2 * xs[i]) ** 2).mean(), 16, cfg)
        >>> res.epochs, res.best_loss < 0.05
        (50, True)
    """
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience)
        if cfg.lr_patience is not None
        else None
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    best, best_state, stale = float("inf"), None, 0
    history: list[float] = []
    hook = _epoch_hook.get()
    bar = tqdm(range(cfg.epochs), desc=desc, disable=hook is not None or desc is None or not sys.stderr.isatty(), leave=False)
    epochs_run = 0
    for _ in bar:
        epochs_run += 1
        model.train()
        order = torch.randperm(num_examples, generator=generator)
        total = 0.0
        for start in range(0, num_examples, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = batch_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        monitored = validation_loss() if validation_loss is not None else total / num_examples
        history.append(monitored)
        if scheduler is not None:
            scheduler.step(monitored)
        if monitored < best - 1e-9:
            best, stale = monitored, 0
            if cfg.patience is not None:
                best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        bar.set_postfix(loss=f"{monitored:.4f}")
        if hook is not None:
            hook(EpochProgress(desc, epochs_run, cfg.epochs, monitored))
        if cfg.patience is not None and stale >= cfg.patience:
            break
    if hook is not None:
        hook(EpochProgress(desc, epochs_run, cfg.epochs, history[-1] if history else float("nan"), finished=True))
    model.eval()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(epochs=epochs_run, best_loss=best if np.isfinite(best) else float("nan"), history=history)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads, then restore the previous setting.

    The predictors' tensors are small (graphs of about ten nodes, batches of about a hundred),
    so thread hand-off costs more than it saves: one thread is faster, and much faster on a
    busy machine where a second thread has to wait for a core.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def in_config_threads(method: Callable[..., _T]) -> Callable[..., _T]:
    """Decorator for predictor methods: run with ``self.config.threads`` intra-op threads."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> _T:
        with torch_threads(self.config.threads):
            return method(self, *args, **kwargs)

    return wrapper


def config_from_hyper(config_cls: type, hyper: Mapping[str, Any], method: str):
    """Build the dataclass ``config_cls`` from keyword hyper-parameters.

    An unknown name raises :class:`farm.errors.UserError` (exit 2 in the CLI).
    List values become tuples so a config read back from JSON equals the original.
    """
    known = set(config_cls.__dataclass_fields__)
    unknown = sorted(set(hyper) - known)
    if unknown:
        raise UserError(
            f"method {method!r} has no hyper-parameter {unknown[0]!r}; it accepts: {', '.join(sorted(known))}"
        )
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()})


def predict_in_chunks(forward: Callable[[slice], torch.Tensor], total: int, chunk: int = 2048) -> np.ndarray:
    """Evaluate ``forward(slice)`` over ``range(total)`` in chunks without gradients; float64 numpy."""
    with torch.no_grad():
        parts = [forward(slice(start, start + chunk)).double().numpy() for start in range(0, total, chunk)]
    return np.concatenate(parts) if parts else np.zeros(0)
