"""A measurement campaign: plan, build, dispatch to device actors, store as results arrive.

:func:`run_campaign` is what ``measure.py`` calls:

0. **Lock.** The campaign holds the store's lock and the locks of the devices
   it measures on this host (``farm.store_lock``) from before it plans until
   its final record is saved, so a second campaign on the same store plans
   only after the first has stored its rows, and two stores never measure on
   the same local cores at once. A lock held by another campaign is waited for
   up to ``lock_wait_s``, then refused with one line naming the holder.
1. **Plan.** For every device, every runtime and batch size it lists, every
   arch: the resume key (``farm.store.RESUME_KEY``). Keys already ``ok`` in the
   store are skipped; the rest are split into jobs of ``job_size`` archs (the
   interleaved protocol measures a job's archs together). Each job also gets
   the space's drift anchors (``farm.anchoring``; by default 3 with the
   interleaved protocol), measured in the same rounds, so that every row
   carries its job's ``anchor_ms`` and ``job_id``.
2. **Build.** Runtimes other than eager torch need built files: build tasks run
   on the cluster's CPUs ``build_ahead`` jobs ahead of each device, deduplicated
   across devices, and a job is dispatched only once its builds are done.
3. **Dispatch.** One actor per device (``farm.actors``), at most
   ``jobs_per_device`` jobs queued on each and ``max_in_flight`` in total.
4. **Store.** Each job's rows are appended as soon as it returns, by a writer
   thread (``farm.writer``) so dispatch never waits for the disk; a crash loses
   at most the jobs in flight and rows not yet written, and a re-run resumes.
5. **Failures.** Retryable errors (``DeviceUnavailable``, ``RunFailed``, a dead
   actor) are retried up to ``max_attempts`` times with exponential back-off;
   the device pauses meanwhile. A permanent error in a batch splits it into
   single-arch jobs so only the culprit fails. A device that fails
   ``down_after`` times in a row, or cannot be connected at all, is marked down:
   its remaining jobs are reported as not measured and the campaign finishes
   with the other devices.

Example (a replay device, which is a simulation):
    >>> from farm.inventory import Device, ReplayConfig   # doctest: +SKIP
    >>> device = Device(name="pixel2-replay", kind="replay",
    ...                 replay=ReplayConfig(table="help_latency.parquet", device="pixel2"))  # doctest: +SKIP
    >>> summary = run_campaign(CampaignConfig("nasbench201", archs, [device], "measurements"))  # doctest: +SKIP
    >>> print(summary.render())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import ray

from farm.actors import AgentFactory, device_resource, start_actor, wait_for_device_nodes
from farm.anchoring import anchor_archs, anchor_count, anchored_batch, stamp_job_rows
from farm.builds import (
    BuildFn, build_capacity, build_key, build_layout, build_task, build_task_options, default_build_fn, needs_build,
)
from farm.campaign_progress import CampaignProgress
from farm.device_records import record_devices
from farm.jobs import Job, JobResult, failed_row
from farm.store import Store
from farm.store_lock import CampaignLocks, WaitNotice, lock_campaign
from farm.summary import CampaignSummary, DeviceSummary, save_record
from farm.writer import StoreWriter

if TYPE_CHECKING:
    from farm.inventory import Device
    from farm.protocol import Protocol

logger = logging.getLogger(__name__)

#: How long a device actor may take to start (worker process, imports) before its device is marked down.
ACTOR_START_TIMEOUT_S = 300.0


def new_campaign_id() -> str:
    """A sortable, unique campaign id: UTC time plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@dataclass
class CampaignConfig:
    """Everything one campaign needs. Devices come from the inventory, archs are canonical strings.

    ``anchors``: drift anchors added to every job; ``None`` is 3 for the interleaved
    protocol and 0 for the sequential ones (``farm.anchoring.anchor_count``).
    ``lock_wait_s``: how long to wait for another campaign's store or device lock
    before refusing (0: refuse at once); see ``farm.store_lock``.
    """

    search_space: str
    archs: Sequence[str]
    devices: Sequence["Device"]
    store_root: str | os.PathLike[str]
    protocol: str | None = None
    warmup: int | None = None
    runs: int | None = None
    trim: float | None = None
    rounds: int | None = None
    quantile: float | None = None
    job_size: int = 50
    anchors: int | None = None
    jobs_per_device: int = 2
    max_in_flight: int | None = None
    max_attempts: int = 3
    backoff_s: float = 2.0
    down_after: int = 5
    build_ahead: int = 2
    seed: int = 0
    campaign_id: str = field(default_factory=new_campaign_id)
    artifact_dir: str | None = None
    progress: bool = True
    lock_wait_s: float = 0.0
    node_wait_s: float = 60.0

    def protocol_overrides(self) -> dict[str, Any]:
        values = {
            "warmup": self.warmup, "runs": self.runs, "trim": self.trim, "rounds": self.rounds, "quantile": self.quantile,
        }
        return {k: v for k, v in values.items() if v is not None}


def make_protocol(device: "Device", config: CampaignConfig) -> "Protocol":
    """The device's protocol settings, with the campaign's ``--protocol`` and overrides applied."""
    from farm import protocol as protocols

    settings = device.protocol
    if config.protocol is not None and config.protocol != settings.name:
        # The device's warm-up/runs/rounds/trim were chosen for its own protocol (e.g. per-burst
        # counts for interleaved); another protocol starts from its published defaults and keeps
        # only the device's stability rule.
        return protocols.make(
            config.protocol, max_ci=settings.max_ci, max_repeats=settings.max_repeats, **config.protocol_overrides()
        )
    return protocols.make(settings, **config.protocol_overrides())


def input_size_for(device: "Device", search_space: str, arch: str) -> int:
    """The inventory's ``input_size``, else the resolution the space gives the arch (OFA: its ``r``)."""
    from farm import spaces

    return device.input_size or spaces.get(search_space).input_shape(arch)[-1]


@dataclass
class DevicePlan:
    """One device's share of a campaign: what was asked, what the store already had, the jobs."""

    device: "Device"
    protocol: "Protocol"
    anchors: tuple[str, ...] = ()
    requested: int = 0
    skipped: int = 0
    jobs: list[Job] = field(default_factory=list)


def plan(config: CampaignConfig, done_keys: set[tuple[Any, ...]]) -> list[DevicePlan]:
    """Split the campaign into jobs per device, skipping resume keys already ``ok``."""
    archs = list(dict.fromkeys(config.archs))
    plans = []
    for device in config.devices:
        protocol = make_protocol(device, config)
        anchors = anchor_archs(config.search_space, anchor_count(config.anchors, protocol.name))
        sizes = {arch: input_size_for(device, config.search_space, arch) for arch in (*archs, *anchors)}
        device_plan = DevicePlan(device, protocol, anchors)
        for runtime in device.runtimes:
            for batch_size in device.batch_sizes:
                pending = [
                    arch
                    for arch in archs
                    if (device.name, runtime, batch_size, sizes[arch], config.search_space, arch, protocol.label)
                    not in done_keys
                ]
                device_plan.requested += len(archs)
                device_plan.skipped += len(archs) - len(pending)
                for start in range(0, len(pending), config.job_size):
                    batch, added = anchored_batch(pending[start : start + config.job_size], anchors)
                    device_plan.jobs.append(
                        Job(
                            job_id=f"{device.name}-{runtime}-b{batch_size}-{start // config.job_size:05d}",
                            device=device.name,
                            search_space=config.search_space,
                            archs=batch,
                            runtime=runtime,
                            batch_size=batch_size,
                            input_size=sizes[batch[0]],
                            input_sizes=tuple(sizes[arch] for arch in batch),
                            anchors=anchors,
                            anchors_added=added,
                        )
                    )
        plans.append(device_plan)
    return plans


@dataclass
class _DeviceState:
    plan: DevicePlan
    summary: DeviceSummary
    actor: Any = None
    queue: deque[Job] = field(default_factory=deque)
    in_flight: int = 0
    paused_until: float = 0.0
    consecutive_failures: int = 0
    latencies: list[float] = field(default_factory=list)
    last_finish: float | None = None

    @property
    def device(self) -> "Device":
        return self.plan.device

    @property
    def down(self) -> bool:
        return self.summary.down_reason is not None


class Campaign:
    """The driver of one campaign. Use :func:`run_campaign`; this class holds its state.

    ``agent_factory`` and ``build_fn`` are injectable (tests, other agents, other builders).
    ``on_job`` is called with every :class:`JobResult` after its rows are stored.
    ``locks``: the campaign's locks when the caller took them already (``measure.py`` does, before
    Ray starts); otherwise :meth:`run` takes them and releases them when it returns.
    """

    def __init__(
        self,
        config: CampaignConfig,
        *,
        agent_factory: AgentFactory | None = None,
        build_fn: BuildFn = default_build_fn,
        on_job: Callable[[JobResult], None] | None = None,
        locks: CampaignLocks | None = None,
    ) -> None:
        self.config = config
        self.locks = locks
        self.store = Store(config.store_root)
        self.agent_factory = agent_factory
        self.build_fn = build_fn
        self.on_job = on_job
        self.states: list[_DeviceState] = []
        self.in_flight: dict[Any, tuple[_DeviceState, Job, Any]] = {}
        self.dispatched_at: dict[str, float] = {}
        self.build_refs: dict[tuple[Any, ...], Any] = {}
        self.build_users: dict[tuple[Any, ...], int] = {}
        self.job_builds: dict[str, list[Any]] = {}
        self.build_seconds: dict[tuple[Any, ...], float] = {}
        self.build_failures: set[tuple[Any, ...]] = set()
        self.progress = CampaignProgress(0, "", enabled=False)
        self.build_cpus: float = 1
        self.build_options: dict[str, Any] = build_task_options({}, num_cpus=1)
        self.measure_started: float | None = None
        self.writer: StoreWriter | None = None
        self.summary = CampaignSummary(
            campaign_id=config.campaign_id,
            search_space=config.search_space,
            store=str(config.store_root),
            started_at=datetime.now(timezone.utc).isoformat(),
            archs=len(dict.fromkeys(config.archs)),
            protocol_overrides={"protocol": config.protocol, **config.protocol_overrides()},
        )

    # ------------------------------------------------------------------ run
    def run(self) -> CampaignSummary:
        """Lock (unless the caller holds the locks), plan, measure, store; the locks go after the final record."""
        config = self.config
        if self.locks is not None:
            if not self.locks.covers(config.store_root, config.campaign_id):
                raise ValueError(f"the locks given are not held for campaign {config.campaign_id} on {config.store_root}")
            return self._run_locked()
        with lock_campaign(config.store_root, config.devices, config.campaign_id,
                           wait_s=config.lock_wait_s, on_wait=_log_wait):
            return self._run_locked()

    def _run_locked(self) -> CampaignSummary:
        started = time.monotonic()
        plans = plan(self.config, self.store.done_keys(search_space=self.config.search_space))
        record_devices(self.config.store_root, [p.device for p in plans])  # default targets (issue 10)
        for device_plan in plans:
            summary = DeviceSummary(
                device_plan.device.name,
                device_plan.device.kind,
                requested=device_plan.requested,
                skipped=device_plan.skipped,
                protocol=device_plan.protocol.describe(),
            )
            self.states.append(_DeviceState(device_plan, summary, queue=deque(device_plan.jobs)))
        self.summary.devices = [s.summary for s in self.states]
        save_record(self.summary)
        pending = sum(len(job.requested_archs) for s in self.states for job in s.queue)
        self.progress = CampaignProgress(pending, f"campaign {self.config.campaign_id}", enabled=self.config.progress)
        self.writer = StoreWriter(self.store)
        try:
            self._start_actors()
            self._wait_for_actors()
            self.measure_started = time.monotonic()
            while self._loop_once():
                pass
            self._count_stored(self.writer.close())
            self.summary.status = "finished"
        except BaseException:
            self.summary.status = "interrupted"
            if self.writer.running:
                self._count_stored(self.writer.close())  # keep what has come back
            raise
        finally:
            self.progress.close()
            for state in self.states:
                self._finish_device(state)
            self._stop_actors()
            self.summary.wall_s = time.monotonic() - started
            self.summary.builds = len(self.build_seconds)
            self.summary.build_s = sum(self.build_seconds.values())
            self.summary.build_failures = len(self.build_failures)
            self.summary.finished_at = datetime.now(timezone.utc).isoformat()
            save_record(self.summary)
        return self.summary

    def _start_actors(self) -> None:
        wait_for_device_nodes([s.device for s in self.states if s.queue], self.config.node_wait_s)
        available = ray.cluster_resources()
        self._choose_build_cpus(available)
        for state in self.states:
            if not state.queue:
                continue
            device = state.device
            resource = device_resource(device.name)
            if device.node and available.get(resource, 0) < 1:
                self._mark_down(
                    state,
                    f"no Ray node offers resource {resource!r} (inventory node {device.node!r}) "
                    f"after {self.config.node_wait_s:g} s; "
                    f"on that node run: ray start --address=<head> --resources='{{\"{resource}\": 1}}'",
                )
                continue
            state.actor = self._new_actor(state)

    def _choose_build_cpus(self, available: dict[str, float]) -> None:
        """One CPU per build task, unless the cpu devices' actors hold every CPU of the cluster.

        Then build tasks could never be scheduled; they run without a CPU reservation
        instead (beside the measurements, which they may perturb) and a warning says so.
        """
        needs = any(needs_build(r) for s in self.states if s.queue for r in s.device.runtimes)
        held = sum(s.device.threads for s in self.states if s.queue and s.device.kind == "cpu")
        capacity = build_capacity(ray.nodes())
        if needs and capacity - held < 1:
            self.build_cpus = 0
            logger.warning(
                "the cpu devices hold all %d CPUs of the build nodes: builds run beside the measurements "
                "and may perturb them; give Ray more CPUs (ray start --num-cpus) or measure fewer cpu devices",
                int(capacity),
            )
        self.build_options = build_task_options(available, num_cpus=self.build_cpus)

    def _wait_for_actors(self) -> None:
        """Start every actor and connect every device, all at once, before the clock for idle time starts.

        A device that cannot be used at all (a permanent connection error) is marked down; a
        retryable one is tried again by its first job.
        """
        waiting = {state.actor.start.remote(): state for state in self.states if state.actor is not None}
        for ref, state in waiting.items():
            try:
                answer = ray.get(ref, timeout=ACTOR_START_TIMEOUT_S)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as error:
                self._mark_down(state, f"device actor did not start: {type(error).__name__}: {error}".splitlines()[0])
                continue
            if answer["error"] and not answer["retryable"]:
                self._refuse_device(state, f"cannot use the device: {answer['error']}")

    def _refuse_device(self, state: _DeviceState, reason: str) -> None:
        """A device refused at connection: each queued arch gets a ``failed`` row saying why, then it is down."""
        self._note_error(state, reason)
        jobs = list(state.queue)
        state.queue.clear()
        self._mark_down(state, reason)
        for job in jobs:
            rows = self._failed_rows(state, job, reason)
            self.writer.submit(rows, tag=(state, JobResult(job=job, error=reason, stage="connect"), rows))

    def _new_actor(self, state: _DeviceState) -> Any:
        return start_actor(
            state.device, self.config.campaign_id, state.plan.protocol,
            agent_factory=self.agent_factory, artifact_dir=self.config.artifact_dir,
        )

    # ----------------------------------------------------------- dispatch
    def _loop_once(self) -> bool:
        """Dispatch what can go, wait for one result or timer; ``False`` once everything is done."""
        self._count_stored(self.writer.completed())
        self._schedule_builds()
        now = time.monotonic()
        limit = self.config.max_in_flight or self.config.jobs_per_device * max(1, len(self.states))
        waiting_builds: list[Any] = []
        next_wake: float | None = None
        for state in self.states:
            while (
                not state.down
                and state.queue
                and state.in_flight < self.config.jobs_per_device
                and len(self.in_flight) < limit
            ):
                if now < state.paused_until:
                    next_wake = min(next_wake or state.paused_until, state.paused_until)
                    break
                job = state.queue[0]
                refs = self.job_builds.get(job.job_id, [])
                if refs:
                    ready, not_ready = ray.wait(refs, num_returns=len(refs), timeout=0)
                    if not_ready:
                        waiting_builds.extend(not_ready)
                        break
                state.queue.popleft()
                ref = state.actor.run_job.remote(job, *refs)
                self.in_flight[ref] = (state, job, state.actor)
                self.dispatched_at[job.job_id] = time.time()
                state.in_flight += 1
        if not self.in_flight and not waiting_builds and next_wake is None:
            return any(s.queue and not s.down for s in self.states)
        timeout = 1.0 if next_wake is None else max(0.0, min(1.0, next_wake - now))
        watched = list(dict.fromkeys(list(self.in_flight) + waiting_builds))
        if not watched:
            time.sleep(timeout)
            return True
        ready, _ = ray.wait(watched, num_returns=1, timeout=timeout)
        if ready:
            done, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0) if self.in_flight else ([], [])
            self._store_results([self._collect(ref) for ref in done])
        return True

    def _schedule_builds(self) -> None:
        """Submit build tasks for the next ``build_ahead`` jobs of every device, round-robin."""
        for rank in range(self.config.build_ahead):
            for state in self.states:
                if state.down or rank >= len(state.queue):
                    continue
                job = state.queue[rank]
                if job.job_id in self.job_builds or not needs_build(job.runtime):
                    continue
                refs = []
                layout = build_layout(job.runtime, state.device.tflite_layout)
                for arch in job.archs:
                    artifact = job.artifact(arch)
                    key = build_key(artifact, layout)
                    if key not in self.build_refs:
                        self.build_refs[key] = build_task.options(**self.build_options).remote(
                            self.build_fn, artifact, self.config.artifact_dir or _default_build_cache(), layout
                        )
                    refs.append(self.build_refs[key])
                    self.build_users[key] = self.build_users.get(key, 0) + 1
                self.job_builds[job.job_id] = refs

    # ------------------------------------------------------------- results
    def _collect(self, ref: Any) -> tuple[_DeviceState, JobResult, list[dict[str, Any]]]:
        """Fetch one finished job; return its device, result and every row it produced."""
        state, job, actor = self.in_flight.pop(ref)
        state.in_flight -= 1
        try:
            result: JobResult = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as error:
            result = JobResult(job=job, error=f"device actor died: {error}".splitlines()[0],
                               error_type=type(error).__name__, retryable=True, stage="actor")
            if state.actor is actor:  # the first of its jobs to report the death replaces it, once
                ray.kill(actor)
                state.actor = self._new_actor(state)
        except ray.exceptions.RayTaskError as error:
            result = JobResult(job=job, error=f"farm bug in the device actor: {error}".splitlines()[0],
                               error_type=type(error).__name__, retryable=False, stage="actor")
        result.dispatched_at = self.dispatched_at.pop(job.job_id, 0.0)
        self._record_builds(state, job)
        state.last_finish = time.monotonic()
        state.summary.busy_s += result.busy_s
        rows = list(result.rows) + self._resolve_failure(state, result)
        stamp_job_rows(rows, job)
        return state, result, rows

    def _store_results(self, collected: list[tuple[_DeviceState, JobResult, list[dict[str, Any]]]]) -> None:
        """Hand the rows of every job that has come back to the writer thread (one append for all)."""
        for state, result, job_rows in collected:
            self.writer.submit(job_rows, tag=(state, result, job_rows))

    def _count_stored(self, completions: list[tuple[Any, float]]) -> None:
        """Count rows the writer has made durable; progress, build times and ``on_job`` follow."""
        for (state, result, job_rows), stored_at in completions:
            result.stored_at = stored_at
            counted = [row for row in job_rows if row["arch"] not in result.job.anchors_added]
            for row in counted:
                self._count(state, row)
            for row in job_rows:
                if row["status"] == "failed" and row["arch"] in result.job.anchors_added:
                    self._note_error(state, f"anchor: {row.get('error') or ''}")
            measured = sum(row["status"] in ("ok", "unstable") for row in counted)
            self.progress.job_done(state.device.name, result.job.job_id, ok=measured, failed=len(counted) - measured)
            if self.on_job is not None:
                self.on_job(result)

    def _resolve_failure(self, state: _DeviceState, result: JobResult) -> list[dict[str, Any]]:
        """Requeue, split or give up on the archs of ``result.job`` that got no row; return failed rows."""
        if result.error is None:
            state.consecutive_failures = 0
            return []
        remaining = result.job.without(result.outcome_archs())
        self._note_error(state, result.error)
        if not remaining.requested_archs:
            return []
        if result.retryable:
            state.consecutive_failures += 1
            if state.consecutive_failures >= self.config.down_after:
                self._mark_down(state, f"{state.consecutive_failures} failures in a row, last: {result.error}")
                return self._failed_rows(state, remaining, f"{result.error} (device marked down)")
            if remaining.attempt + 1 >= self.config.max_attempts:
                return self._failed_rows(state, remaining, f"{result.error} (after {self.config.max_attempts} attempts)")
            state.paused_until = time.monotonic() + self.config.backoff_s * 2**remaining.attempt
            state.queue.appendleft(remaining.retry())
            return []
        if result.stage == "connect":
            self._mark_down(state, f"cannot use the device: {result.error}")
            return self._failed_rows(state, remaining, result.error)
        if len(remaining.archs) > 1:  # each requested arch alone, without anchors, to find the culprit
            for index in reversed(range(len(remaining.archs))):
                if remaining.archs[index] not in remaining.anchors_added:
                    state.queue.appendleft(remaining.single(index))
            return []
        return self._failed_rows(state, remaining, result.error)

    def _failed_rows(self, state: _DeviceState, job: Job, error: str) -> list[dict[str, Any]]:
        """A ``failed`` row for each arch of ``job`` the campaign asked for (anchors it added get none)."""
        rows = [
            failed_row(state.device, self.config.campaign_id, job.artifact(arch), state.plan.protocol, error)
            for arch in job.requested_archs
        ]
        stamp_job_rows(rows, job)
        return rows

    def _mark_down(self, state: _DeviceState, reason: str) -> None:
        if state.down:
            return
        state.summary.down_reason = reason
        not_measured = sum(len(job.requested_archs) for job in state.queue)
        state.summary.not_measured += not_measured
        state.queue.clear()
        self.progress.not_measured(state.device.name, not_measured, "marked down")
        logger.warning("device %s marked down: %s", state.device.name, reason)

    def _count(self, state: _DeviceState, row: dict[str, Any]) -> None:
        status = row["status"]
        if status in ("ok", "unstable"):
            state.summary.measured += 1
            state.summary.unstable += status == "unstable"
            if row.get("latency_ms") is not None:
                state.latencies.append(float(row["latency_ms"]))
        else:
            state.summary.failed += 1
            self._note_error(state, row.get("error") or "")

    def _note_error(self, state: _DeviceState, message: str) -> None:
        if message and message not in state.summary.errors and len(state.summary.errors) < 10:
            state.summary.errors.append(message)

    def _record_builds(self, state: _DeviceState, job: Job) -> None:
        """Note the build time of the job's artifacts; drop build results no queued job still needs.

        Dropping the last reference frees the artifact's bytes in Ray's object store (OFA
        .tflite files are tens of MB each). A later job that needs it again rebuilds it,
        which ``farm.build`` answers from its on-disk cache.
        """
        refs = self.job_builds.pop(job.job_id, None)
        if not refs:
            return
        layout = build_layout(job.runtime, state.device.tflite_layout)
        for arch, ref in zip(job.archs, refs):
            key = build_key(job.artifact(arch), layout)
            if key not in self.build_seconds:
                result = ray.get(ref)
                self.build_seconds[key] = result.seconds
                if result.error:
                    self.build_failures.add(key)
            self.build_users[key] -= 1
            if self.build_users[key] == 0:
                del self.build_users[key], self.build_refs[key]

    def _finish_device(self, state: _DeviceState) -> None:
        summary = state.summary
        if state.latencies:
            summary.median_latency_ms = statistics.median(state.latencies)
        if state.last_finish is not None and self.measure_started is not None:
            window = state.last_finish - self.measure_started
            summary.idle_share = max(0.0, 1.0 - summary.busy_s / window) if window > 0 else 0.0
        leftover = sum(len(job.requested_archs) for job in state.queue)
        if leftover:
            summary.not_measured += leftover
            state.queue.clear()
    def _stop_actors(self) -> None:
        """Let every agent close its connections, then end the actors."""
        actors = [state.actor for state in self.states if state.actor is not None]
        closing = [actor.close.remote() for actor in actors]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=30)
        for actor in actors:
            ray.kill(actor)
        for state in self.states:
            state.actor = None


def _log_wait(notice: WaitNotice) -> None:
    logger.warning("campaign %s", notice.render())


def _default_build_cache() -> str:
    return str(Path.home() / ".cache" / "latfarm" / "builds")


def run_campaign(
    config: CampaignConfig,
    *,
    agent_factory: AgentFactory | None = None,
    build_fn: BuildFn = default_build_fn,
    on_job: Callable[[JobResult], None] | None = None,
    locks: CampaignLocks | None = None,
) -> CampaignSummary:
    """Run a campaign on the connected Ray cluster (see :func:`connect`) and return its summary.

    ``locks``: the campaign's locks if the caller took them (``farm.store_lock.lock_campaign``);
    otherwise the campaign takes them itself, waiting up to ``config.lock_wait_s``.
    """
    return Campaign(config, agent_factory=agent_factory, build_fn=build_fn, on_job=on_job, locks=locks).run()


def connect(address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None) -> bool:
    """Connect to a Ray cluster, else start a local one; ``True`` when this call started it.

    In order: ``address``; ``RAY_ADDRESS`` (``ray submit`` and ``ray job submit`` set it);
    the cluster a ``ray start`` on this machine recorded (as on the head node of
    ``cluster.yaml``); otherwise a new local Ray with ``num_cpus`` CPUs, which the
    caller shuts down.
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or _started_cluster_address(temp_dir)
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if num_cpus is not None:
        options["num_cpus"] = num_cpus
    if temp_dir is not None:
        options["_temp_dir"] = temp_dir
    ray.init(**options)
    return True


def _started_cluster_address(temp_dir: str | None) -> str | None:
    """The address a ``ray start`` on this machine recorded, if any (Ray's own lookup)."""
    try:
        from ray._private.services import find_bootstrap_address

        return find_bootstrap_address(temp_dir)
    except Exception:  # noqa: BLE001 - a private Ray API; without it, start a local Ray
        return None
