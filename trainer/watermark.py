"""What changed in the store since the last successful ``trainer nightly``: a watermark of measurement ids.

Per (space, target), the fingerprint of the rows a predictor may train on
(ok rows of archs outside the held-out slice) is their count and the SHA-256
of their sorted ``measurement_id`` s (unique per row, and the store is
append-only, so a new row always changes it). ``<registry>/watermark.json``
keeps the fingerprints, the sources and the method of the last successful
run; it is written (temp file, fsync, ``os.replace``) only when a run
succeeded, so a crashed or failed run is simply redone next time.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> mark = Watermark.read(root)
    >>> mark.target("nasbench201", "pixel2") is None
    True
    >>> mark.spaces["nasbench201"] = {"method": "layerwise", "sources": [], "targets": {"pixel2": {"rows": 3, "ids_sha256": "ab"}}}
    >>> mark.write(root)
    >>> Watermark.read(root).target("nasbench201", "pixel2")
    Fingerprint(rows=3, ids_sha256='ab')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from farm.device_records import read_records
from farm.store import Store, StoreError
from trainer import holdout
from trainer.data import TARGET_COLUMNS, DataError, TargetKey, TargetTable
from trainer.registry import now_iso
from trainer.versions import write_json_atomic

WATERMARK_FILE = "watermark.json"
FORMAT = 1


@dataclass(frozen=True)
class Fingerprint:
    """Count and id digest of one target's trainable rows."""

    rows: int
    ids_sha256: str

    @classmethod
    def of(cls, measurement_ids: pd.Series) -> "Fingerprint":
        """The fingerprint of a set of measurement ids (order does not matter)."""
        digest = hashlib.sha256("\n".join(sorted(map(str, measurement_ids))).encode()).hexdigest()
        return cls(len(measurement_ids), digest)


@dataclass
class SpaceRows:
    """One space of the store: all ok rows pivoted, the trainable part, and per-target fingerprints."""

    table: TargetTable
    trainable: TargetTable
    fingerprints: dict[str, Fingerprint]

    def held_out(self, target: str) -> pd.Series:
        """Measured latencies of ``target``'s held-out archs."""
        return holdout.split(self.table.series(target), self.table.space)[1]

    def archs_per_target(self) -> dict[str, int]:
        """Measured archs (held-out ones included) per target."""
        return {name: int(self.table.latencies[name].notna().sum()) for name in self.table.names()}


def read_space(store: Store, space: str, statuses: tuple[str, ...] = ("ok",)) -> SpaceRows:
    """Read ``space`` once: the pivoted table, the table without held-out archs, the fingerprints."""
    columns = [*TARGET_COLUMNS, "arch", "latency_ms", "measurement_id", "status"]
    try:
        frame = store.read(search_space=space, columns=columns)
    except StoreError as error:
        raise DataError(f"{store.root}: cannot read the store ({error}); check the directory is a farm store") from None
    # Names and defaults come from every row and the device records, so they never depend on today's statuses.
    table = TargetTable.from_long(frame, space, origin=str(store.root), statuses=statuses,
                                  records=read_records(store.root))
    held = holdout.held_out_mask(space, table.latencies.index)
    trainable = table.with_latencies(table.latencies[~held])
    names = {key: name for name, key in table.keys.items()}
    frame = frame[frame["status"].isin(list(statuses)) & ~frame["arch"].isin(set(table.latencies.index[held]))]
    target_of = [names[TargetKey(d, r, int(b), int(0 if pd.isna(i) else i))]
                 for d, r, b, i in frame[list(TARGET_COLUMNS)].itertuples(index=False, name=None)]
    ids = frame["measurement_id"].groupby(pd.Series(target_of, index=frame.index, dtype="object"))
    fingerprints = {name: Fingerprint.of(group) for name, group in ids}
    return SpaceRows(table, trainable, {name: fingerprints.get(name, Fingerprint.of(pd.Series([], dtype="object")))
                                         for name in table.names()})


@dataclass
class Watermark:
    """The state of the last successful run: ``spaces[space] = {method, sources, base_version, targets}``."""

    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    completed_at: str | None = None

    @classmethod
    def read(cls, root: Path) -> "Watermark":
        """``<root>/watermark.json`` (empty before the first successful run or when unreadable)."""
        try:
            data = json.loads((root / WATERMARK_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return cls()
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return cls()
        return cls(dict(data.get("spaces") or {}), data.get("completed_at"))

    def target(self, space: str, target: str) -> Fingerprint | None:
        """The fingerprint recorded for a target, if any."""
        entry = self.spaces.get(space, {}).get("targets", {}).get(target)
        return Fingerprint(int(entry["rows"]), str(entry["ids_sha256"])) if isinstance(entry, Mapping) else None

    def sources_changed(self, space: str, method: str, rows: SpaceRows, sources: tuple[str, ...]) -> str | None:
        """Why the base must be re-trained (``None`` when its inputs are as at the last successful run)."""
        before = self.spaces.get(space)
        if before is None:
            return "no successful run has seen this space"
        if before.get("method") != method:
            return f"method {before.get('method')} -> {method}"
        if list(before.get("sources", [])) != list(sources):
            return f"sources {','.join(before.get('sources', []))} -> {','.join(sources)}"
        grown = [s for s in sources if self.target(space, s) != rows.fingerprints[s]]
        return f"new rows of {', '.join(grown)}" if grown else None

    def write(self, root: Path) -> None:
        """Replace ``<root>/watermark.json`` atomically."""
        write_json_atomic(root / WATERMARK_FILE, {"format": FORMAT, "completed_at": now_iso(), "spaces": self.spaces})


def fingerprint_json(fingerprint: Fingerprint) -> dict[str, Any]:
    """``{"rows": n, "ids_sha256": h}``"""
    return {"rows": fingerprint.rows, "ids_sha256": fingerprint.ids_sha256}


__all__ = ["FORMAT", "Fingerprint", "SpaceRows", "WATERMARK_FILE", "Watermark", "fingerprint_json", "read_space"]
