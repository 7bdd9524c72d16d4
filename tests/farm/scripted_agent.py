"""A scripted test agent (no device) and a Ray fixture helper, shared by the farm tests.

Not a test module (no ``test_`` prefix). It registers itself to be pickled by value,
so Ray workers need not import it.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import ray
import ray.cloudpickle

from agents.base import Artifact, ArtifactRejected, BurstAgent, DeviceFacts, DeviceUnavailable, RunFailed
from farm.inventory import Device


class ScriptedAgent(BurstAgent):
    """A test agent (no device): latency derived from the arch string; failures scripted per call.

    ``fail_runs`` counts, in a file shared by all processes, how many ``run`` calls still raise
    ``failure`` (RunFailed by default); ``reject`` archs fail ``prepare``; ``poison`` archs make
    ``run`` raise ArtifactRejected for the whole batch they are in.
    """

    def __init__(self, *, counter: str | None = None, failure: str = "RunFailed", reject: Sequence[str] = (),
                 poison: Sequence[str] = (), burst_s: float = 0.0, connect_error: str | None = None,
                 crash_counter: str | None = None) -> None:
        if connect_error == "DeviceUnavailable":
            raise DeviceUnavailable("scripted: device offline")
        if connect_error:
            raise ValueError("scripted: bad configuration")
        self.counter, self.failure = counter, failure
        self.reject, self.poison, self.burst_s = set(reject), set(poison), burst_s
        self.crash_counter = crash_counter
        self.closed = 0

    def probe(self) -> DeviceFacts:
        return DeviceFacts(hostname="scripted", temperatures_c={"cpu": 40.0})

    def prepare(self, artifact: Artifact) -> None:
        if artifact.arch in self.reject:
            raise ArtifactRejected(f"scripted rejection of {artifact.arch}")

    def run(self, artifacts, schedule):
        if self.crash_counter and _take(self.crash_counter):
            os._exit(1)  # the whole actor process dies, as a segfaulting runtime would take it down
        if self.counter and _take(self.counter):
            raise {"RunFailed": RunFailed, "DeviceUnavailable": DeviceUnavailable}[self.failure]("scripted failure")
        bad = [a.arch for a in artifacts if a.arch in self.poison]
        if bad:
            raise ArtifactRejected(f"scripted: {bad[0]} crashes the runtime")
        return super().run(artifacts, schedule)

    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        if self.burst_s:
            time.sleep(self.burst_s)
        return [arch_latency(artifact.arch)] * runs

    def close(self) -> None:
        self.closed += 1


def arch_latency(arch: str) -> float:
    return 1.0 + sum(map(ord, arch)) % 17


def _take(counter: str) -> bool:
    """Decrement the count in ``counter``; True while it was positive."""
    path = Path(counter)
    left = int(path.read_text())
    if left <= 0:
        return False
    path.write_text(str(left - 1))
    return True


def scripted_factory(**options):
    """An agent factory (picklable: a partial of a module function) for DeviceWorker/actors."""
    return functools.partial(_make_scripted, options)


def _make_scripted(options: dict, device: Device, campaign_id: str) -> ScriptedAgent:
    return ScriptedAgent(**options)


def per_device_factory(options: dict[str, dict]):
    """An agent factory whose scripted behaviour depends on the device name."""
    return functools.partial(_make_per_device, options)


def _make_per_device(options: dict[str, dict], device: Device, campaign_id: str) -> ScriptedAgent:
    return ScriptedAgent(**options.get(device.name, {}))


def counter_file(count: int) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".count", delete=False)
    handle.write(str(count))
    handle.close()
    return handle.name


def local_ray(**options) -> Iterator[None]:
    """Start a small local Ray for one test module, and shut it down after."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING", **options)
    try:
        yield
    finally:
        ray.shutdown()


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
