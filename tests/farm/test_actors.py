"""Device actors on a real local Ray: placement by custom resource, one job at a time, typed errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray

from agents.base import Artifact
from farm import protocol as protocols
from farm.actors import (
    DeviceWorker, actor_options_for, device_resource, missing_device_nodes, start_actor, wait_for_device_nodes,
)
from farm.inventory import Device
from farm.jobs import BuildResult, Job
from tests.farm.scripted_agent import ScriptedAgent, arch_latency, counter_file, local_ray, scripted_factory

FAST = protocols.make("interleaved", warmup=0, runs=2, rounds=1, max_ci=10.0)


@pytest.fixture(scope="module")
def ray_session():
    yield from local_ray(resources={"device:pinned": 1})


def job(*archs: str, runtime: str = "torch", job_id: str = "j1") -> Job:
    return Job(job_id, "dev", "nasbench201", tuple(archs), runtime=runtime)


DEVICE = Device(name="dev", kind="replay", platform="test-board",
                replay={"table": "unused.parquet", "device": "x"})


# ------------------------------------------------------------------ plain worker
def test_worker_measures_a_batch_into_schema_rows() -> None:
    worker = DeviceWorker(DEVICE, "camp", FAST, agent_factory=scripted_factory())
    result = worker.run_job(job("a", "bb", "ccc"))
    assert result.error is None and [r["arch"] for r in result.rows] == ["a", "bb", "ccc"]
    for row in result.rows:
        assert row["status"] == "ok" and row["latency_ms"] == arch_latency(row["arch"])
        assert row["device_kind"] == "replay" and row["platform"] == "test-board" and row["host"] == "scripted"
        assert row["protocol"] == "interleaved" and row["runs"] == 2 and row["campaign_id"] == "camp"
        assert row["temperature_start_c"] == 40.0 and row["temperature_end_c"] == 40.0
    assert result.busy_s > 0


def test_a_rejected_artifact_fails_alone() -> None:
    worker = DeviceWorker(DEVICE, "camp", FAST, agent_factory=scripted_factory(reject=["bb"]))
    result = worker.run_job(job("a", "bb", "ccc"))
    statuses = {r["arch"]: r["status"] for r in result.rows}
    assert statuses == {"bb": "failed", "a": "ok", "ccc": "ok"} and result.error is None
    assert "scripted rejection of bb" in next(r["error"] for r in result.rows if r["arch"] == "bb")


def test_retryable_failure_is_reported_typed_and_the_agent_reconnects() -> None:
    created = []

    def factory(device, campaign_id):
        created.append(ScriptedAgent(counter=counter))
        return created[-1]

    counter = counter_file(1)
    worker = DeviceWorker(DEVICE, "camp", FAST, agent_factory=factory)
    first = worker.run_job(job("a", "bb"))
    assert first.retryable and first.stage == "run" and first.error_type == "RunFailed" and not first.rows
    assert created[0].closed == 1  # dropped after the failure
    second = worker.run_job(job("a", "bb"))
    assert second.error is None and len(created) == 2 and len(second.rows) == 2


def test_connect_errors_are_staged_and_typed() -> None:
    offline = DeviceWorker(DEVICE, "camp", FAST, agent_factory=scripted_factory(connect_error="DeviceUnavailable"))
    result = offline.run_job(job("a"))
    assert (result.stage, result.retryable, result.error_type) == ("connect", True, "DeviceUnavailable")
    broken = DeviceWorker(DEVICE, "camp", FAST, agent_factory=scripted_factory(connect_error="config"))
    result = broken.run_job(job("a"))
    assert (result.stage, result.retryable) == ("connect", False) and "bad configuration" in result.error
    assert broken.probe()["reachable"] is False


def test_built_artifacts_are_written_locally_and_build_errors_fail_their_arch(tmp_path: Path) -> None:
    seen: list[Artifact] = []

    class Recording(ScriptedAgent):
        def prepare(self, artifact: Artifact) -> None:
            seen.append(artifact)

    worker = DeviceWorker(DEVICE, "camp", FAST, agent_factory=lambda d, c: Recording(), artifact_dir=str(tmp_path))
    good = BuildResult(Artifact("nasbench201", "a", "torchscript", path="/elsewhere/model.ptl"), data=b"model-bytes")
    bad = BuildResult(Artifact("nasbench201", "bb", "torchscript"), error="build failed: conversion error")
    result = worker.run_job(job("a", "bb", runtime="torchscript"), good, bad)
    assert {r["arch"]: r["status"] for r in result.rows} == {"a": "ok", "bb": "failed"}
    assert Path(seen[0].path).read_bytes() == b"model-bytes" and Path(seen[0].path).parent == tmp_path
    assert seen[0].sha256 and seen[0].path.endswith(".ptl")


# --------------------------------------------------------------------- on Ray
def test_actor_options() -> None:
    assert actor_options_for(kind="cpu", threads=2, node=None, name="c")["num_cpus"] == 2
    assert actor_options_for(kind="adb", threads=4, node=None, name="p")["num_cpus"] == 0
    assert actor_options_for(kind="adb", threads=1, node="hub", name="p")["resources"] == {"device:p": 1}
    assert device_resource("pixel7") == "device:pixel7"


@pytest.mark.parametrize("kind", ["cpu", "cuda", "ssh", "adb", "replay"])
def test_a_device_without_node_is_placed_on_the_head(kind: str) -> None:
    """No ``node:``: the head drives it (its files were checked there), and cpu/cuda measure the head itself."""
    options = actor_options_for(kind=kind, threads=1, node=None, name="d")
    assert options["resources"] == {"node:__internal_head__": 0.001}


def test_missing_device_nodes_names_only_pinned_devices_nobody_offers() -> None:
    devices = [Device(name="pi-a", kind="cpu", node="host-a"), Device(name="pi-b", kind="cpu", node="host-b"),
               Device(name="local", kind="cpu")]
    assert missing_device_nodes(devices, {"device:pi-a": 1.0, "CPU": 4.0}) == ["pi-b"]
    assert missing_device_nodes(devices, {"device:pi-a": 1.0, "device:pi-b": 1.0}) == []


def test_waiting_for_a_node_that_joins_late_returns_once_it_has_joined() -> None:
    """The node offering ``device:late`` joins on the third look: the wait ends there, before its timeout."""
    answers = iter([{}, {"CPU": 1.0}, {"device:late": 1.0}])
    looks: list[float] = []
    now = [0.0]

    def resources() -> dict[str, float]:
        looks.append(now[0])
        return next(answers)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    missing = wait_for_device_nodes([Device(name="late", kind="cpu", node="h")], timeout_s=10, poll_s=1,
                                    cluster_resources=resources, clock=lambda: now[0], sleep=sleep)
    assert missing == [] and looks == [0.0, 1.0, 2.0]


def test_actor_is_placed_by_its_device_resource_and_holds_it(ray_session) -> None:
    device = Device(name="pinned", kind="cpu", node="this-host")
    actor = start_actor(device, "camp", FAST, agent_factory=scripted_factory())
    assert ray.get(actor.ready.remote(), timeout=60)
    assert ray.available_resources().get("device:pinned", 0) == 0  # the actor holds the node's only unit
    second = start_actor(device, "camp", FAST, agent_factory=scripted_factory())
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get(second.ready.remote(), timeout=2)  # no second actor for the same device
    result = ray.get(actor.run_job.remote(job("a")), timeout=60)
    assert result.rows[0]["status"] == "ok"
    ray.kill(second)
    ray.kill(actor)


def test_a_node_less_actor_runs_on_the_head_of_a_local_ray(ray_session) -> None:
    actor = start_actor(Device(name="local", kind="cpu"), "camp", FAST, agent_factory=scripted_factory())
    head = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])
    assert ray.get(actor.node_id.remote(), timeout=60) == head == ray.get_runtime_context().get_node_id()
    ray.kill(actor)


def test_a_node_that_never_joins_is_named_after_the_timeout(ray_session) -> None:
    devices = [Device(name="pinned", kind="cpu", node="this-host"), Device(name="ghost", kind="adb", node="gone",
                                                                            adb={"serial": "X"})]
    started = time.monotonic()
    assert wait_for_device_nodes(devices, timeout_s=1.0, poll_s=0.2) == ["ghost"]
    assert 1.0 <= time.monotonic() - started < 10.0


def test_actor_runs_one_job_at_a_time(ray_session) -> None:
    actor = start_actor(DEVICE, "camp", FAST, agent_factory=scripted_factory(burst_s=0.2))
    refs = [actor.run_job.remote(job("a", "bb", job_id=f"j{i}")) for i in range(3)]
    results = sorted(ray.get(refs, timeout=120), key=lambda r: r.started_at)
    for earlier, later in zip(results, results[1:]):
        assert later.started_at >= earlier.finished_at
    ray.kill(actor)
