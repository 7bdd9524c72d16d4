"""What a campaign did, per device: the one-screen summary, ``--json``, and the campaign record.

The record is the summary as JSON in ``<store>/_campaigns/<campaign_id>.json``
(written atomically at the start with status ``running`` and again at the end,
``finished`` or ``interrupted``), so ``farm status`` can show the last campaign,
and a campaign that was killed shows up as ``running`` with no end time. The store's Parquet reader ignores
the ``_campaigns`` folder.

Example:
    >>> s = DeviceSummary("cpu-local", "cpu", requested=10, skipped=2, measured=7, failed=1)
    >>> s.outcomes
    8
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDS_DIR = "_campaigns"


@dataclass
class DeviceSummary:
    """Counts for one device. ``measured`` includes ``unstable`` rows (measured, CV above the limit)."""

    device: str
    kind: str
    requested: int = 0
    skipped: int = 0
    measured: int = 0
    unstable: int = 0
    failed: int = 0
    not_measured: int = 0
    median_latency_ms: float | None = None
    busy_s: float = 0.0
    idle_share: float | None = None
    down_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    protocol: str = ""

    @property
    def outcomes(self) -> int:
        return self.measured + self.failed


@dataclass
class CampaignSummary:
    """The whole campaign: devices, builds, wall time."""

    campaign_id: str
    search_space: str
    store: str
    status: str = "running"
    started_at: str = ""
    finished_at: str | None = None
    wall_s: float = 0.0
    archs: int = 0
    protocol_overrides: dict[str, Any] = field(default_factory=dict)
    builds: int = 0
    build_s: float = 0.0
    build_failures: int = 0
    devices: list[DeviceSummary] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CampaignSummary":
        devices = [DeviceSummary(**d) for d in data.get("devices", [])]
        return cls(**{**data, "devices": devices})

    def totals(self) -> dict[str, int]:
        keys = ("requested", "skipped", "measured", "unstable", "failed", "not_measured")
        return {k: sum(getattr(d, k) for d in self.devices) for k in keys}

    def render(self) -> str:
        """The one-screen text summary."""
        lines = [
            f"campaign {self.campaign_id} ({self.status}): {self.search_space}, {self.archs} archs, "
            f"{self.wall_s:.1f} s wall, store {self.store}",
            f"{'device':<24} {'kind':<7} {'measured':>8} {'unstable':>8} {'skipped':>7} {'failed':>6} "
            f"{'not meas.':>9} {'median ms':>10} {'idle':>5}",
        ]
        for d in self.devices:
            median = f"{d.median_latency_ms:.3f}" if d.median_latency_ms is not None else "-"
            idle = f"{d.idle_share:.0%}" if d.idle_share is not None else "-"
            lines.append(
                f"{d.device:<24} {d.kind:<7} {d.measured:>8} {d.unstable:>8} {d.skipped:>7} {d.failed:>6} "
                f"{d.not_measured:>9} {median:>10} {idle:>5}"
            )
            if d.protocol:
                lines.append(f"  protocol {d.protocol}")
            if d.down_reason:
                lines.append(f"  DOWN: {d.down_reason}")
            lines.extend(f"  error: {message}" for message in d.errors[:3])
        if self.builds or self.build_failures:
            lines.append(
                f"builds: {self.builds} in {self.build_s:.1f} s of build-task time, {self.build_failures} failed"
            )
        else:
            lines.append("builds: none needed (eager torch)")
        return "\n".join(lines)


def record_path(store_root: str | os.PathLike[str], campaign_id: str) -> Path:
    return Path(store_root) / RECORDS_DIR / f"{campaign_id}.json"


def save_record(summary: CampaignSummary) -> Path:
    """Write the campaign record atomically (temporary file, then rename)."""
    path = record_path(summary.store, summary.campaign_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(summary.to_dict(), out, indent=1, default=str)
    os.replace(temporary, path)
    return path


def load_records(store_root: str | os.PathLike[str]) -> list[CampaignSummary]:
    """Every campaign record in the store, oldest first (unreadable ones skipped)."""
    folder = Path(store_root) / RECORDS_DIR
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(CampaignSummary.from_dict(json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: r.started_at)
