"""The unit of farm work and what comes back: :class:`Job`, :class:`BuildResult`, :class:`JobResult`.

A job is a batch of archs for one device in one configuration (runtime, batch
size, input size): the interleaved protocol measures a batch together, and a
device actor runs one job at a time. The driver (``farm.run``) plans jobs,
the actor (``farm.actors``) runs them and returns a :class:`JobResult` whose
rows go straight into the store.

Example:
    >>> job = Job("j1", "cpu-local", "nasbench201", ("a", "b"), runtime="torch")
    >>> job.without({"a"}).archs
    ('b',)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import farm
from agents.base import Artifact
from agents.telemetry import Telemetry
from farm.store import new_measurement_id, utc_now

if TYPE_CHECKING:
    from farm.inventory import Device
    from farm.protocol import Protocol, Summary


@dataclass(frozen=True)
class Job:
    """A batch of ``archs`` for ``device`` in one (runtime, batch_size) configuration.

    ``input_sizes`` gives each arch's input resolution (aligned with ``archs``); it
    differs per arch where the arch carries its own (OFA's ``r``), else every entry
    is ``input_size``. ``attempt`` counts earlier tries that failed with a retryable error.
    ``anchors`` are the job's drift anchors (``farm.anchoring``); its ``anchor_ms`` needs
    an estimate of each, so :meth:`without` keeps them all. ``anchors_added`` are those
    in ``archs`` that the campaign did not ask for: measured for ``anchor_ms`` only,
    not counted as the campaign's archs.
    """

    job_id: str
    device: str
    search_space: str
    archs: tuple[str, ...]
    runtime: str = "torch"
    batch_size: int = 1
    input_size: int = 32
    attempt: int = 0
    input_sizes: tuple[int, ...] = ()
    anchors: tuple[str, ...] = ()
    anchors_added: tuple[str, ...] = ()

    @property
    def requested_archs(self) -> tuple[str, ...]:
        """The archs the campaign asked for (the batch less the anchors added to it)."""
        return tuple(arch for arch in self.archs if arch not in self.anchors_added)

    def size_of(self, arch: str) -> int:
        return self.input_sizes[self.archs.index(arch)] if self.input_sizes else self.input_size

    def artifact(self, arch: str) -> Artifact:
        """The unbuilt artifact for one of the job's archs (eager torch needs nothing more)."""
        return Artifact(self.search_space, arch, self.runtime, self.batch_size, self.size_of(arch))

    def without(self, archs: Iterable[str]) -> "Job":
        """The same job minus ``archs`` (those that already have an outcome)."""
        drop = set(archs)
        kept = [(a, self.size_of(a)) for a in self.archs if a not in drop]
        return replace(self, archs=tuple(a for a, _ in kept), input_sizes=tuple(s for _, s in kept) if self.input_sizes else (),
                       anchors_added=tuple(a for a in self.anchors_added if a not in drop))

    def single(self, index: int) -> "Job":
        """A job for the ``index``-th arch alone (to isolate an arch that breaks its batch), without anchors."""
        arch = self.archs[index]
        return replace(self, job_id=f"{self.job_id}-{index}", archs=(arch,), attempt=0,
                       input_sizes=(self.size_of(arch),) if self.input_sizes else (),
                       anchors=(), anchors_added=())

    def retry(self) -> "Job":
        return replace(self, attempt=self.attempt + 1)


@dataclass
class BuildResult:
    """A built artifact, its bytes (so it can travel to the device's Ray node) and the build time.

    ``error`` is set (and ``artifact.path`` meaningless) when the build or its verification failed.
    """

    artifact: Artifact
    data: bytes | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class JobResult:
    """What a device actor returns for one job.

    ``rows`` hold an outcome (ok, unstable or failed) for some or all archs of
    the job. ``started_at``/``finished_at`` are the actor's wall clock around the
    job; ``dispatched_at``/``stored_at`` the driver's, when it submitted the job and
    when its rows were in the store. ``cpu_s`` is the CPU time the actor's process spent on the job. When ``error`` is set, the archs without a row were not measured:
    the driver retries them if ``retryable``, else decides by ``stage``
    (``connect``: the device is unusable; ``run``: something in the batch).
    """

    job: Job
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    stage: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    dispatched_at: float = 0.0
    stored_at: float = 0.0
    cpu_s: float = 0.0

    @property
    def busy_s(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def outcome_archs(self) -> set[str]:
        return {row["arch"] for row in self.rows}


def base_row(device: "Device", campaign_id: str, artifact: Artifact, protocol: "Protocol", host: str) -> dict[str, Any]:
    """The provenance and configuration columns every row of this farm carries."""
    return {
        "measurement_id": new_measurement_id(),
        "campaign_id": campaign_id,
        "measured_at": utc_now(),
        "source": "farm",
        "device": device.name,
        "device_kind": device.kind,
        "platform": device.platform,
        "runtime": artifact.runtime,
        "search_space": artifact.search_space,
        "arch": artifact.arch,
        "batch_size": artifact.batch_size,
        "input_size": artifact.input_size,
        "threads": device.threads,
        **protocol.row_fields(),
        "host": host or socket.gethostname(),
        "farm_version": farm.__version__,
    }


def measured_row(
    device: "Device",
    campaign_id: str,
    artifact: Artifact,
    protocol: "Protocol",
    summary: "Summary",
    *,
    host: str,
    temperatures: tuple[float | None, float | None] = (None, None),
    telemetry: tuple[Telemetry, Telemetry] | None = None,
) -> dict[str, Any]:
    """A row for a measured artifact: ``ok``, or ``unstable`` when its interval stayed wider than ``max_ci``.

    ``telemetry`` (start, end of the job), where given, fills the temperature, clock and governor columns.
    """
    row = base_row(device, campaign_id, artifact, protocol, host)
    row.update(summary.row_fields())
    row["temperature_start_c"], row["temperature_end_c"] = temperatures
    if telemetry is not None:
        row.update(telemetry_fields(*telemetry))
    row["status"] = summary.status
    row["error"] = summary.instability
    return row


def telemetry_fields(start: Telemetry, end: Telemetry) -> dict[str, Any]:
    """The telemetry columns of a row; ``governor`` joins the distinct governors seen at start and end."""
    governors = sorted({name for reading in (start, end) if reading.governor for name in reading.governor.split(",")})
    return {
        "temperature_start_c": start.temperature_c,
        "temperature_end_c": end.temperature_c,
        "cpu_freq_start_mhz": start.cpu_freq_mhz,
        "cpu_freq_end_mhz": end.cpu_freq_mhz,
        "governor": ",".join(governors) or None,
        "telemetry_dropped": _dropped_note(start, end),
    }


def _dropped_note(start: Telemetry, end: Telemetry) -> str | None:
    """``start: zone:cpu=nan; end: ...``: the readings the row leaves out as impossible, or ``None``."""
    parts = [f"{when}: {', '.join(reading.dropped)}" for when, reading in (("start", start), ("end", end)) if reading.dropped]
    return "; ".join(parts) or None


def failed_row(
    device: "Device", campaign_id: str, artifact: Artifact, protocol: "Protocol", error: str, *, host: str = ""
) -> dict[str, Any]:
    """A row saying ``artifact`` could not be measured on ``device``, and why."""
    row = base_row(device, campaign_id, artifact, protocol, host)
    row["status"] = "failed"
    row["error"] = error
    return row


def rows_by_status(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Count rows per status."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts
