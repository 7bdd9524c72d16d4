"""One Ray actor per device: it owns the device's agent and runs one job at a time.

:class:`DeviceWorker` is plain Python (testable without Ray); :func:`start_actor`
wraps it as a Ray actor with ``max_concurrency=1``, so no two jobs ever share
a device. Placement is explicit for every device:

- When the inventory names the Ray ``node`` a device is attached to, the actor
  asks for the custom resource ``device:<name>``, which only that node offers
  (``ray start --resources='{"device:rpi4-a": 1}'``): the actor runs next to
  its device.
- A device with no ``node`` is driven by the head, where ``measure.py`` runs
  and where :func:`farm.inventory.load` checked its files (replay table, SSH
  and adb keys): its actor asks for a sliver of ``node:__internal_head__``, the
  resource Ray gives the head node alone (``farm.node_resources.on_head``; Ray
  Serve and Ray Train pin their head-only actors the same way). A plain local ``ray.init()`` is its own head,
  so nothing changes on one machine. A ``cpu`` or ``cuda`` device without
  ``node`` therefore measures the head's own CPU or GPU, never a worker's.

:func:`wait_for_device_nodes` waits, up to a timeout, for the nodes that offer
the devices' resources to join, and names the devices whose node never did,
so a campaign reports them instead of waiting on an actor that cannot be placed.

A job goes through the stages *connect* (create the agent and probe it, once,
and again after a retryable failure), *prepare* (per artifact; a rejected
artifact becomes a ``failed`` row and the rest of the batch goes on) and *run*
(``farm.protocol.measure_batch`` over the whole batch). Hygiene (affinity,
cool-down, temperature limit) is the agent's business, done on the device at
the start of each ``run``; the actor records the telemetry (temperature, clock, governor) before and after
each job in the rows. Errors come back inside the :class:`~farm.jobs.JobResult`,
typed, never raised, so the driver decides about retries.

Example:
    >>> actor_options_for(kind="replay", threads=1, node="usb-hub", name="pixel2-replay")
    {'num_cpus': 0, 'max_concurrency': 1, 'max_restarts': 0, 'resources': {'device:pixel2-replay': 1}}
    >>> actor_options_for(kind="cpu", threads=2, node=None, name="cpu-local")["resources"]
    {'node:__internal_head__': 0.001}
"""

from __future__ import annotations

import logging
import socket
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import ray

from agents.base import Agent, AgentError, ArtifactRejected, Artifact
from agents.telemetry import Telemetry
from farm.builds import materialize
from farm.jobs import BuildResult, Job, JobResult, failed_row, measured_row
from farm.node_resources import device_resource, on_head

if TYPE_CHECKING:
    from farm.inventory import Device
    from farm.protocol import Protocol

logger = logging.getLogger(__name__)

AgentFactory = Callable[["Device", str], Agent]


#: How long :func:`wait_for_device_nodes` waits by default for a device's node to join the cluster.
NODE_JOIN_TIMEOUT_S = 60.0


def actor_options_for(*, kind: str, threads: int, node: str | None, name: str) -> dict[str, Any]:
    """Ray actor options for a device: its CPUs and where it runs.

    A ``cpu`` device measures on the cores of its own node, so its actor holds
    ``threads`` CPUs and build tasks do not run beside a measurement there.
    Other devices are remote hardware: their actors hold no CPU. With ``node``
    the actor needs ``device:<name>`` (only that node offers it); without, it
    runs on the head (:func:`on_head`).
    """
    options: dict[str, Any] = {
        "num_cpus": threads if kind == "cpu" else 0,
        "max_concurrency": 1,
        "max_restarts": 0,
        "resources": {device_resource(name): 1} if node else on_head(),
    }
    return options


def missing_device_nodes(devices: Iterable["Device"], cluster_resources: Mapping[str, float]) -> list[str]:
    """Names of the devices with a ``node`` whose ``device:<name>`` no node of the cluster offers.

    Example:
        >>> from farm.inventory import Device
        >>> devices = [Device(name="pi-a", kind="cpu", node="pi-host"), Device(name="cpu-local", kind="cpu")]
        >>> missing_device_nodes(devices, {"CPU": 2.0})
        ['pi-a']
        >>> missing_device_nodes(devices, {"CPU": 2.0, "device:pi-a": 1.0})
        []
    """
    return [d.name for d in devices if d.node and cluster_resources.get(device_resource(d.name), 0) < 1]


def wait_for_device_nodes(
    devices: Iterable["Device"],
    timeout_s: float = NODE_JOIN_TIMEOUT_S,
    *,
    poll_s: float = 0.5,
    cluster_resources: Callable[[], Mapping[str, float]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Wait up to ``timeout_s`` for every device's node to offer ``device:<name>``; return the names still missing.

    Devices without ``node`` run on the head and are never missing. Worker nodes
    join a cluster after its head (``ray up`` starts them one by one), so a
    campaign started right after ``ray up`` waits for them here; a node that
    never joins costs ``timeout_s`` once, for all devices together, and its
    devices are named, not waited on forever. ``cluster_resources`` defaults to
    ``ray.cluster_resources`` (Ray must be connected).
    """
    wanted = [d for d in devices if d.node]
    read = cluster_resources or ray.cluster_resources
    deadline = clock() + timeout_s
    while True:
        missing = missing_device_nodes(wanted, read())
        if not missing or clock() >= deadline:
            return missing
        sleep(max(0.0, min(poll_s, deadline - clock())))


def _describe(error: BaseException) -> str:
    if isinstance(error, AgentError):
        return f"{type(error).__name__}: {error.message}"
    return f"{type(error).__name__}: {error}"


class DeviceWorker:
    """Drives one device: its agent, one job at a time.

    Args:
        device: the inventory entry.
        campaign_id: goes into every row and into the agent (remote work directories).
        protocol: the measurement protocol for this device in this campaign.
        agent_factory: ``(device, campaign_id) -> Agent``; default ``farm.agent_factory.make_agent``.
        artifact_dir: where built artifacts received from build tasks are written on this node.
    """

    def __init__(
        self,
        device: "Device",
        campaign_id: str,
        protocol: "Protocol",
        *,
        agent_factory: AgentFactory | None = None,
        artifact_dir: str | None = None,
    ) -> None:
        if agent_factory is None:
            from farm.agent_factory import make_agent

            agent_factory = make_agent
        self.device = device
        self.campaign_id = campaign_id
        self.protocol = protocol
        self.agent_factory = agent_factory
        self.artifact_dir = artifact_dir or str(Path.home() / ".cache" / "latfarm" / "artifacts")
        self.agent: Agent | None = None
        self.host = ""
        self.facts: dict[str, Any] | None = None

    # ----------------------------------------------------------------- public
    def ready(self) -> str:
        """The Ray node host this actor runs on (a cheap call to wait for placement)."""
        return socket.gethostname()

    def node_id(self) -> str:
        """The Ray node id this actor runs on (hex, as in ``ray.nodes()``); where it was placed."""
        return ray.get_runtime_context().get_node_id()

    def start(self) -> dict[str, Any]:
        """Connect to the device before the first job: ``{"error", "retryable"}`` (never raises).

        The campaign calls it on every actor at once, so connection set-up (SSH
        handshakes, loading a replay table) overlaps across devices and is not
        charged to the first job.
        """
        try:
            self._connect()
            return {"error": None, "retryable": False}
        except Exception as error:  # noqa: BLE001 - reported to the driver, typed
            return {"error": _describe(error), "retryable": bool(getattr(error, "retryable", False))}

    def run_job(self, job: Job, *builds: BuildResult) -> JobResult:
        """Measure ``job``; ``builds`` align with ``job.archs`` (none for eager torch)."""
        result = JobResult(job=job, started_at=time.time())
        cpu_started = time.process_time()
        try:
            self._run(job, list(builds), result)
        finally:
            result.finished_at = time.time()
            result.cpu_s = time.process_time() - cpu_started
        return result

    def probe(self) -> dict[str, Any]:
        """Connect afresh and probe the device: ``{"reachable", "facts", "error"}`` (never raises)."""
        self._drop_agent()
        error = self.start()["error"]
        return {"reachable": error is None, "facts": self.facts if error is None else None, "error": error}

    def close(self) -> None:
        self._drop_agent()

    # --------------------------------------------------------------- stages
    def _run(self, job: Job, builds: list[BuildResult], result: JobResult) -> None:
        stage = "connect"
        try:
            agent = self._connect()
            telemetry_start = self._telemetry(agent)
            stage = "prepare"
            artifacts = self._prepare(agent, job, builds, result)
            if not artifacts:
                return
            stage = "run"
            from farm.protocol import measure_batch

            seed = zlib.crc32(job.job_id.encode()) + job.attempt
            summaries = measure_batch(agent, artifacts, self.protocol, seed=seed)
            telemetry = (telemetry_start, self._telemetry(agent))
            for artifact, summary in zip(artifacts, summaries):
                result.rows.append(
                    measured_row(
                        self.device, self.campaign_id, artifact, self.protocol, summary,
                        host=self.host, telemetry=telemetry,
                    )
                )
        except Exception as error:  # noqa: BLE001 - every failure is reported to the driver, typed
            result.error = _describe(error)
            result.error_type = type(error).__name__
            result.retryable = bool(getattr(error, "retryable", False))
            result.stage = stage
            logger.warning("device %s job %s %s: %s", self.device.name, job.job_id, stage, result.error)
            if result.retryable or stage == "connect":
                self._drop_agent()

    def _connect(self) -> Agent:
        if self.agent is None:
            agent = self.agent_factory(self.device, self.campaign_id)
            facts = agent.probe()
            self.agent = agent
            self.facts = facts.to_dict()
            self.host = facts.hostname or socket.gethostname()
        return self.agent

    def _prepare(self, agent: Agent, job: Job, builds: list[BuildResult], result: JobResult) -> list[Artifact]:
        if builds and len(builds) != len(job.archs):
            raise ValueError(f"job {job.job_id}: {len(builds)} builds for {len(job.archs)} archs")
        ready: list[Artifact] = []
        for position, arch in enumerate(job.archs):
            artifact = job.artifact(arch)
            try:
                if builds:
                    build = builds[position]
                    if build.error:
                        raise ArtifactRejected(build.error)
                    artifact = materialize(build, self.artifact_dir)
                agent.prepare(artifact)
            except AgentError as error:
                if error.retryable:
                    raise
                result.rows.append(self._failed(artifact, _describe(error)))
                continue
            except Exception as error:  # noqa: BLE001 - a model that cannot be set up fails alone
                result.rows.append(self._failed(artifact, _describe(error)))
                continue
            ready.append(artifact)
        return ready

    # --------------------------------------------------------------- helpers
    def _failed(self, artifact: Artifact, error: str) -> dict[str, Any]:
        return failed_row(self.device, self.campaign_id, artifact, self.protocol, error, host=self.host)

    def _telemetry(self, agent: Agent) -> Telemetry:
        """Temperature, clock and governor now (``Agent.telemetry``); empty when the device cannot say."""
        try:
            return agent.telemetry()
        except AgentError:
            return Telemetry()

    def _drop_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            try:
                agent.close()
            except Exception as error:  # noqa: BLE001 - closing a broken connection may fail too
                logger.info("device %s: close failed: %s", self.device.name, error)


DeviceActor = ray.remote(DeviceWorker)


def start_actor(
    device: "Device",
    campaign_id: str,
    protocol: "Protocol",
    *,
    agent_factory: AgentFactory | None = None,
    artifact_dir: str | None = None,
) -> "ray.actor.ActorHandle":
    """Create the Ray actor for ``device``: on its node when the inventory names one, else on the head."""
    options = actor_options_for(kind=device.kind, threads=device.threads, node=device.node, name=device.name)
    return DeviceActor.options(**options).remote(
        device, campaign_id, protocol, agent_factory=agent_factory, artifact_dir=artifact_dir
    )
