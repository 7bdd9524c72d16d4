"""From the farm's Parquet store to per-target latency vectors.

A *target* is a (device, runtime, batch_size) configuration (DESIGN.md), plus
the input size where a device was measured at several. :func:`load_table`
reads the rows of one search space (from one store, or the union of several,
each measurement once by ``measurement_id``) and pivots those with an eligible status
(``ok`` by default) into a :class:`TargetTable`: one column of latencies (ms)
per target, indexed by the canonical arch string, NaN where that arch was not
measured on that target. Repeated measurements of one arch on one target are
reduced to their median.

Target names and each device's default target are decided by
:mod:`trainer.targets` from the device records the farm keeps in the store and
from *all* rows, whatever their status, so that they never change when rows
turn ``ok`` or when ``--include-unstable`` is passed: a device with one
configuration is named after the device (``pixel2``, ``1080ti_32``); a device
with several is named ``device:runtime:b<batch>`` (``:in<size>`` when input
sizes differ), e.g. ``cpu-local:torch:b1``. ``resolve("cpu-local")`` is the
device's default target (the inventory's first runtime and batch size), and
:meth:`TargetTable.choice` says in one line which rows were used and skipped.

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

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from farm.device_records import DeviceRecord, read_records
from farm.errors import UserError
from farm.store import Store, StoreError
from trainer.models.target_scaler import ScalerKind, TargetScaler
from trainer.targets import RULE_EXPLICIT, TARGET_COLUMNS, TargetChoice, TargetKey, name_targets, parse_label

_READ_COLUMNS = [*TARGET_COLUMNS, "arch", "latency_ms", "status"]


class DataError(UserError):
    """The store cannot give what was asked (empty, other space, unknown target): one line, exit 2."""


@dataclass
class TargetTable:
    """Latencies (ms) of one search space: index = arch, one column per target, NaN = unmeasured.

    ``keys`` holds every configuration known for the space (a record's configuration
    that has no eligible row yet has a key but no column); ``defaults`` maps a device
    to its default target and ``rules`` says why; ``row_counts`` counts all rows per
    target and status (what :meth:`choice` reports as used and skipped).
    """

    space: str
    latencies: pd.DataFrame
    keys: dict[str, TargetKey]
    origin: str = "<frame>"
    defaults: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    row_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    statuses: tuple[str, ...] | None = None

    # ------------------------------------------------------------- building
    @classmethod
    def from_long(
        cls,
        frame: pd.DataFrame,
        space: str,
        origin: str = "<frame>",
        *,
        statuses: Sequence[str] | None = None,
        records: Mapping[str, DeviceRecord] | None = None,
    ) -> "TargetTable":
        """Pivot a long table (``arch, device, latency_ms`` and optionally ``runtime, batch_size,
        input_size, status``) into one column per target. Missing config columns default to
        ``external`` / batch 1 / input 0 (unknown).

        Target names come from every row and ``records`` (the devices' inventory entries);
        only rows whose ``status`` is in ``statuses`` give latencies (all rows when None).
        """
        if frame.empty:
            return cls(space, pd.DataFrame(dtype="float64"), {}, origin, statuses=_tuple(statuses))
        long = frame.copy()
        for column, value in {"runtime": "external", "batch_size": 1, "input_size": 0, "status": "ok"}.items():
            if column not in long.columns:
                long[column] = value
        long["batch_size"] = long["batch_size"].astype("int64")
        long["input_size"] = long["input_size"].fillna(0).astype("int64")
        naming = name_targets(long[list(TARGET_COLUMNS)], records)
        labels = pd.DataFrame(
            [(*dataclasses.astuple(key), label) for label, key in naming.keys.items()], columns=[*TARGET_COLUMNS, "target"]
        )
        long = long.merge(labels, on=list(TARGET_COLUMNS), how="left")
        counts = long.groupby(["target", "status"]).size().unstack("status", fill_value=0)
        eligible = long if statuses is None else long[long["status"].isin(list(statuses))]
        if eligible.empty:
            wide = pd.DataFrame(dtype="float64", index=pd.Index([], name="arch", dtype=str))
        else:
            wide = eligible.groupby(["arch", "target"], sort=True)["latency_ms"].median().unstack("target")
            wide = wide.reindex(sorted(wide.columns), axis=1)
            wide.columns.name = None
            wide.index = wide.index.astype(str)
            wide.index.name = "arch"
        return cls(space, wide.astype("float64"), naming.keys, origin, naming.defaults, naming.rules, counts,
                   _tuple(statuses))

    def with_latencies(self, latencies: pd.DataFrame) -> "TargetTable":
        """A copy with other latencies (e.g. some rows held out) and the same names and defaults."""
        return dataclasses.replace(self, latencies=latencies)

    # -------------------------------------------------------------- queries
    def names(self) -> list[str]:
        """Target names, sorted."""
        return list(self.latencies.columns)

    def devices(self) -> list[str]:
        """Distinct device names, sorted."""
        return sorted({key.device for key in self.keys.values()})

    def resolve(self, name: str) -> str:
        """The target called ``name``: a target label, a device (its default target) or the
        explicit ``device:runtime:bN[:inS]`` form.

        Raises :class:`DataError` listing the known targets otherwise.
        """
        if name in self.keys:
            return name
        matches = [target for target, key in self.keys.items() if key.device == name]
        if name in self.defaults and self.defaults[name] in self.keys:
            return self.defaults[name]
        if len(matches) == 1:
            return matches[0]
        if matches:  # a table built without defaults (TargetTable(...) by hand)
            raise DataError(
                f"{self.origin}: device {name!r} has {len(matches)} configurations in space {self.space!r}: "
                f"{', '.join(matches)}; name one of them"
            )
        explicit = self._explicit(name)
        if explicit is not None:
            return explicit
        known = self.names()
        shown = ", ".join(known[:30]) + (f", ... ({len(known)} in all)" if len(known) > 30 else "")
        raise DataError(
            f"{self.origin}: unknown device or target {name!r} in space {self.space!r}; known: {shown or 'none'}"
        )

    def _explicit(self, name: str) -> str | None:
        """The label of ``device:runtime:bN[:inS]`` where the device is named by its device name alone."""
        parsed = parse_label(name)
        if parsed is None:
            return None
        device, runtime, batch, size = parsed
        found = [label for label, key in self.keys.items()
                 if (key.device, key.runtime, key.batch_size) == (device, runtime, batch)
                 and (size is None or key.input_size == size)]
        if len(found) > 1:
            raise DataError(f"{self.origin}: {name!r} was measured at {len(found)} input sizes: "
                            f"{', '.join(sorted(found))}; name one of them")
        return found[0] if found else None

    def choice(self, name: str) -> TargetChoice:
        """Which target ``name`` resolves to, why, and how many of its device's rows are used and skipped.

        Example:
            >>> frame = pd.DataFrame({"arch": ["a", "b", "a"], "device": ["d", "d", "d"], "latency_ms": [1.0, 2.0, 3.0],
            ...                       "status": ["ok", "unstable", "ok"], "runtime": ["torch", "torch", "tflite"]})
            >>> TargetTable.from_long(frame, "nasbench201", statuses=["ok"]).choice("d:torch:b1").line()
            'target d:torch:b1 (named explicitly): 1 rows used (1 archs); skipped 1 unstable, 1 of other configurations (d:tflite:b1)'
        """
        target = self.resolve(name)
        device = self.keys[target].device
        rule = self.rules.get(device, RULE_EXPLICIT) if name == device else RULE_EXPLICIT
        counts = self.row_counts.loc[target] if target in self.row_counts.index else pd.Series(dtype="int64")
        eligible = list(counts.index) if self.statuses is None else [s for s in counts.index if s in self.statuses]
        others = {label: int(self.row_counts.loc[label].sum()) for label, key in self.keys.items()
                  if key.device == device and label != target and label in self.row_counts.index}
        return TargetChoice(
            requested=name, target=target, rule=rule, used_rows=int(counts[eligible].sum()),
            used_archs=len(self.series(target)), skipped={str(s): int(n) for s, n in counts.items() if s not in eligible and n},
            other_configurations=others,
        )

    def series(self, name: str) -> pd.Series:
        """Measured latencies (ms) of one target, indexed by arch (unmeasured archs dropped)."""
        target = self.resolve(name)
        if target not in self.latencies.columns:
            return pd.Series(dtype="float64", name=target, index=pd.Index([], name="arch", dtype=str))
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
        wide = self.latencies.drop(columns=[d for d in drop if d in self.latencies.columns]).dropna(how="all")
        keys = {k: v for k, v in self.keys.items() if k not in drop}
        defaults = {device: label for device, label in self.defaults.items() if label not in drop}
        return dataclasses.replace(self, latencies=wide, keys=keys, defaults=defaults)

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


def _tuple(statuses: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(statuses) if statuses is not None else None


def store_spaces(root: str | os.PathLike[str]) -> list[str]:
    """Search spaces that have a partition in the store at ``root``."""
    path = Path(root)
    if not path.is_dir():
        return []
    return sorted(p.name.split("=", 1)[1] for p in path.glob("search_space=*") if p.is_dir())


#: One store: a :class:`~farm.store.Store` or its folder.
StoreLike = Union[Store, str, "os.PathLike[str]"]


def load_table(
    store: StoreLike | Sequence[StoreLike], space: str, *, statuses: Sequence[str] = ("ok",)
) -> TargetTable:
    """Read ``space``'s rows from one store, or the union of several, and pivot those with a status in ``statuses``.

    Several stores (``trainer pretrain --store a --store b``: e.g. the local
    store and one brought home from a cluster's head) are read as one: a
    measurement held by more than one of them (same ``measurement_id``, as
    after ``farm pull``) counts once. Target names and defaults come from all
    rows and the stores' device records (:mod:`farm.device_records`; the
    newest record of a device wins), so they are the same whatever
    ``statuses`` is. Raises :class:`DataError` when a store does not exist
    or cannot be read, when they are all empty, or when they hold other search
    spaces only (the message names the ones they hold).
    """
    stores = _as_stores(store)
    origin = " + ".join(str(s.root) for s in stores)
    frames = [_read_store(s, space) for s in stores]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.drop_duplicates("measurement_id", keep="first").drop(columns=["measurement_id"])
    if not frame["status"].isin(list(statuses)).any():
        held = sorted({name for s in stores for name in store_spaces(s.root)})
        if not held:
            raise DataError(
                f"{origin}: the store is empty; add rows with `farm import FILE --store {stores[0].root}` or measure first"
            )
        raise DataError(
            f"{origin}: no {'/'.join(statuses)} rows for search space {space!r}; the store holds "
            f"{', '.join(held)}: pass --space accordingly (or a predictor trained on that space)"
        )
    records = newest_records([read_records(s.root) for s in stores])
    return TargetTable.from_long(frame, space, origin=origin, statuses=statuses, records=records)


def _as_stores(store: StoreLike | Sequence[StoreLike]) -> list[Store]:
    """One :class:`Store` per distinct folder, in the order given."""
    given = [store] if isinstance(store, (Store, str, os.PathLike)) else list(store)
    if not given:
        raise DataError("no store given; pass --store DIR of a farm store")
    stores: dict[Path, Store] = {}
    for item in given:
        one = item if isinstance(item, Store) else Store(item)
        stores.setdefault(one.root.resolve(), one)
    return list(stores.values())


def _read_store(store: Store, space: str) -> pd.DataFrame:
    """``space``'s rows of one store (and their ``measurement_id``), or :class:`DataError` naming the store."""
    origin = str(store.root)
    if not store.root.is_dir():
        raise DataError(f"{origin}: no such store directory; pass --store DIR of a farm store")
    try:
        return store.read(search_space=space, columns=[*_READ_COLUMNS, "measurement_id"])
    except StoreError as error:
        raise DataError(f"{origin}: cannot read the store ({error}); check the directory is a farm store") from None


def newest_records(stores: Sequence[Mapping[str, DeviceRecord]]) -> dict[str, DeviceRecord]:
    """The device records of several stores joined; where two hold a device, the newer ``updated_at`` wins.

    Example:
        >>> old = DeviceRecord("pi", "ssh", None, ("torch",), (1,), 4, None, "2026-01-01T00:00:00+00:00")
        >>> new = dataclasses.replace(old, runtimes=("tflite",), updated_at="2026-02-01T00:00:00+00:00")
        >>> newest_records([{"pi": new}, {"pi": old}])["pi"].runtimes
        ('tflite',)
    """
    joined: dict[str, DeviceRecord] = {}
    for records in stores:
        for device, record in records.items():
            if device not in joined or record.updated_at > joined[device].updated_at:
                joined[device] = record
    return joined


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
    "TARGET_COLUMNS",
    "DataError",
    "TargetKey",
    "TargetTable",
    "choose",
    "fit_scalers",
    "load_table",
    "newest_records",
    "snapshot_hash",
    "split",
    "StoreLike",
    "store_spaces",
]
