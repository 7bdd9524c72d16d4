"""Artifact builds as Ray tasks, ahead of and in parallel with measurement.

Runtimes other than eager ``torch`` need a built file (``.ptl``, ``.tflite``,
``.pte``). Builds cost seconds each, so the campaign driver submits them as
Ray tasks on the cluster's CPUs a few jobs ahead of each device, and a job is
dispatched only once its builds are done: a device never waits for a build it
could have had. A task returns the file's bytes, so the artifact reaches a
device actor on another Ray node through the object store; the actor writes
it into its own cache (:func:`materialize`).

The build step itself is an injectable function with the signature of
``farm.build.build_artifact`` (:data:`BuildFn`).

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
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable

from agents.base import AgentError, Artifact
from farm.jobs import BuildResult

#: ``build_artifact(space, arch, runtime, batch_size, input_size, cache_dir) -> Artifact``.
BuildFn = Callable[[str, str, str, int, int, str], Artifact]

#: Runtimes the agents run from a model they build themselves: no build task.
EAGER_RUNTIMES = frozenset({"torch"})


def default_build_fn(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str) -> Artifact:
    """``farm.build.build_artifact``, imported where the task runs."""
    try:
        from farm.build import build_artifact
    except ImportError as exc:
        raise AgentError(f"runtime {runtime!r} needs farm.build, which cannot be imported here: {exc}") from exc
    return build_artifact(space, arch, runtime, batch_size, input_size, cache_dir)


def needs_build(runtime: str) -> bool:
    return runtime not in EAGER_RUNTIMES


def run_build(build_fn: BuildFn, artifact: Artifact, cache_dir: str) -> BuildResult:
    """Build ``artifact`` with ``build_fn``; any failure becomes ``BuildResult.error`` (never raises)."""
    started = time.perf_counter()
    try:
        built = build_fn(
            artifact.search_space, artifact.arch, artifact.runtime, artifact.batch_size, artifact.input_size, cache_dir
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


def materialize(result: BuildResult, cache_dir: str | os.PathLike[str]) -> Artifact:
    """The artifact with ``path`` pointing at a local copy of its bytes (written atomically once)."""
    if result.data is None:
        return result.artifact
    digest = result.artifact.sha256 or hashlib.sha256(result.data).hexdigest()
    suffix = Path(result.artifact.path).suffix if result.artifact.path else ""
    target = Path(cache_dir) / f"{digest}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(result.data)
        os.replace(temporary, target)
    return replace(result.artifact, path=str(target), sha256=digest)
