"""The local agent: times models in this process, on this machine's CPU or a local CUDA GPU.

Runtimes:

* ``torch`` - eager PyTorch; the agent builds the model itself from the arch
  string (``farm.spaces.get(space).build``; injectable as ``model_loader``).
* ``torchscript`` - ``artifact.path`` loaded with ``torch.jit.load``, or with the
  lite interpreter (``torch.jit.mobile._load_for_lite_interpreter``) for ``.ptl`` files.
* ``tflite`` - ``ai_edge_litert.interpreter.Interpreter`` (the ``tflite`` extra; ``tflite_runtime``
  where only that is installed), CPU only.
* ``executorch`` - ``executorch.runtime`` (the ``executorch`` extra), CPU only.

CPU runs are timed with ``time.perf_counter_ns`` around each inference. CUDA runs
are timed with CUDA events recorded on the current stream around each
inference, followed by an event synchronise, so asynchronous kernel launches
are fully counted; ``torch.cuda.synchronize`` precedes every burst.

Hygiene (from the inventory): ``threads`` goes to ``torch.set_num_threads`` (and
the TFLite interpreter), ``affinity`` pins every thread of this process with
``os.sched_setaffinity``, and before each job the agent sleeps ``cooldown_s`` and
waits until the hottest ``/sys/class/thermal`` sensor is below
``max_temperature_c`` (raising :class:`DeviceUnavailable` after
``cooldown_timeout_s``).

Errors: a file that does not load or a model that cannot run once is
:class:`ArtifactRejected`; a failure during timed runs is :class:`RunFailed`.

Example:
    >>> import torch
    >>> from agents.base import Artifact, Burst
    >>> agent = LocalAgent(model_loader=lambda artifact: torch.nn.Conv2d(3, 4, 3))
    >>> artifact = Artifact("toy", "conv", input_size=8)
    >>> [len(runs) for runs in agent.run([artifact], [Burst(0, warmup=1, runs=3)])]
    [3]
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import platform as platform_module
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import torch

from agents.base import (
    AgentError,
    Artifact,
    ArtifactRejected,
    Burst,
    BurstAgent,
    DeviceFacts,
    DeviceUnavailable,
    RunFailed,
)
from agents.telemetry import Telemetry, from_cores, hottest

if TYPE_CHECKING:
    from farm.inventory import Device, Hygiene

__all__ = ["LocalAgent", "ModelLoader", "build_eager_model", "read_host_facts"]

#: Builds the eager model of an artifact (injectable for tests and custom spaces).
ModelLoader = Callable[[Artifact], torch.nn.Module]

#: One inference on a loaded model with its input already in place.
Inference = Callable[[], object]

_CPU_ONLY_RUNTIMES = frozenset({"tflite", "executorch"})
_VERSIONED_PACKAGES = ("torch", "ray", "ai-edge-litert", "executorch", "numpy")
#: The most CPUs and thermal zones read from sysfs: more is a broken (or planted, under host_root) tree.
MAX_CPUS = 4096
MAX_ZONES = 1024


def build_eager_model(artifact: Artifact) -> torch.nn.Module:
    """The eval-mode model of ``artifact.arch`` from its search space in ``farm.spaces``."""
    from farm import spaces

    return spaces.get(artifact.search_space).build(artifact.arch, input_size=artifact.input_size or None).eval()


@dataclass
class _Loaded:
    inference: Inference
    details: dict[str, object] = field(default_factory=dict)


class LocalAgent(BurstAgent):
    """Times artifacts in this process (kind ``cpu`` or ``cuda``).

    Args:
        name: the inventory name (for messages and facts).
        kind: ``cpu`` or ``cuda``.
        threads: intra-op threads (``torch.set_num_threads``; TFLite ``num_threads``).
        runtimes: runtimes this device accepts; others are rejected. ``None`` accepts all.
        hygiene: an inventory ``Hygiene`` (affinity, cool-down, maximum temperature).
        cuda_index: the GPU for kind ``cuda``.
        model_loader: builds eager models; :func:`build_eager_model` by default.
        host_root: where ``/proc`` and ``/sys`` are read from (``/``; a folder in tests).
        sleep: the sleep function used while cooling down (injectable for tests).
        campaign_id: recorded in the probed facts.
    """

    def __init__(
        self,
        name: str = "cpu-local",
        kind: str = "cpu",
        *,
        threads: int = 1,
        runtimes: Sequence[str] | None = None,
        hygiene: "Hygiene | None" = None,
        cuda_index: int = 0,
        model_loader: ModelLoader | None = None,
        host_root: str | os.PathLike[str] = "/",
        sleep: Callable[[float], None] = time.sleep,
        campaign_id: str | None = None,
    ) -> None:
        if kind not in ("cpu", "cuda"):
            raise AgentError(f"device {name!r}: LocalAgent drives kind cpu or cuda, not {kind!r}")
        self.name = name
        self.kind = kind
        self.threads = threads
        self.runtimes = tuple(runtimes) if runtimes is not None else None
        if hygiene is None:
            from farm.inventory import Hygiene

            hygiene = Hygiene()
        self.hygiene = hygiene
        self.cuda_index = cuda_index
        self.model_loader = model_loader or build_eager_model
        self.host_root = Path(host_root)
        self.campaign_id = campaign_id
        self._sleep = sleep
        self._loaded: dict[tuple[object, ...], _Loaded] = {}
        self._saved_affinity: set[int] | None = None
        self._configured = False

    @classmethod
    def from_device(cls, device: "Device", *, campaign_id: str) -> "LocalAgent":
        """The agent for an inventory device of kind ``cpu`` or ``cuda``."""
        return cls(
            name=device.name,
            kind=device.kind,
            threads=device.threads,
            runtimes=device.runtimes,
            hygiene=device.hygiene,
            cuda_index=device.cuda.index if device.cuda is not None else 0,
            campaign_id=campaign_id,
        )

    # ------------------------------------------------------------ set-up
    @property
    def torch_device(self) -> torch.device:
        return torch.device("cuda", self.cuda_index) if self.kind == "cuda" else torch.device("cpu")

    def _configure(self) -> None:
        """Apply threads and affinity once, before the first model is loaded."""
        if self._configured:
            return
        if self.kind == "cuda":
            if not torch.cuda.is_available():
                raise DeviceUnavailable(f"device {self.name!r}: CUDA is not available in this process")
            if self.cuda_index >= torch.cuda.device_count():
                raise DeviceUnavailable(
                    f"device {self.name!r}: cuda index {self.cuda_index} but {torch.cuda.device_count()} GPU(s) visible"
                )
        torch.set_num_threads(self.threads)
        if self.hygiene.affinity is not None:
            self._saved_affinity = os.sched_getaffinity(0)
            _pin_process(self.name, self.hygiene.affinity)
        self._configured = True

    # ------------------------------------------------------------- agent API
    def probe(self) -> DeviceFacts:
        """This machine's CPU, cores, governors, frequencies, temperatures, free memory, versions."""
        facts = read_host_facts(self.host_root)
        facts.extra.update(
            {
                "device": self.name,
                "kind": self.kind,
                "threads": self.threads,
                "affinity": sorted(os.sched_getaffinity(0)),
                "campaign_id": self.campaign_id,
                "python": platform_module.python_version(),
            }
        )
        if self.kind == "cuda" and torch.cuda.is_available() and self.cuda_index < torch.cuda.device_count():
            facts.extra["gpu"] = torch.cuda.get_device_name(self.cuda_index)
            facts.runtime_versions["cuda"] = str(torch.version.cuda)
        return facts

    def prepare(self, artifact: Artifact) -> None:
        """Load ``artifact`` and run it once; :class:`ArtifactRejected` if either fails."""
        self._configure()
        key = _cache_key(artifact)
        if key in self._loaded:
            return
        if self.runtimes is not None and artifact.runtime not in self.runtimes:
            raise ArtifactRejected(
                f"device {self.name!r} does not run {artifact.runtime} (its runtimes: {', '.join(self.runtimes)})"
            )
        if self.kind == "cuda" and artifact.runtime in _CPU_ONLY_RUNTIMES:
            raise ArtifactRejected(f"{artifact.runtime} runs on CPU only; device {self.name!r} is a CUDA device")
        loader = _RUNTIME_LOADERS.get(artifact.runtime)
        if loader is None:
            raise ArtifactRejected(
                f"runtime {artifact.runtime!r} is not supported locally; use one of {', '.join(_RUNTIME_LOADERS)}"
            )
        if artifact.path is not None:
            _check_file(artifact)
        try:
            loaded = loader(self, artifact)
            with torch.inference_mode():
                loaded.inference()
            self._synchronize()
        except AgentError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure is a rejection of this artifact
            raise ArtifactRejected(f"{_describe(artifact)}: does not load or run: {type(exc).__name__}: {exc}") from exc
        self._loaded[key] = loaded

    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        """Cool down per the hygiene settings, load every artifact, then execute ``schedule``."""
        self._configure()
        self.cool_down()
        for artifact in artifacts:
            self.prepare(artifact)
        return super().run(artifacts, schedule)

    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        """``warmup`` untimed then ``runs`` timed inferences of ``artifact``, in milliseconds."""
        self.prepare(artifact)
        inference = self._loaded[_cache_key(artifact)].inference
        try:
            with torch.inference_mode():
                for _ in range(warmup):
                    inference()
                if self.kind == "cuda":
                    return _time_cuda(inference, runs)
                return _time_cpu(inference, runs)
        except Exception as exc:  # noqa: BLE001 - a crash mid-burst is a failed run, retried by the farm
            raise RunFailed(f"{_describe(artifact)}: timed run failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Drop loaded models and restore the CPU affinity this process had."""
        self._loaded.clear()
        if self._saved_affinity is not None:
            _pin_process(self.name, sorted(self._saved_affinity))
            self._saved_affinity = None
        self._configured = False
        if self.kind == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --------------------------------------------------------------- thermal
    def temperature_c(self) -> float | None:
        """The hottest sane thermal sensor now (``agents.telemetry.hottest``), ``None`` where there is none."""
        return hottest(read_temperatures(self.host_root))

    def telemetry(self) -> Telemetry:
        """Hottest sensor, mean current clock and governor of the cores this process may run on (sysfs reads)."""
        governors, frequencies = read_cpufreq(self.host_root)
        return from_cores(governors, frequencies, read_temperatures(self.host_root), cores=os.sched_getaffinity(0))

    def cool_down(self) -> None:
        """Sleep ``cooldown_s``, then wait until below ``max_temperature_c`` (if set and readable)."""
        if self.hygiene.cooldown_s > 0:
            self._sleep(self.hygiene.cooldown_s)
        limit = self.hygiene.max_temperature_c
        if limit is None:
            return
        waited = 0.0
        step = 1.0
        while True:
            temperature = self.temperature_c()
            if temperature is None or temperature < limit:
                return
            if waited >= self.hygiene.cooldown_timeout_s:
                raise DeviceUnavailable(
                    f"device {self.name!r}: still {temperature:.1f} C after {waited:.0f} s of cool-down "
                    f"(max_temperature_c {limit})"
                )
            self._sleep(step)
            waited += step

    def _synchronize(self) -> None:
        if self.kind == "cuda":
            torch.cuda.synchronize(self.torch_device)


# ------------------------------------------------------------------- timing
def _time_cpu(inference: Inference, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        inference()
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return timings


def _time_cuda(inference: Inference, runs: int) -> list[float]:
    torch.cuda.synchronize()
    timings = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        inference()
        end.record()
        end.synchronize()
        timings.append(float(start.elapsed_time(end)))
    return timings


# ------------------------------------------------------------------ loaders
def _input_shape(artifact: Artifact) -> tuple[int, int, int, int]:
    """NCHW input of ``artifact``; an ``input_size`` of 0 means the space's default for the arch.

    The space decides: OFA archs carry their own resolution ``r``.
    """
    if artifact.input_size > 0:
        return (artifact.batch_size, 3, artifact.input_size, artifact.input_size)
    from farm import spaces

    try:
        space = spaces.get(artifact.search_space)
    except KeyError as exc:
        raise ArtifactRejected(f"{_describe(artifact)}: no input_size and no known default for the space") from exc
    return space.input_shape(artifact.arch, artifact.batch_size, None)


def _load_torch(agent: LocalAgent, artifact: Artifact) -> _Loaded:
    model = agent.model_loader(artifact).eval().to(agent.torch_device)
    example = torch.randn(_input_shape(artifact), device=agent.torch_device)
    return _Loaded(lambda: model(example))


def _load_torchscript(agent: LocalAgent, artifact: Artifact) -> _Loaded:
    path = _require_path(artifact)
    if path.endswith(".ptl"):
        if agent.kind == "cuda":
            raise ArtifactRejected(f"{_describe(artifact)}: .ptl (lite interpreter) models run on CPU only")
        from torch.jit.mobile import _load_for_lite_interpreter

        module = _load_for_lite_interpreter(path)
        example = torch.randn(_input_shape(artifact))
        return _Loaded(lambda: module.forward(example), {"lite": True})
    module = torch.jit.load(path, map_location=agent.torch_device).eval()
    example = torch.randn(_input_shape(artifact), device=agent.torch_device)
    return _Loaded(lambda: module(example), {"lite": False})


def _load_tflite(agent: LocalAgent, artifact: Artifact) -> _Loaded:
    path = _require_path(artifact)
    interpreter_class = _runtime_symbol(
        artifact, "TFLite", "tflite", ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"), "Interpreter"
    )
    import numpy as np

    interpreter = interpreter_class(model_path=path, num_threads=agent.threads)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
        value = rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
        interpreter.set_tensor(detail["index"], value)
    return _Loaded(interpreter.invoke)


def _load_executorch(agent: LocalAgent, artifact: Artifact) -> _Loaded:
    path = _require_path(artifact)
    runtime_class = _runtime_symbol(artifact, "ExecuTorch", "executorch", ("executorch.runtime",), "Runtime")
    method = runtime_class.get().load_program(Path(path)).load_method("forward")
    inputs = [torch.randn(_input_shape(artifact))]
    return _Loaded(lambda: method.execute(inputs))


def _runtime_symbol(artifact: Artifact, label: str, extra: str, modules: Sequence[str], symbol: str) -> Any:
    """``symbol`` from the first importable of ``modules``; :class:`ArtifactRejected` if none is installed."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), symbol)
        except ImportError:
            continue
    raise ArtifactRejected(f"{_describe(artifact)}: the {label} runtime is not installed; pip install 'latfarm[{extra}]'")


_RUNTIME_LOADERS: dict[str, Callable[[LocalAgent, Artifact], _Loaded]] = {
    "torch": _load_torch,
    "torchscript": _load_torchscript,
    "tflite": _load_tflite,
    "executorch": _load_executorch,
}


def _require_path(artifact: Artifact) -> str:
    if artifact.path is None:
        raise ArtifactRejected(
            f"{_describe(artifact)}: runtime {artifact.runtime} needs a built file (artifact.path); "
            "build it with farm.build.build_artifact"
        )
    return artifact.path


def _check_file(artifact: Artifact) -> None:
    path = Path(artifact.path or "")
    if not path.is_file():
        raise ArtifactRejected(f"{_describe(artifact)}: file {path} does not exist")
    if artifact.sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != artifact.sha256:
            raise ArtifactRejected(
                f"{_describe(artifact)}: {path} has sha256 {digest[:12]}..., expected {artifact.sha256[:12]}...; rebuild it"
            )


def _cache_key(artifact: Artifact) -> tuple[object, ...]:
    return (*artifact.key(), artifact.path, artifact.sha256)


def _describe(artifact: Artifact) -> str:
    return f"{artifact.search_space} arch {artifact.arch} ({artifact.runtime}, batch {artifact.batch_size})"


def _pin_process(name: str, cores: Iterable[int]) -> None:
    """Pin every thread of this process (later threads inherit the mask) to ``cores``."""
    wanted = set(cores)
    available = os.cpu_count() or 1
    missing = sorted(core for core in wanted if core >= available)
    if missing:
        raise AgentError(
            f"device {name!r}: hygiene.affinity names core(s) {missing} but this machine has cores 0-{available - 1}"
        )
    task_dir = Path("/proc/self/task")
    thread_ids = [int(p.name) for p in task_dir.iterdir()] if task_dir.is_dir() else [0]
    try:
        for thread_id in thread_ids:
            try:
                os.sched_setaffinity(thread_id, wanted)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
    except OSError as exc:
        raise AgentError(f"device {name!r}: cannot pin to cores {sorted(wanted)}: {exc}") from exc


# ------------------------------------------------------------- host facts
def read_host_facts(root: str | os.PathLike[str] = "/") -> DeviceFacts:
    """Facts of the machine whose ``/proc`` and ``/sys`` live under ``root``.

    Fields the machine does not expose (cpufreq in most VMs, thermal zones on
    servers) stay empty rather than guessed.

    Example:
        >>> read_host_facts().cores >= 1
        True
    """
    base = Path(root)
    cpuinfo = _read(base / "proc/cpuinfo") or ""
    governors, frequencies = read_cpufreq(base)
    return DeviceFacts(
        hostname=socket.gethostname(),
        cpu_model=_cpu_model(cpuinfo),
        cores=_core_count(cpuinfo),
        governor=governors,
        frequencies_khz=frequencies,
        temperatures_c=read_temperatures(base),
        free_memory_mb=_available_memory_mb(_read(base / "proc/meminfo") or ""),
        runtime_versions=_runtime_versions(),
    )


def read_cpufreq(root: str | os.PathLike[str] = "/") -> tuple[dict[str, str], dict[str, int]]:
    """Per-CPU scaling governor and current frequency (kHz) from ``sys/devices/system/cpu``."""
    governors: dict[str, str] = {}
    frequencies: dict[str, int] = {}
    for cpufreq in sorted(Path(root, "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))[:MAX_CPUS]:
        cpu = cpufreq.parent.name
        governor = _read(cpufreq / "scaling_governor")
        if governor:
            governors[cpu] = governor
        frequency = _read(cpufreq / "scaling_cur_freq") or _read(cpufreq / "cpuinfo_cur_freq")
        khz = _bounded_int(frequency or "", 12)
        if khz is not None and khz >= 0:
            frequencies[cpu] = khz
    return governors, frequencies


def read_temperatures(root: str | os.PathLike[str] = "/") -> dict[str, float]:
    """Thermal zone temperatures in Celsius, keyed ``<zone>:<type>``; empty where none exist."""
    readings: dict[str, float] = {}
    for zone in sorted(Path(root, "sys/class/thermal").glob("thermal_zone*"))[:MAX_ZONES]:
        millidegrees = _bounded_int(_read(zone / "temp") or "", 9)
        if millidegrees is None:
            continue
        kind = (_read(zone / "type") or "unknown")[:64]
        readings[f"{zone.name}:{kind}"] = millidegrees / 1000.0
    return readings


def _cpu_model(cpuinfo: str) -> str:
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "Processor", "cpu model"):
        if fields.get(key):
            return fields[key]
    return platform_module.processor() or platform_module.machine()


def _core_count(cpuinfo: str) -> int:
    processors = sum(1 for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "processor")
    return processors or (os.cpu_count() or 0)


def _available_memory_mb(meminfo: str) -> float | None:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            kilobytes = _bounded_int((line.split()[1:2] or [""])[0], 15)
            return kilobytes / 1024.0 if kilobytes is not None and kilobytes >= 0 else None
    return None


def _bounded_int(text: str, digits: int) -> int | None:
    """An optionally signed ASCII integer of at most ``digits`` digits, else ``None`` (never a huge conversion).

    Example:
        >>> _bounded_int("-4500", 9), _bounded_int("9" * 5000, 9), _bounded_int("²", 9)
        (-4500, None, None)
    """
    body = text[1:] if text.startswith("-") else text
    return int(text) if body.isascii() and body.isdigit() and len(body) <= digits else None


def _runtime_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
