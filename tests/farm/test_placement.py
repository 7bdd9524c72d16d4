"""Placement on a real multi-node Ray cluster: three real Ray nodes on this machine (``ray.cluster_utils.Cluster``).

The head offers ``builder`` (as ``cluster.yaml``'s head does with ``python -m farm.node_resources --builder``),
node A offers ``device:pi-a`` and node B ``device:phone-b`` (as ``farm.node_resources`` prints on those hosts).
A campaign through the farm's own code path (``farm.run.run_campaign``, real agents: two replay devices, which
are simulations, and this machine's CPU with no ``node:``; real TorchScript builds; a real Parquet store) must
place each device's actor on the node that offers its resource, the node-less CPU device on the head, and every
build task on the builder. Where each ran is recorded from inside the actor (when its agent is created) and the
build task, as Ray node ids.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest
import ray
from ray.cluster_utils import Cluster

from agents.base import Agent, Artifact
from farm import protocol as protocols
from farm.actors import start_actor, wait_for_device_nodes
from farm.builds import build_task, build_task_options, default_build_fn
from farm.inventory import Device, ReplayConfig
from farm.node_resources import BUILDER_RESOURCE, device_resource
from farm.run import CampaignConfig, run_campaign
from farm.store import Store

pytestmark = pytest.mark.timeout(300)

FAST = protocols.make("interleaved", warmup=0, runs=2, rounds=1, max_ci=10.0)


@dataclass(frozen=True)
class Nodes:
    """Ray node ids of the three nodes."""

    head: str
    a: str
    b: str


@pytest.fixture(scope="module")
def nodes() -> Iterator[Nodes]:
    """Head (2 CPUs, ``builder``), node A (``device:pi-a``), node B (``device:phone-b``); shut down after.

    ``RAY_TMPDIR`` keeps the nodes' session folders and the cluster's address file in a folder of
    this test, so no other Ray on the machine sees or joins this cluster.
    """
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp
    cluster = Cluster()
    try:
        head = cluster.add_node(num_cpus=2, resources={BUILDER_RESOURCE: 1}, include_dashboard=False)
        node_a = cluster.add_node(num_cpus=1, resources={device_resource("pi-a"): 1})
        node_b = cluster.add_node(num_cpus=1, resources={device_resource("phone-b"): 1})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        yield Nodes(head=head.node_id, a=node_a.node_id, b=node_b.node_id)
    finally:
        ray.shutdown()
        cluster.shutdown()
        if previous is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous
        shutil.rmtree(temp, ignore_errors=True)


def replay_device(name: str, node: str, table: Path, source: str) -> Device:
    """A replay device (a simulation) attached to Ray node ``node``, measured in TorchScript (so it needs builds)."""
    return Device(name=name, kind="replay", node=node, runtimes=["torchscript"],
                  replay=ReplayConfig(table=str(table), device=source))


def devices(table: Path) -> list[Device]:
    return [
        replay_device("pi-a", "host-a", table, "raspi4"),
        replay_device("phone-b", "host-b", table, "pixel2"),
        Device(name="cpu-head", kind="cpu", runtimes=["torchscript"]),  # no node: the head's own CPU
    ]


def record_node(folder: str, what: str) -> None:
    """Leave a file naming ``what`` and the Ray node this code runs on (nodes share this machine's disk)."""
    node = ray.get_runtime_context().get_node_id()
    Path(folder, f"{what}@{node}").touch()


def recorded(folder: Path, prefix: str) -> dict[str, set[str]]:
    """``{what: {node ids}}`` for the records whose name starts with ``prefix``."""
    seen: dict[str, set[str]] = {}
    for path in folder.glob(f"{prefix}*@*"):
        what, node = path.name.split("@")
        seen.setdefault(what[len(prefix):], set()).add(node)
    return seen


def recording_agent_factory(folder: str):
    """``farm.agent_factory.make_agent``, noting the node of the actor that creates each agent."""

    def factory(device: Device, campaign_id: str) -> Agent:
        from farm.agent_factory import make_agent

        record_node(folder, f"agent-{device.name}")
        return make_agent(device, campaign_id)

    return factory


def recording_build_fn(folder: str):
    """``farm.builds.default_build_fn`` (a real TorchScript build), noting the node of the build task."""

    def build(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str,
              **options: Any) -> Artifact:
        record_node(folder, f"build-{abs(hash(arch))}")
        return default_build_fn(space, arch, runtime, batch_size, input_size, cache_dir, **options)

    return build


def help_archs(table: Path, count: int) -> list[str]:
    frame = pq.read_table(table, filters=[("search_space", "==", "nasbench201")], columns=["arch", "arch_index"]).to_pandas()
    return sorted(frame[frame["arch_index"] < count]["arch"].unique().tolist())


def test_each_actor_runs_on_the_node_offering_its_device_and_builds_on_the_builder(
    nodes: Nodes, tmp_path: Path, help_table_path: Path
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    archs = help_archs(help_table_path, 2)
    config = CampaignConfig(
        "nasbench201", archs, devices(help_table_path), tmp_path / "store", anchors=0, job_size=2,
        warmup=0, runs=2, rounds=1, progress=False, artifact_dir=str(tmp_path / "artifacts"),
    )
    summary = run_campaign(
        config, agent_factory=recording_agent_factory(str(records)), build_fn=recording_build_fn(str(records))
    )

    assert recorded(records, "agent-") == {"pi-a": {nodes.a}, "phone-b": {nodes.b}, "cpu-head": {nodes.head}}
    builds = recorded(records, "build-")
    assert len(builds) == len(archs)  # one build per arch, shared by the three devices
    assert set().union(*builds.values()) == {nodes.head}  # the builder, never node A or B (1 free CPU each)
    rows = Store(tmp_path / "store").read(columns=["device", "arch", "status", "runtime"])
    assert sorted(rows["device"].unique()) == ["cpu-head", "phone-b", "pi-a"]
    assert len(rows) == 3 * len(archs) and set(rows["status"]) <= {"ok", "unstable"}
    assert set(rows["runtime"]) == {"torchscript"}
    assert all(d.down_reason is None and d.measured == len(archs) for d in summary.devices)


def test_device_actor_reports_its_node(nodes: Nodes, help_table_path: Path) -> None:
    """``DeviceActor.node_id`` names where the actor was placed: each device's node, the head for the rest."""
    expected = {"pi-a": nodes.a, "phone-b": nodes.b, "cpu-head": nodes.head}
    actors = {device.name: start_actor(device, "placement", FAST) for device in devices(help_table_path)}
    try:
        placed = {name: ray.get(actor.node_id.remote(), timeout=120) for name, actor in actors.items()}
    finally:
        for actor in actors.values():
            ray.kill(actor)
    assert placed == expected


def test_build_tasks_go_to_the_builder(nodes: Nodes, tmp_path: Path) -> None:
    """Four build tasks at once, with a free CPU on A and on B: every one runs on the node offering ``builder``."""
    folder = str(tmp_path)
    options = build_task_options(ray.cluster_resources(), num_cpus=1)
    assert options["resources"] == {BUILDER_RESOURCE: 0.001}

    def noting_build(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str,
                     **options: Any) -> Artifact:
        record_node(folder, f"task-{arch}")
        return Artifact(space, arch, runtime, batch_size, input_size)  # nothing to ship: eager-like

    results = ray.get([
        build_task.options(**options).remote(noting_build, Artifact("nasbench201", f"a{i}", "torchscript"), folder)
        for i in range(4)
    ], timeout=120)
    assert all(result.error is None for result in results)
    placed = recorded(tmp_path, "task-")
    assert sorted(placed) == ["a0", "a1", "a2", "a3"] and set().union(*placed.values()) == {nodes.head}


def test_a_device_whose_node_never_joins_is_named_within_the_timeout(nodes: Nodes, help_table_path: Path) -> None:
    import time

    ghost = Device(name="ghost", kind="replay", node="host-never",
                   replay=ReplayConfig(table=str(help_table_path), device="pixel2"))
    started = time.monotonic()
    missing = wait_for_device_nodes([*devices(help_table_path), ghost], timeout_s=2.0, poll_s=0.2)
    waited = time.monotonic() - started
    assert missing == ["ghost"]
    assert 2.0 <= waited < 10.0


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
