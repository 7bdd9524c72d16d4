"""Artifact builds as Ray tasks, ahead of and in parallel with measurement.

Runtimes other than eager ``torch`` need a built file (``.ptl``, ``.tflite``,
``.pte``). Builds cost seconds each, so the campaign driver submits them as
Ray tasks on the cluster's CPUs a few jobs ahead of each device, and a job is
dispatched only once its builds are done: a device never waits for a build it
could have had. A task returns the file's bytes, so the artifact reaches a
device actor on another Ray node through the object store; the actor writes
it into its own cache (:func:`materialize`).

Where builds run is explicit in the task's options (:func:`build_task_options`):
on the hosts that offer the ``builder`` resource (the head's start command in
``cluster.yaml`` offers it: ``python -m farm.node_resources --builder``), or on
the head when no host does (a plain local ``ray.init()``, or a cluster started
without it). Never on a device host that was not made a builder, such as a
Raspberry Pi worker.

The build step itself is an injectable function with the signature of
``farm.build.build_artifact`` (:data:`BuildFn`). A ``.tflite`` artifact for a
device with ``tflite_layout: nhwc`` is built with channels-last input: the
build function then also gets ``layout="nhwc"`` (:func:`run_build`).

Example:
    >>> from agents.base import Artifact
    >>> def fake_build(space, arch, runtime, batch_size, input_size, cache_dir):
    ...     return Artifact(space, arch, runtime, batch_size, input_size)
    >>> result = run_build(fake_build, Artifact("nasbench201", "a", "torchscript"), "/tmp")
    >>> result.error is None and result.data is None
    True
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import ray

from farm.atomic import write_bytes_atomic
from agents.base import AgentError, Artifact
from farm.jobs import BuildResult
from farm.node_resources import BUILDER_RESOURCE, HEAD_RESOURCE, MARKER_SHARE, on_head

#: ``build_artifact(space, arch, runtime, batch_size, input_size, cache_dir) -> Artifact``.
BuildFn = Callable[[str, str, str, int, int, str], Artifact]

#: Runtimes the agents run from a model they build themselves: no build task.
EAGER_RUNTIMES = frozenset({"torch"})

#: The input layout every artifact has unless a ``.tflite`` is asked for channels-last.
DEFAULT_LAYOUT = "nchw"


def default_build_fn(
    space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str, *, layout: str = DEFAULT_LAYOUT
) -> Artifact:
    """``farm.build.build_artifact``, imported where the task runs; ``layout`` is the ``.tflite`` input layout."""
    try:
        from farm.build import BuildSettings, build_artifact
    except ImportError as exc:
        raise AgentError(f"runtime {runtime!r} needs farm.build, which cannot be imported here: {exc}") from exc
    return build_artifact(space, arch, runtime, batch_size, input_size, cache_dir, settings=BuildSettings(layout=layout))


def needs_build(runtime: str) -> bool:
    return runtime not in EAGER_RUNTIMES


def build_layout(runtime: str, tflite_layout: str) -> str:
    """The input layout an artifact of ``runtime`` is built with: the device's for ``tflite``, else NCHW.

    Example:
        >>> build_layout("tflite", "nhwc"), build_layout("torchscript", "nhwc")
        ('nhwc', 'nchw')
    """
    return tflite_layout if runtime == "tflite" else DEFAULT_LAYOUT


def build_key(artifact: Artifact, layout: str = DEFAULT_LAYOUT) -> tuple[Any, ...]:
    """What makes two builds the same file: the artifact's key and its input layout.

    Example:
        >>> a = Artifact("nasbench201", "x", "tflite")
        >>> build_key(a) == build_key(a, "nchw") != build_key(a, "nhwc")
        True
    """
    return (*artifact.key(), layout)


def build_resources(cluster_resources: Mapping[str, float]) -> dict[str, float]:
    """Where build tasks go: the hosts offering ``builder`` when any does, else the head.

    Example:
        >>> build_resources({"CPU": 8.0, "builder": 1.0})
        {'builder': 0.001}
        >>> build_resources({"CPU": 8.0})
        {'node:__internal_head__': 0.001}
    """
    if cluster_resources.get(BUILDER_RESOURCE, 0) > 0:
        return {BUILDER_RESOURCE: MARKER_SHARE}
    return on_head()


def build_capacity(nodes: Sequence[Mapping[str, Any]]) -> float:
    """CPUs of the live nodes where build tasks may run (``ray.nodes()`` entries): builders, else the head.

    The campaign compares this, not the cluster's total, with the CPUs its ``cpu``
    devices hold: a build task asking for a CPU that no build node has free would wait forever.

    Example:
        >>> head = {"Alive": True, "Resources": {"CPU": 2.0, "node:__internal_head__": 1.0}}
        >>> pi = {"Alive": True, "Resources": {"CPU": 4.0, "device:pi-a": 1.0}}
        >>> build_capacity([head, pi])
        2.0
        >>> build_capacity([head, {**pi, "Resources": {"CPU": 4.0, "builder": 1.0}}])
        4.0
    """
    live = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    builders = [resources for resources in live if resources.get(BUILDER_RESOURCE, 0) > 0]
    build_nodes = builders or [resources for resources in live if resources.get(HEAD_RESOURCE, 0) > 0]
    return float(sum(resources.get("CPU", 0) for resources in build_nodes))


def build_task_options(cluster_resources: Mapping[str, float], *, num_cpus: float = 1) -> dict[str, Any]:
    """Ray options for :data:`build_task`: ``num_cpus`` and the placement of :func:`build_resources`.

    Example:
        >>> build_task_options({"builder": 1.0}, num_cpus=0)
        {'num_cpus': 0, 'resources': {'builder': 0.001}}
    """
    return {"num_cpus": num_cpus, "resources": build_resources(cluster_resources)}


def run_build(build_fn: BuildFn, artifact: Artifact, cache_dir: str, layout: str = DEFAULT_LAYOUT) -> BuildResult:
    """Build ``artifact`` with ``build_fn``; any failure becomes ``BuildResult.error`` (never raises).

    ``layout`` other than NCHW is passed on as ``build_fn(..., layout=layout)``, so a
    :data:`BuildFn` that knows no layouts keeps working for every device that uses none.
    """
    started = time.perf_counter()
    extra = {} if layout == DEFAULT_LAYOUT else {"layout": layout}
    try:
        built = build_fn(
            artifact.search_space, artifact.arch, artifact.runtime, artifact.batch_size, artifact.input_size, cache_dir,
            **extra,
        )
        data = Path(built.path).read_bytes() if built.path else None
    except Exception as exc:  # noqa: BLE001 - a failed build is an outcome, reported per arch
        message = exc.message if isinstance(exc, AgentError) else f"{type(exc).__name__}: {exc}"
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return BuildResult(
            artifact,
            seconds=time.perf_counter() - started,
            error=f"build failed: {message} ({Path(where.filename).name}:{where.lineno})",
        )
    return BuildResult(built, data=data, seconds=time.perf_counter() - started)


#: :func:`run_build` as a Ray task; submit it with ``build_task.options(**build_task_options(...))``.
build_task = ray.remote(num_cpus=1)(run_build)


def materialize(result: BuildResult, cache_dir: str | os.PathLike[str]) -> Artifact:
    """The artifact with ``path`` pointing at a local copy of its bytes (written atomically once)."""
    if result.data is None:
        return result.artifact
    digest = result.artifact.sha256 or hashlib.sha256(result.data).hexdigest()
    suffix = Path(result.artifact.path).suffix if result.artifact.path else ""
    target = Path(cache_dir) / f"{digest}{suffix}"
    if not target.exists():
        write_bytes_atomic(result.data, target)
    return replace(result.artifact, path=str(target), sha256=digest)
