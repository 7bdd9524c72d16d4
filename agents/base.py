"""The agent contract: how the farm talks to one device.

An agent knows how to reach a device (in-process, SSH, ADB, a replay table),
how to put a model on it and how to time it. It knows nothing of Ray, of the
store or of campaigns: the farm hands it artifacts and a *schedule* of bursts,
and gets raw per-run milliseconds back.

A schedule is plain data (a list of :class:`Burst`), produced by
``farm.protocol``. Running the whole schedule in one call lets the interleaved
protocol execute on the device itself, with no round trip between bursts.

Example:
    >>> from agents.base import Burst
    >>> schedule = [Burst(index=0, warmup=2, runs=3), Burst(index=1, warmup=2, runs=3)]
    >>> sum(b.runs for b in schedule)
    6
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from agents.telemetry import Telemetry, from_cores, hottest


class AgentError(Exception):
    """Base of every error an agent raises. ``retryable`` tells the farm whether to try again."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeviceUnavailable(AgentError):
    """The device cannot be reached now (offline, connection refused or dropped). Retryable."""

    retryable = True


class ArtifactRejected(AgentError):
    """The device or its runtime refused the model (bad file, unsupported op). Permanent."""

    retryable = False


class RunFailed(AgentError):
    """The model loaded but a timed run failed (crash, timeout, unparsable output). Retryable."""

    retryable = True


@dataclass(frozen=True)
class Burst:
    """One visit to one artifact: ``warmup`` discarded runs, then ``runs`` timed runs.

    ``index`` is the position of the artifact in the list handed to :meth:`Agent.run`.
    """

    index: int
    warmup: int
    runs: int


@dataclass(frozen=True)
class Artifact:
    """What is measured: one architecture in one runtime and configuration.

    ``path`` is the built file (``.ptl``, ``.tflite``, ``.pte``) on the build host,
    or ``None`` where the agent builds the model itself (eager torch).
    """

    search_space: str
    arch: str
    runtime: str = "torch"
    batch_size: int = 1
    input_size: int = 32
    path: str | None = None
    sha256: str | None = None

    def key(self) -> tuple[str, str, str, int, int]:
        return (self.search_space, self.arch, self.runtime, self.batch_size, self.input_size)


@dataclass
class DeviceFacts:
    """What the device said about itself when probed: recorded next to its measurements."""

    hostname: str = ""
    cpu_model: str = ""
    cores: int = 0
    governor: dict[str, str] = field(default_factory=dict)
    frequencies_khz: dict[str, int] = field(default_factory=dict)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    free_memory_mb: float | None = None
    runtime_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def max_temperature_c(self) -> float | None:
        """The hottest sane sensor, or ``None`` where the device reports none (a NaN never hides a hot one)."""
        return hottest(self.temperatures_c)

    def telemetry(self) -> Telemetry:
        """Hottest sane sensor, mean clock and governor over every reported core."""
        return from_cores(self.governor, self.frequencies_khz, self.temperatures_c)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Agent(abc.ABC):
    """One device. Subclasses implement :meth:`probe`, :meth:`prepare`, :meth:`run`.

    The farm calls ``probe`` once, ``prepare`` for each artifact, ``run`` with the
    artifacts and a schedule, and ``close`` at the end. Errors are
    :class:`AgentError` subclasses so the farm can tell retryable from permanent.
    """

    @abc.abstractmethod
    def probe(self) -> DeviceFacts:
        """Read the device's facts (CPU, cores, governor, temperatures, runtime versions)."""

    @abc.abstractmethod
    def prepare(self, artifact: Artifact) -> None:
        """Put ``artifact`` on the device and check that it loads. Raises :class:`ArtifactRejected`."""

    @abc.abstractmethod
    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        """Execute ``schedule`` and return, per artifact, all its timed runs in milliseconds."""

    def telemetry(self) -> Telemetry:
        """Temperature, CPU clock and governor now (read before and after each job).

        This default probes the device; agents override it with a cheaper read.
        """
        return self.probe().telemetry()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and remote files. Safe to call twice."""

    def __enter__(self) -> "Agent":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BurstAgent(Agent):
    """An agent that times one burst at a time in this process; ``run`` walks the schedule.

    Subclasses implement :meth:`time_burst`.
    """

    @abc.abstractmethod
    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        """Run ``warmup`` untimed and ``runs`` timed inferences; return the timed ones in ms."""

    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        samples: list[list[float]] = [[] for _ in artifacts]
        for burst in schedule:
            samples[burst.index].extend(self.time_burst(artifacts[burst.index], burst.warmup, burst.runs))
        return samples
