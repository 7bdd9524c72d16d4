"""The trainer's verbs as a library: pretrain, transfer, sample, predict, save.

``trainer.cli`` is a thin argparse layer over these functions; the nightly job and the
add-a-device loop call them directly, so every path through the trainer validates,
trains and records a predictor the same way. Nothing here prints unless asked: pass
``say`` (a one-line-message callback, e.g. ``print``) and ``progress`` (True for a
console bar on stderr, or an :data:`~trainer.models.training.EpochHook`).

Bad input raises :class:`farm.errors.UserError` (one line; exit 2 in the CLI).

Example:
    >>> import tempfile
    >>> from farm import spaces
    >>> from trainer.data import TargetTable
    >>> archs = spaces.get("nasbench201").sample(12, seed=0)
    >>> frame = pd.DataFrame({"arch": archs * 2, "device": ["src"] * 12 + ["new"] * 12,
    ...                       "latency_ms": [1.0 + i for i in range(12)] * 2})
    >>> table = TargetTable.from_long(frame, "nasbench201")
    >>> base = pretrain(table, ["src"], method="layerwise", progress=False)
    >>> base.archs_per_source
    {'src': 12}
    >>> folder = save(base, Path(tempfile.mkdtemp()) / "base")
    >>> predictor, manifest = registry.load(folder)
    >>> adapted = transfer(predictor, table, "new", manifest=manifest)
    >>> adapted.target, adapted.samples
    ('new', 12)
    >>> predict(adapted.predictor, archs[:2], "new").shape
    (2,)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from farm import spaces
from farm.errors import UserError
from trainer import registry
from trainer.data import TargetTable, snapshot_hash
from trainer.evaluate import Metrics, source_series
from trainer.models import default_method, get_method
from trainer.models.base import Predictor
from trainer.models.training import EpochHook, reporting_epochs
from trainer.progress import console_hook
from trainer.samplers import DEFAULT_SAMPLER, get_sampler
from trainer.targets import TargetChoice

#: Candidate pool drawn with ``SearchSpace.sample`` for spaces too large to enumerate.
SAMPLE_POOL = 10_000

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class PretrainResult:
    """A pre-trained predictor (not yet saved) and what it learned from."""

    predictor: Predictor
    update: registry.ManifestUpdate
    method: str
    space: str
    #: Sources it learned from (a single-device method lists none: it learns from targets only).
    sources: list[str]
    archs_per_source: dict[str, int]
    seconds: float
    #: In-sample fit per source (a sanity figure, not a held-out score).
    fit: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no weights)."""
        return {"action": "pretrain", "method": self.method, "space": self.space, "sources": self.sources,
                "archs_per_source": self.archs_per_source, "seconds": round(self.seconds, 3), "fit": self.fit}


@dataclass(frozen=True)
class TransferResult:
    """A predictor adapted to one target (not yet saved), with the manifest it started from."""

    predictor: Predictor
    update: registry.ManifestUpdate
    #: The manifest of the predictor it was transferred from (its history carries over on save).
    previous: Mapping[str, Any] | None
    target: str
    samples: int
    seconds: float
    fit: dict[str, float]
    #: How ``target`` was chosen and which of its device's rows were used and skipped.
    choice: TargetChoice | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no weights)."""
        return {"action": "transfer", "method": self.predictor.method, "space": self.predictor.space,
                "target": self.target, "samples": self.samples, "seconds": round(self.seconds, 3), "fit": self.fit,
                "choice": self.choice.to_dict() if self.choice is not None else None}


def pretrain(
    table: TargetTable,
    sources: Sequence[str],
    *,
    method: str | None = None,
    source_samples: int | None = None,
    cap_source_samples: bool = False,
    seed: int = 0,
    hyper: Mapping[str, Any] | None = None,
    progress: bool | EpochHook = True,
    say: Say = _quiet,
) -> PretrainResult:
    """Pre-train ``method`` (default: the project's best) on ``sources`` of ``table``.

    ``source_samples`` draws that many archs (seeded, the same for every source) from
    the archs all sources share; None uses every measured arch. With
    ``cap_source_samples`` (a preset, not the user's explicit count) a count above the
    shared archs is lowered to them instead of refused. ``say`` receives one line, before
    training, stating the archs per source; ``progress`` shows the epochs with an ETA.
    """
    name = method or default_method()
    cls = get_method(name)
    asked = source_samples
    if cap_source_samples:
        source_samples = capped_source_samples(table, sources, source_samples)
    data = source_series(table, sources, source_samples, seed, cls.required_archs(table.space))
    for source in sources:
        choice = table.choice(source)
        if choice.requested != choice.target or choice.skipped:  # a device resolved to one configuration, or rows skipped
            say(choice.line())
    say(_pretrain_plan(name, table.space, data, source_samples, asked))
    predictor = cls(table.space, seed=seed, **dict(hyper or {}))
    started = time.perf_counter()
    with reporting_epochs(console_hook(progress)):
        predictor.pretrain(data)
    seconds = time.perf_counter() - started
    # A single-device method that learned nothing from a source does not list it (nor block transfers to it).
    learned = {n: v for n, v in data.items() if cls.uses_sources or n in predictor.targets()}
    fit = {n: fit_metrics(predictor, n, v) for n, v in learned.items() if n in predictor.targets()}
    update = registry.ManifestUpdate("pretrain", sources=list(learned), samples={n: len(v) for n, v in learned.items()},
                                     snapshot=snapshot_hash(learned), fit_metrics=fit)
    return PretrainResult(predictor, update, name, table.space, list(learned),
                          {n: len(v) for n, v in learned.items()}, seconds, fit)


def capped_source_samples(table: TargetTable, sources: Sequence[str], wanted: int | None) -> int | None:
    """``wanted`` lowered to the number of archs all ``sources`` share (None: every arch, or none shared).

    For preset counts (``--task``'s published 900 / 4,000) on stores that hold fewer archs.

    Example:
        >>> frame = pd.DataFrame({"arch": ["a", "b", "a"], "device": ["s", "s", "t"], "latency_ms": [1.0, 2.0, 3.0]})
        >>> capped_source_samples(TargetTable.from_long(frame, "nasbench201"), ["s", "t"], 900)
        1
    """
    if wanted is None:
        return None
    shared = len(table.common_archs(sources))
    return min(wanted, shared) if shared else None


def _pretrain_plan(method: str, space: str, data: Mapping[str, pd.Series], drawn: int | None, asked: int | None) -> str:
    counts = {n: len(v) for n, v in data.items()}
    if drawn is not None and asked is not None and asked > drawn:
        per_source = f"{drawn} archs each (the {asked} asked for, lowered to the archs the sources share)"
    elif drawn is not None:
        per_source = f"{drawn} archs each (the same seeded archs for every source)"
    elif len(set(counts.values())) == 1:
        per_source = f"{next(iter(counts.values()))} archs each (every measured arch)"
    else:
        per_source = "every measured arch: " + ", ".join(f"{n} {c}" for n, c in counts.items())
    return f"pretrain {method} on {len(counts)} source(s) of {space}, {per_source}"


def transfer(
    predictor: Predictor,
    table: TargetTable,
    target: str,
    *,
    manifest: Mapping[str, Any] | None = None,
    hyper: Mapping[str, Any] | None = None,
    progress: bool | EpochHook = False,
    say: Say = _quiet,
) -> TransferResult:
    """Adapt ``predictor`` (in place) to ``target`` with every row of it in ``table``.

    ``manifest`` is the predictor's saved manifest (from :func:`trainer.registry.load`):
    its sources are refused as targets and its history carries over on :func:`save`.
    ``hyper`` updates the method's hyper-parameters first (e.g. ``{"epochs": 1}``).
    ``target`` is a device (its default target), a target label or ``device:runtime:bN``;
    ``say`` receives one line naming the target chosen and the rows used and skipped.
    """
    choice = table.choice(target)
    name = choice.target
    if manifest is not None and name in manifest.get("sources", []):
        raise UserError(f"--target {name!r} is one of the predictor's sources; transfer to a new device")
    samples = table.series(name)
    needed = type(predictor).min_target_samples
    if len(samples) < needed:
        unstable = choice.skipped.get("unstable", 0)
        hint = (f"{unstable} unstable rows were skipped: pass --include-unstable to learn from them, or "
                if unstable else "")
        raise UserError(
            f"--target {name!r}: {len(samples)} measured archs in {table.origin}; method {predictor.method!r} "
            f"needs at least {needed}: {hint}measure the archs `trainer sample` names, then retry"
        )
    say(choice.line())
    predictor.hyper.update(dict(hyper or {}))
    started = time.perf_counter()
    with reporting_epochs(console_hook(progress)):
        predictor.transfer(name, samples)
    seconds = time.perf_counter() - started
    fit = fit_metrics(predictor, name, samples)
    update = registry.ManifestUpdate("transfer", target=name, samples={name: len(samples)},
                                     snapshot=snapshot_hash({name: samples}), fit_metrics={name: fit})
    return TransferResult(predictor, update, manifest, name, len(samples), seconds, fit, choice)


def save(result: PretrainResult | TransferResult, folder: str | Path) -> Path:
    """Write the result's predictor directory atomically (:func:`trainer.registry.save`); returns it."""
    previous = result.previous if isinstance(result, TransferResult) else None
    return registry.save(result.predictor, folder, result.update, previous=previous)


def predict(predictor: Predictor, archs: Sequence[str], target: str) -> np.ndarray:
    """Predicted latency (ms, float64) of each arch on ``target`` (see :func:`predict_target`)."""
    return np.asarray(predictor.predict(list(archs), target), dtype="float64")


def predict_target(predictor: Predictor, manifest: Mapping[str, Any], requested: str | None = None,
                   origin: str = "the predictor") -> str:
    """The target to predict for: ``requested`` if the predictor knows it, else its last transferred one.

    Raises :class:`UserError` naming ``origin`` and the targets it knows.
    """
    known = predictor.targets()
    if requested is None:
        if manifest.get("targets"):
            return str(manifest["targets"][-1])
        if len(known) == 1:
            return known[0]
        raise UserError(f"{origin}: has no transferred target; pass --target (one of: {', '.join(known) or 'none'})"
                        " or run `trainer transfer` first")
    if requested not in known:
        raise UserError(
            f"--target {requested!r}: unknown to the predictor {origin}; it predicts for "
            f"{', '.join(known) or 'nothing yet'} (run `trainer transfer --target` first)"
        )
    return requested


def all_archs(space: str) -> list[str]:
    """Every arch of a finite space; :class:`UserError` for a space too large to enumerate."""
    try:
        return list(spaces.get(space).enumerate())
    except NotImplementedError:
        raise UserError(f"--all: {space} is too large to enumerate; pass --archs FILE instead") from None


def sample(space: str, n: int, *, sampler: str = DEFAULT_SAMPLER, seed: int = 0,
           candidates: Sequence[str] | None = None, method: str | None = None) -> list[str]:
    """``n`` archs worth measuring on a new device, chosen from encodings only (no latencies).

    ``candidates`` defaults to the whole space (a seeded pool of :data:`SAMPLE_POOL` archs
    where the space is too large to enumerate). A ``method`` that requires archs (HELP's
    reference archs) gets them first, and they count against ``n``.
    """
    required = list(get_method(method).required_archs(space)) if method else []
    if len(required) >= n:
        raise UserError(f"--n {n}: method {method!r} needs its {len(required)} reference archs plus at least one sample")
    if candidates is None:
        try:
            candidates = list(spaces.get(space).enumerate())
        except NotImplementedError:
            candidates = spaces.get(space).sample(SAMPLE_POOL, seed)
    wanted = set(required)
    rest = [a for a in candidates if a not in wanted]
    return [*required, *get_sampler(sampler)(space, rest, n - len(required), seed)]


def fit_metrics(predictor: Predictor, target: str, values: pd.Series) -> dict[str, float]:
    """In-sample fit on the training archs: a sanity figure, not a held-out score."""
    predicted = predictor.predict(list(values.index), target)
    if len(values) < 2:
        return {"spearman": float("nan"), "n": len(values)}
    metrics = Metrics.compute(predicted, values.to_numpy(dtype="float64"))
    return {"spearman": metrics.spearman, "within_10": metrics.within_10, "n": metrics.n}


__all__ = [
    "PretrainResult",
    "SAMPLE_POOL",
    "TransferResult",
    "all_archs",
    "capped_source_samples",
    "fit_metrics",
    "predict",
    "predict_target",
    "pretrain",
    "sample",
    "save",
    "transfer",
]
