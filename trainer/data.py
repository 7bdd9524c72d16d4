"""From the farm's Parquet store to per-target latency vectors.

A *target* is a (device, runtime, batch_size) configuration (DESIGN.md), plus
the input size where a device was measured at several. :func:`load_table`
reads the ``ok`` rows of one search space and pivots them into a
:class:`TargetTable`: one column of latencies (ms) per target, indexed by the
canonical arch string, NaN where that arch was not measured on that target.
Repeated measurements of one arch on one target are reduced to their median.

Target names: a device the store holds in one configuration is named after the
device (``pixel2``, ``1080ti_32``); a device with several is named
``device:runtime:b<batch>`` (and ``:in<size>`` when input sizes differ), e.g.
``cpu-local:torch:b1`` and ``cpu-local:torchscript:b1``.

Also here: per-target normalisation (:func:`fit_scalers`, whose parameters a
predictor keeps and :mod:`trainer.registry` saves in its manifest) and deterministic choices of archs
(:func:`choose`, :func:`split`), the only randomness the trainer's data path
has.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"arch": ["a", "b", "a"], "device": ["d1", "d1", "d2"],
    ...                       "latency_ms": [1.0, 2.0, 3.0]})
    >>> table = TargetTable.from_long(frame, "nasbench201")
    >>> table.names()
    ['d1', 'd2']
    >>> table.series("d2").to_dict()
    {'a': 3.0}
    >>> choose(["x", "y", "z"], 2, seed=0) == choose(["z", "y", "x"], 2, seed=0)
    True
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from farm.errors import UserError
from farm.store import Store, StoreError
from trainer.models.target_scaler import ScalerKind, TargetScaler

#: Columns :func:`load_table` reads from the store.
TARGET_COLUMNS: tuple[str, ...] = ("device", "runtime", "batch_size", "input_size")
_READ_COLUMNS = [*TARGET_COLUMNS, "arch", "latency_ms"]


class DataError(UserError):
    """The store cannot give what was asked (empty, other space, unknown target): one line, exit 2."""


@dataclass(frozen=True, order=True)
class TargetKey:
    """One prediction target: a device in one run configuration."""

    device: str
    runtime: str
    batch_size: int
    input_size: int

    def label(self, with_input_size: bool = False) -> str:
        """``device:runtime:b<batch>`` (``:in<size>`` appended when asked)."""
        text = f"{self.device}:{self.runtime}:b{self.batch_size}"
        return f"{text}:in{self.input_size}" if with_input_size else text


@dataclass
class TargetTable:
    """Latencies (ms) of one search space: index = arch, one column per target, NaN = unmeasured."""

    space: str
    latencies: pd.DataFrame
    keys: dict[str, TargetKey]
    origin: str = "<frame>"

    # ------------------------------------------------------------- building
    @classmethod
    def from_long(cls, frame: pd.DataFrame, space: str, origin: str = "<frame>") -> "TargetTable":
        """Pivot a long table (``arch, device, latency_ms`` and optionally ``runtime, batch_size,
        input_size``) into one column per target. Missing config columns default to
        ``external`` / batch 1 / input 0 (unknown)."""
        if frame.empty:
            return cls(space, pd.DataFrame(dtype="float64"), {}, origin)
        long = frame.copy()
        defaults = {"runtime": "external", "batch_size": 1, "input_size": 0}
        for column, value in defaults.items():
            if column not in long.columns:
                long[column] = value
        long["batch_size"] = long["batch_size"].astype("int64")
        long["input_size"] = long["input_size"].fillna(0).astype("int64")
        configs = long[list(TARGET_COLUMNS)].drop_duplicates()
        names = _target_names([TargetKey(*row) for row in configs.itertuples(index=False, name=None)])
        configs["target"] = [names[TargetKey(*row)][0] for row in configs.itertuples(index=False, name=None)]
        long = long.merge(configs, on=list(TARGET_COLUMNS), how="left")
        wide = long.groupby(["arch", "target"], sort=True)["latency_ms"].median().unstack("target")
        wide = wide.reindex(sorted(wide.columns), axis=1)
        wide.columns.name = None
        wide.index = wide.index.astype(str)
        wide.index.name = "arch"
        keys = {name: key for key, (name, _) in names.items()}
        return cls(space, wide.astype("float64"), dict(sorted(keys.items())), origin)

    # -------------------------------------------------------------- queries
    def names(self) -> list[str]:
        """Target names, sorted."""
        return list(self.latencies.columns)

    def devices(self) -> list[str]:
        """Distinct device names, sorted."""
        return sorted({key.device for key in self.keys.values()})

    def resolve(self, name: str) -> str:
        """The target called ``name``; a device name works where that device has one configuration.

        Raises :class:`DataError` listing the known targets otherwise.
        """
        if name in self.keys:
            return name
        matches = [target for target, key in self.keys.items() if key.device == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise DataError(
                f"{self.origin}: device {name!r} has {len(matches)} configurations in space {self.space!r}: "
                f"{', '.join(matches)}; name one of them"
            )
        known = self.names()
        shown = ", ".join(known[:30]) + (f", ... ({len(known)} in all)" if len(known) > 30 else "")
        raise DataError(
            f"{self.origin}: unknown device or target {name!r} in space {self.space!r}; known: {shown or 'none'}"
        )

    def series(self, name: str) -> pd.Series:
        """Measured latencies (ms) of one target, indexed by arch (unmeasured archs dropped)."""
        target = self.resolve(name)
        values = self.latencies[target].dropna()
        values.name = target
        return values

    def archs(self, name: str | None = None) -> list[str]:
        """Archs measured on target ``name`` (on any target when None), sorted. No latencies."""
        if name is None:
            return list(self.latencies.index)
        return list(self.series(name).index)

    def common_archs(self, names: Iterable[str]) -> list[str]:
        """Archs measured on every one of ``names``, sorted."""
        targets = [self.resolve(n) for n in names]
        block = self.latencies[targets].dropna(how="any")
        return list(block.index)

    def without(self, names: Iterable[str]) -> "TargetTable":
        """A copy without the given targets (e.g. to hand a sampler no target data at all)."""
        drop = [self.resolve(n) for n in names]
        wide = self.latencies.drop(columns=drop).dropna(how="all")
        keys = {k: v for k, v in self.keys.items() if k not in drop}
        return TargetTable(self.space, wide, keys, self.origin)

    def snapshot_hash(self, names: Iterable[str] | None = None) -> str:
        """SHA-256 over the (target, arch, latency) triples of ``names`` (all targets when None)."""
        return snapshot_hash({n: self.series(n) for n in (names if names is not None else self.names())})


def snapshot_hash(series: Mapping[str, pd.Series]) -> str:
    """SHA-256 identifying exactly the data a predictor was trained on.

    Example:
        >>> a = snapshot_hash({"t": pd.Series({"x": 1.0})})
        >>> a == snapshot_hash({"t": pd.Series({"x": 1.0})}) != snapshot_hash({"t": pd.Series({"x": 1.5})})
        True
    """
    digest = hashlib.sha256()
    for name in sorted(series):
        values = series[name].sort_index()
        digest.update(name.encode() + b"\0")
        digest.update("\n".join(map(str, values.index)).encode() + b"\0")
        digest.update(np.ascontiguousarray(values.to_numpy(dtype="float64")).tobytes())
    return digest.hexdigest()


def _target_names(keys: Sequence[TargetKey]) -> dict[TargetKey, tuple[str, TargetKey]]:
    by_device: dict[str, list[TargetKey]] = {}
    for key in keys:
        by_device.setdefault(key.device, []).append(key)
    names: dict[TargetKey, tuple[str, TargetKey]] = {}
    for device, configs in by_device.items():
        if len(configs) == 1:
            names[configs[0]] = (device, configs[0])
            continue
        with_size = len({(c.runtime, c.batch_size) for c in configs}) < len(configs)
        for config in configs:
            names[config] = (config.label(with_input_size=with_size), config)
    return names


def store_spaces(root: str | os.PathLike[str]) -> list[str]:
    """Search spaces that have a partition in the store at ``root``."""
    path = Path(root)
    if not path.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in path.glob("search_space=*") if p.is_dir())


def load_table(store: Store | str | os.PathLike[str], space: str, *, statuses: Sequence[str] = ("ok",)) -> TargetTable:
    """Read ``space``'s rows with a status in ``statuses`` from a store and pivot them.

    Raises :class:`DataError` when the store does not exist, is empty, or holds
    other search spaces only (the message names the ones it holds).
    """
    store = store if isinstance(store, Store) else Store(store)
    origin = str(store.root)
    if not store.root.is_dir():
        raise DataError(f"{origin}: no such store directory; pass --store DIR of a farm store")
    try:
        frame = store.read(search_space=space, where={"status": list(statuses)}, columns=_READ_COLUMNS)
    except StoreError as error:
        raise DataError(f"{origin}: cannot read the store ({error}); check the directory is a farm store") from None
    if frame.empty:
        held = store_spaces(store.root)
        if not held:
            raise DataError(
                f"{origin}: the store is empty; add rows with `farm import FILE --store {origin}` or measure first"
            )
        raise DataError(
            f"{origin}: no {'/'.join(statuses)} rows for search space {space!r}; the store holds "
            f"{', '.join(held)}: pass --space accordingly (or a predictor trained on that space)"
        )
    return TargetTable.from_long(frame, space, origin=origin)


# ---------------------------------------------------------------- normalisation
def fit_scalers(series: Mapping[str, pd.Series], kind: ScalerKind = "zscore") -> dict[str, TargetScaler]:
    """One :class:`~trainer.models.target_scaler.TargetScaler` per target, fitted on exactly the
    latencies given (a predictor's training archs, never a target's held-out ones).

    Predictors keep them in ``self.scalers``; :mod:`trainer.registry` writes their
    parameters into the manifest's ``normalisation`` field.

    Example:
        >>> scalers = fit_scalers({"d": pd.Series({"a": 1.0, "b": 3.0})}, "minmax")
        >>> scalers["d"].transform(np.array([3.0])).tolist()
        [1.0]
    """
    return {name: TargetScaler.fit(values.to_numpy(dtype="float64"), kind) for name, values in series.items()}


# ---------------------------------------------------------------- deterministic choices
def choose(archs: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` distinct archs drawn uniformly with ``seed``; independent of the input order.

    Raises ``ValueError`` when fewer than ``n`` archs are given.
    """
    pool = sorted(set(archs))
    if n > len(pool):
        raise ValueError(f"cannot choose {n} archs from {len(pool)}")
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    return [pool[i] for i in sorted(order)]


def split(archs: Sequence[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """(``n`` chosen archs, every other arch), both sorted; deterministic in ``seed``."""
    chosen = choose(archs, n, seed)
    taken = set(chosen)
    return chosen, sorted(a for a in set(archs) if a not in taken)


__all__ = [
    "DataError",
    "TargetKey",
    "TargetTable",
    "choose",
    "fit_scalers",
    "load_table",
    "snapshot_hash",
    "split",
    "store_spaces",
]
