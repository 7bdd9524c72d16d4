"""The rows ``farm report`` draws from: one search space of a store, every status, named by target.

Targets are named exactly as the trainer names them (:mod:`trainer.data`):
the device name where a device has one configuration, ``device:runtime:b<batch>``
otherwise. ``table`` holds the ``ok`` latencies (the ones predictors learn),
one column per target; ``rows`` keeps every row with its status, CV and, where
the store has them, its confidence interval columns.

Example:
    >>> import tempfile
    >>> from farm.store import Store
    >>> store_columns(Store(tempfile.mkdtemp()))[:3]
    ['device', 'runtime', 'batch_size']
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import pandas as pd

from farm.device_records import read_records
from farm.store import SCHEMA, Store
from trainer.data import TargetTable
from trainer.targets import TARGET_COLUMNS

#: Optional per-row confidence interval of ``latency_ms`` (only in stores whose schema has them).
CI_COLUMNS: tuple[str, str] = ("ci_low_ms", "ci_high_ms")
_BASE_COLUMNS: tuple[str, ...] = (*TARGET_COLUMNS, "arch", "status", "latency_ms", "cv")


@dataclass(frozen=True)
class SpaceRows:
    """One search space of a store: every row (with a ``target`` column) and the ok latencies pivoted."""

    space: str
    rows: pd.DataFrame
    table: TargetTable

    @property
    def has_ci(self) -> bool:
        """True where some row carries a confidence interval."""
        return all(c in self.rows.columns for c in CI_COLUMNS) and bool(self.rows[CI_COLUMNS[0]].notna().any())

    def targets(self) -> list[str]:
        """Every target with a row (ok or not), sorted."""
        return sorted(self.rows["target"].dropna().unique())


def store_columns(store: Store) -> list[str]:
    """The columns :func:`load_space_rows` reads: the CI columns only where the schema has them."""
    return [*_BASE_COLUMNS, *(c for c in CI_COLUMNS if c in SCHEMA.names)]


def load_space_rows(store: Store, space: str) -> SpaceRows:
    """Every row of ``space`` in ``store``, with a ``target`` column, and the ok latencies per target.

    Names come from all rows and the store's device records, exactly as
    :func:`trainer.data.load_table` names them.
    """
    rows = store.read(search_space=space, columns=store_columns(store))
    table = TargetTable.from_long(rows, space, origin=str(store.root), statuses=("ok",),
                                  records=read_records(store.root))
    rows["batch_size"] = rows["batch_size"].astype("int64")
    rows["input_size"] = rows["input_size"].fillna(0).astype("int64")
    names = pd.DataFrame([(*astuple(key), name) for name, key in table.keys.items()],
                         columns=[*TARGET_COLUMNS, "target"])
    return SpaceRows(space, rows.merge(names, on=list(TARGET_COLUMNS), how="left"), table)


__all__ = ["CI_COLUMNS", "SpaceRows", "load_space_rows", "store_columns"]
