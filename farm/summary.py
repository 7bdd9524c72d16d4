"""What a campaign did, per device: the one-screen summary, ``--json``, and the campaign record.

The record is the summary as JSON in ``<store>/_campaigns/<campaign_id>.json``
(written atomically at the start with status ``running`` and again at the end,
``finished`` or ``interrupted``). It names the host, process id and command line
of the campaign. A campaign killed with ``kill -9`` never writes its end, so its
record stays ``running`` with 0 measured: :func:`campaign_views` therefore takes
every campaign's counts from its rows in the store (``campaign_id`` column) and
tells a record whose process is gone (``interrupted``) from one still running,
without rewriting any record. The store's Parquet reader ignores the ``_campaigns`` folder.

Example:
    >>> s = DeviceSummary("cpu-local", "cpu", requested=10, skipped=2, measured=7, failed=1)
    >>> s.outcomes
    8
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from farm.atomic import write_json_atomic

RECORDS_DIR = "_campaigns"
#: A campaign id, matched whole (``fullmatch``): it names the record's file, so no newline, no path separator.
CAMPAIGN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: A record larger than this is not one the farm wrote.
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: Record statuses of a campaign that did not run to its end.
UNFINISHED = frozenset({"running", "interrupted"})


class RecordError(ValueError):
    """A campaign record that cannot be read: not JSON, not a record, or a bad campaign id."""


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
    #: Where the campaign runs: this process when the summary is made, so ``farm status`` can tell a
    #: killed campaign (process gone) from a running one. Older records have neither.
    host: str = field(default_factory=socket.gethostname)
    pid: int | None = field(default_factory=os.getpid)
    #: The command line that started it (re-running it resumes the campaign); empty when unknown.
    command: list[str] = field(default_factory=lambda: list(sys.argv))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CampaignSummary":
        """A summary from its record; a record written before ``host``, ``pid`` and ``command`` leaves them unknown.

        Raises ``TypeError`` or ``ValueError`` for data that is not a record.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a campaign record is a JSON object, not {type(data).__name__}")
        devices = [DeviceSummary(**d) for d in data.get("devices", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{"host": "", "pid": None, "command": [], **{k: v for k, v in data.items() if k in known},
                      "devices": devices})

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
    """``<store>/_campaigns/<campaign_id>.json``; ``ValueError`` for an id that is not one whole slug.

    Example:
        >>> record_path("m", "20261123T140201Z-123319").as_posix()
        'm/_campaigns/20261123T140201Z-123319.json'
        >>> record_path("m", "c1\\n")
        Traceback (most recent call last):
        ValueError: campaign id 'c1\\n' is not letters, digits, '.', '_' or '-' (at most 200, starting with a letter or digit)
    """
    if not CAMPAIGN_ID.fullmatch(campaign_id):
        raise ValueError(f"campaign id {campaign_id!r} is not letters, digits, '.', '_' or '-' "
                         "(at most 200, starting with a letter or digit)")
    return Path(store_root) / RECORDS_DIR / f"{campaign_id}.json"


def read_record(path: str | os.PathLike[str]) -> CampaignSummary:
    """The campaign record at ``path``; :class:`RecordError` saying why when it cannot be used.

    A record is at most :data:`MAX_RECORD_BYTES` of UTF-8 JSON, a campaign summary whose
    ``campaign_id`` is a whole slug and the file's name.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise RecordError(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB")
        summary = CampaignSummary.from_dict(json.loads(data.decode("utf-8")))
    except RecordError:
        raise
    except (OSError, ValueError, TypeError, RecursionError) as error:
        raise RecordError(f"{type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    if not isinstance(summary.campaign_id, str) or not CAMPAIGN_ID.fullmatch(summary.campaign_id):
        raise RecordError(f"campaign_id {summary.campaign_id!r} is not one whole slug")
    if summary.campaign_id != path.stem:
        raise RecordError(f"campaign_id {summary.campaign_id!r} does not match the file name")
    return summary


def save_record(summary: CampaignSummary) -> Path:
    """Write the campaign record atomically (temporary file, then rename)."""
    return write_json_atomic(summary.to_dict(), record_path(summary.store, summary.campaign_id))


def record_files(store_root: str | os.PathLike[str]) -> list[Path]:
    """The record files of a store (``_campaigns/*.json``, temporary dot-files excluded)."""
    folder = Path(store_root) / RECORDS_DIR
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def load_records(store_root: str | os.PathLike[str]) -> list[CampaignSummary]:
    """Every campaign record in the store, oldest first (unreadable ones skipped: ``farm check`` lists them)."""
    records = []
    for path in record_files(store_root):
        try:
            records.append(read_record(path))
        except RecordError:
            continue
    return sorted(records, key=lambda r: str(r.started_at))


@dataclass(frozen=True)
class CampaignView:
    """A campaign as ``farm status`` shows it: its record with the counts of its rows, and its state.

    ``state`` is the record's status, except that a ``running`` record whose process is gone is
    ``interrupted`` and one whose process cannot be checked from here (another host, an older
    record without a process id) is ``unfinished``. ``resumed_by`` names a later finished campaign
    with the same command, which measured what this one left.
    """

    record: CampaignSummary
    state: str
    stored: Mapping[str, int]
    resumed_by: str | None = None

    @property
    def unfinished(self) -> bool:
        """Stopped before its end (killed, Ctrl-C, crashed), and not resumed since."""
        return self.state in ("interrupted", "unfinished") and self.resumed_by is None

    def state_line(self) -> str:
        """Its state in words, with where it ran."""
        where = f"process {self.record.pid} on {self.record.host}" if self.record.pid else "its process"
        if self.record.status == "running" and self.state == "interrupted":
            return f"interrupted: {where} is gone (killed), no end recorded"
        if self.state == "unfinished":
            return f"unfinished: no end recorded; killed, or still running as {where}"
        if self.state == "running":
            return f"running as {where}"
        return self.state

    def resume_hint(self) -> str:
        """How to resume it: its command again (archs already measured ok are skipped)."""
        if self.record.command:
            program = Path(self.record.command[0]).name
            program = "python measure.py" if program == "measure.py" else shlex.quote(program)
            command = " ".join([program, *map(shlex.quote, self.record.command[1:])])
            return f"resume: {command}  (archs already measured ok are skipped)"
        return "resume: re-run the measure.py command that started it (archs already measured ok are skipped)"

    def counts_line(self) -> str:
        """``12 ok, 1 unstable, 0 failed rows stored`` and, per device, ``cpu-local 12/1/0``."""
        stored = self.stored
        devices = ", ".join(f"{d.device} {d.measured - d.unstable}/{d.unstable}/{d.failed}" for d in self.record.devices)
        return (f"{stored.get('ok', 0)} ok, {stored.get('unstable', 0)} unstable, {stored.get('failed', 0)} failed "
                f"rows stored" + (f" (ok/unstable/failed: {devices})" if devices else ""))

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "state": self.state, "stored": dict(self.stored),
                "resumed_by": self.resumed_by, "unfinished": self.unfinished, "resume": self.resume_hint()}


def campaign_views(records: list[CampaignSummary], rows: Any, *, host: str | None = None) -> list[CampaignView]:
    """Each record with the counts of its rows (frame columns ``campaign_id, device, status``) and its state.

    Per device, ``measured``, ``unstable`` and ``failed`` are replaced by the rows' counts (a
    device with rows but not in the record is added); the record file is not touched.

    Example:
        >>> import pandas as pd
        >>> killed = CampaignSummary("c1", "nasbench201", "m", started_at="1", host="elsewhere", pid=None,
        ...                          devices=[DeviceSummary("cpu-local", "cpu", requested=3)])
        >>> rows = pd.DataFrame({"campaign_id": ["c1", "c1"], "device": ["cpu-local"] * 2, "status": ["ok", "failed"]})
        >>> (view,) = campaign_views([killed], rows)
        >>> view.state, view.unfinished, view.counts_line()
        ('unfinished', True, '1 ok, 0 unstable, 1 failed rows stored (ok/unstable/failed: cpu-local 1/0/1)')
    """
    this_host = host or socket.gethostname()
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (campaign, device, status), size in rows.groupby(["campaign_id", "device", "status"]).size().items():
        counts.setdefault(campaign, {}).setdefault(device, {})[status] = int(size)
    views = []
    for record in records:
        per_device = counts.get(record.campaign_id, {})
        devices = [_with_counts(d, per_device.get(d.device, {})) for d in record.devices]
        listed = {d.device for d in record.devices}
        devices += [_with_counts(DeviceSummary(name, ""), c) for name, c in sorted(per_device.items()) if name not in listed]
        stored = {status: sum(c.get(status, 0) for c in per_device.values()) for status in ("ok", "unstable", "failed")}
        views.append(CampaignView(replace(record, devices=devices), _state(record, this_host), stored))
    finished_commands = [(v.record.started_at, v.record.command, v.record.campaign_id)
                         for v in views if v.state == "finished" and v.record.command]
    for index, view in enumerate(views):
        later = [cid for started, command, cid in finished_commands
                 if command == view.record.command and str(started) > str(view.record.started_at)]
        if view.state in ("interrupted", "unfinished") and later:
            views[index] = replace(view, resumed_by=later[0])
    return views


def _with_counts(device: DeviceSummary, counts: Mapping[str, int]) -> DeviceSummary:
    unstable = counts.get("unstable", 0)
    return replace(device, measured=counts.get("ok", 0) + unstable, unstable=unstable, failed=counts.get("failed", 0))


def _state(record: CampaignSummary, this_host: str) -> str:
    if record.status != "running":
        return record.status
    if record.host != this_host or not isinstance(record.pid, int) or record.pid <= 0:
        return "unfinished"
    return "running" if process_alive(record.pid, record.started_at) else "interrupted"


def process_alive(pid: int, started_at: str = "") -> bool:
    """Whether process ``pid`` of this host exists and is not a newer process that reused the id.

    With ``/proc`` (Linux), a process started more than a minute after ``started_at`` (ISO time)
    is a reused id, so the campaign's own process is gone.

    Example:
        >>> process_alive(os.getpid()), process_alive(os.getpid(), "1970-01-01T00:00:00+00:00")
        (True, False)
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except OverflowError:
        return False
    try:
        started = datetime.fromisoformat(started_at).timestamp()
    except (TypeError, ValueError):
        return True
    born = _process_start(pid)
    return born is None or born <= started + 60.0


def _process_start(pid: int) -> float | None:
    """The start time (epoch seconds) of ``pid`` from ``/proc``, None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
