#!/usr/bin/env python3
"""The on-device runner: copied to a board and executed there, alone.

It needs only the standard library plus whichever runtime the device has
(torch for ``.ptl``/``.pt``, ai_edge_litert or tflite_runtime for ``.tflite``,
executorch for ``.pte``); nothing of latfarm is importable on the device.

It reads one JSON job, measures the whole batch of artifacts in one
invocation (so an interleaved schedule runs on the device itself, with no
round trip between bursts) and prints one JSON object on stdout. Problems
with one artifact are reported in ``errors`` and do not stop the others;
a malformed job gives ``{"ok": false, "error": ...}`` and exit status 2.
No traceback is ever the output.

Job (``python3 runner.py job.json``; ``-`` reads stdin; ``--serve`` reads one job
per line and answers one result per line, so a campaign imports the runtime once)::

    {"mode": "run",                   # run | check | probe | temperatures
     "artifacts": [{"path": "a.ptl", "runtime": "torchscript", "input_shape": [1, 3, 32, 32],
                    "device": "cpu", "sha256": "..."}],
     "schedule": [[0, 2, 5], [1, 2, 5]],   # bursts: [artifact index, warm-up runs, timed runs]
     "threads": 1}

Output of ``run``: ``samples_ms`` (per artifact, every timed run in order),
``errors`` (per artifact: null or {stage, kind, message}), ``facts`` (CPU model,
online cores, cpufreq and governor per core, thermal zones, memory, affinity,
raw ``vcgencmd`` / ``nvpmodel -q`` output where those tools exist),
``temperatures_start_c`` / ``temperatures_end_c`` and the runtime versions used.
``check`` loads every artifact, checks its sha256 and runs it once. ``probe``
returns the facts and every importable runtime's version; ``temperatures``
only the thermal zones (cheap: no runtime is imported).

CUDA: a TorchScript artifact with ``"device": "cuda[:N]"`` is loaded with
``torch.jit.load`` onto that GPU (a ``.ptl`` holds the full TorchScript program
too), and each timed run ends with ``torch.cuda.synchronize()``.

Example (on this machine):
    >>> import json, subprocess, sys
    >>> job = json.dumps({"mode": "temperatures"})
    >>> out = subprocess.run([sys.executable, __file__, "-"], input=job, capture_output=True, text=True)
    >>> json.loads(out.stdout)["ok"]
    True
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, Callable

RUNNER_VERSION = 1
MODES = ("run", "check", "probe", "temperatures")
TOOL_TIMEOUT_S = 10.0
#: The most CPUs (online list entries) and thermal zones this runner reports: more is a broken sysfs.
MAX_CPUS = 4096
MAX_ZONES = 1024


class JobError(ValueError):
    """The job itself is malformed."""


class LoadError(RuntimeError):
    """An artifact cannot be loaded: the device rejects it."""


# --- device facts --------------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _cpu_list(text: str | None) -> list[int]:
    """``0-3,6`` -> [0, 1, 2, 3, 6]; ``ValueError`` for text that is not a CPU list of CPUs below :data:`MAX_CPUS`.

    Numbers are bounded before a range is expanded, so ``0-20000000`` costs nothing.
    """
    cores = []  # type: list[int]
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        high = high or low
        for number in (low, high):
            if not (number.isascii() and number.isdigit()) or len(number) > 4 or int(number) >= MAX_CPUS:
                raise ValueError("CPU list " + repr((text or "")[:40]) + ": " + repr(number[:24])
                                 + " is not a CPU number below " + str(MAX_CPUS))
        if int(high) < int(low) or len(cores) + int(high) - int(low) + 1 > MAX_CPUS:
            raise ValueError("CPU list " + repr((text or "")[:40]) + " is backwards or longer than " + str(MAX_CPUS))
        cores.extend(range(int(low), int(high) + 1))
    return cores


def online_cores(text: str | None) -> list[int]:
    """The online CPU list, or every CPU ``os.cpu_count`` sees when the list is missing or not believable."""
    try:
        cores = _cpu_list(text)
    except ValueError:
        cores = []
    return cores or list(range(min(os.cpu_count() or 1, MAX_CPUS)))


def _small_int(text: str, digits: int) -> int | None:
    """``int(text)`` for an optionally signed ASCII integer of at most ``digits`` digits, else ``None``."""
    body = text[1:] if text.startswith("-") else text
    if not (body.isascii() and body.isdigit()) or len(body) > digits:
        return None
    return int(text)


def cpu_model() -> str:
    """The CPU or board name: ``model name`` on x86, ``Model``/``Hardware`` on ARM boards."""
    info = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor", "uarch"):
        if fields.get(key):
            return fields[key]
    return os.uname().machine


def thermal_zones() -> dict[str, float]:
    """``{"<zone type>" or "thermal_zoneN": degrees C}`` from /sys/class/thermal."""
    zones: dict[str, float] = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*"))[:MAX_ZONES]:
        value = _small_int(_read(os.path.join(zone, "temp")) or "", 9)
        if value is None:
            continue
        name = (_read(os.path.join(zone, "type")) or os.path.basename(zone))[:64]
        if name in zones:
            name = f"{name}:{os.path.basename(zone)}"
        zones[name] = value / 1000.0 if abs(value) > 200 else float(value)
    return zones


def _tool_output(*command: str) -> dict[str, Any] | None:
    """Raw stdout/stderr of a board tool (``vcgencmd``, ``nvpmodel``) when it exists; parsed on the host."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"command": list(command), "error": f"{type(exc).__name__}: {exc}"}
    return {"command": list(command), "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def device_facts() -> dict[str, Any]:
    """Everything the device says about itself that bears on latency."""
    online = online_cores(_read("/sys/devices/system/cpu/online"))
    cpufreq: dict[str, dict[str, Any]] = {}
    for core in online:
        base = f"/sys/devices/system/cpu/cpu{core}/cpufreq"
        entry = {
            name: _read(os.path.join(base, f"scaling_{name}"))
            for name in ("governor", "cur_freq", "min_freq", "max_freq")
        }
        if any(value is not None for value in entry.values()):
            cpufreq[str(core)] = entry
    meminfo = dict(
        (line.split(":")[0], line.split(":")[1].strip()) for line in (_read("/proc/meminfo") or "").splitlines() if ":" in line
    )
    kb = _small_int(meminfo.get("MemAvailable", "").split(" ")[0], 15)
    tools = {
        "vcgencmd_get_throttled": _tool_output("vcgencmd", "get_throttled"),
        "vcgencmd_measure_temp": _tool_output("vcgencmd", "measure_temp"),
        "nvpmodel_q": _tool_output("nvpmodel", "-q"),
    }
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "board": (_read("/proc/device-tree/model") or "").rstrip("\x00") or None,
        "machine": os.uname().machine,
        "kernel": os.uname().release,
        "online_cores": online,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpufreq": cpufreq,
        "thermal_c": thermal_zones(),
        "free_memory_mb": kb / 1024.0 if kb is not None else None,
        "load_average": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "tools": {name: output for name, output in tools.items() if output is not None},
    }


def runtime_versions() -> dict[str, str]:
    """The installed version of every runtime here, read from package metadata (no runtime is imported).

    ``cuda`` is added only where a GPU device node exists; then torch is imported to name the GPU.
    """
    from importlib.util import find_spec

    versions: dict[str, str] = {}
    for module in ("torch", "ai_edge_litert", "tflite_runtime", "executorch"):
        try:
            if find_spec(module) is not None:
                versions[module] = _dist_version(module)
        except (ImportError, ValueError):
            continue
    if "torch" in versions and (glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/nvhost-gpu")):
        try:
            import torch

            if torch.cuda.is_available():
                versions["cuda"] = f"{torch.version.cuda} ({torch.cuda.get_device_name(0)})"
        except Exception:  # noqa: BLE001 - a broken CUDA install is reported as none
            pass
    return versions


def _dist_version(module: str) -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version  # novermin: 3.8+, handled below
    except ImportError:  # Python 3.7 boards: the module's own version string
        try:
            return str(getattr(importlib.import_module(module), "__version__", "unknown"))
        except Exception:  # noqa: BLE001 - any import failure means unknown
            return "unknown"

    for name in (module.replace("_", "-"), module):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "unknown"


# --- loading and timing --------------------------------------------------------------------------

Runnable = Callable[[], Any]


def _torch_runnable(spec: dict[str, Any], threads: int) -> Runnable:
    try:
        import torch
    except ImportError as exc:
        raise LoadError(f"no torch for {sys.executable} on this device: pip install torch, or point ssh.python at one") from exc

    torch.set_num_threads(threads)
    path, device = spec["path"], spec.get("device", "cpu")
    on_gpu = device.startswith("cuda")
    if on_gpu:
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise LoadError(f"the artifact asks for {device} but torch sees no such CUDA device here")
    try:
        if on_gpu or not path.endswith(".ptl"):
            # A .ptl also holds the full TorchScript program, which torch.jit.load can place on a GPU.
            module = torch.jit.load(_source(spec), map_location=device)
            module.eval()
        else:
            from torch.jit.mobile import _load_for_lite_interpreter

            module = _load_for_lite_interpreter(_source(spec))
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError or ValueError for a bad file
        raise LoadError(f"torch cannot load {os.path.basename(path)}: {_one_line(exc)}") from exc
    sample = torch.rand(*spec["input_shape"], device=device)

    def call() -> Any:
        with torch.inference_mode():
            out = module(sample)
        if on_gpu:
            torch.cuda.synchronize(device)  # time the kernels, not their launch
        return out

    return call


def _tflite_runnable(spec: dict[str, Any], threads: int) -> Runnable:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise LoadError("no TFLite runtime here: install ai-edge-litert or tflite-runtime") from exc
    import numpy as np

    try:
        if "content" in spec:
            interpreter = Interpreter(model_content=spec["content"], num_threads=threads)
        else:
            interpreter = Interpreter(model_path=spec["path"], num_threads=threads)
        interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"the TFLite interpreter cannot load {os.path.basename(spec['path'])}: {_one_line(exc)}") from exc
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], rng.random(detail["shape"]).astype(detail["dtype"]))
    return interpreter.invoke


def _executorch_runnable(spec: dict[str, Any], threads: int) -> Runnable:
    try:
        import torch
        from executorch.runtime import Runtime
    except ImportError as exc:
        raise LoadError("no ExecuTorch runtime here: install executorch") from exc
    try:
        method = Runtime.get().load_program(spec.get("content", spec["path"])).load_method("forward")
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"the ExecuTorch runtime cannot load {os.path.basename(spec['path'])}: {_one_line(exc)}") from exc
    sample = torch.rand(*spec["input_shape"])
    return lambda: method.execute([sample])


LOADERS: dict[str, Callable[[dict[str, Any], int], Runnable]] = {
    "torchscript": _torch_runnable,
    "tflite": _tflite_runnable,
    "executorch": _executorch_runnable,
}


def load(spec: dict[str, Any], threads: int) -> Runnable:
    """A zero-argument callable running one inference of the artifact ``spec``; :class:`LoadError` otherwise."""
    path = spec["path"]
    if not os.path.isfile(path):
        raise LoadError(f"{path} does not exist on the device")
    expected = spec.get("sha256")
    if expected:
        # Hash and load the same bytes: a file swapped after the check is never the one loaded.
        with open(path, "rb") as handle:
            content = handle.read()
        digest = hashlib.sha256(content).hexdigest()
        if digest != expected:
            raise LoadError(f"{os.path.basename(path)} is damaged: sha256 {digest[:12]}... != expected {expected[:12]}...")
        spec = {**spec, "content": content}
    runtime = spec.get("runtime", "torchscript")
    if runtime not in LOADERS:
        raise LoadError(f"this runner cannot run runtime {runtime!r}; it knows {', '.join(LOADERS)}")
    return LOADERS[runtime](spec, threads)


def time_runs(call: Runnable, warmup: int, runs: int) -> list[float]:
    """``warmup`` untimed calls, then ``runs`` timed ones in milliseconds."""
    for _ in range(warmup):
        call()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        call()
        samples.append((clock() - start) / 1e6)
    return samples


def _source(spec: dict[str, Any]) -> Any:
    """The artifact's checked bytes as a file object when :func:`load` read them, else its path."""
    return io.BytesIO(spec["content"]) if "content" in spec else spec["path"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}"


# --- the job -------------------------------------------------------------------------------------


def _validate(job: Any) -> dict[str, Any]:
    if not isinstance(job, dict):
        raise JobError("the job must be a JSON object")
    mode = job.get("mode", "run")
    if mode not in MODES:
        raise JobError(f"field 'mode': {mode!r} is not one of {', '.join(MODES)}")
    artifacts = job.get("artifacts", [])
    if not isinstance(artifacts, list) or not all(isinstance(a, dict) and isinstance(a.get("path"), str) for a in artifacts):
        raise JobError("field 'artifacts': must be a list of objects with a string 'path'")
    for position, spec in enumerate(artifacts):
        shape = spec.get("input_shape")
        if shape is not None and not (isinstance(shape, list) and all(isinstance(d, int) and d > 0 for d in shape)):
            raise JobError(f"field 'artifacts[{position}].input_shape': must be a list of positive integers")
    schedule = job.get("schedule", [])
    for position, burst in enumerate(schedule if isinstance(schedule, list) else [None]):
        if not (
            isinstance(burst, list)
            and len(burst) == 3
            and all(isinstance(v, int) and v >= 0 for v in burst)
            and burst[0] < len(artifacts)
        ):
            raise JobError(f"field 'schedule[{position}]': must be [artifact index < {len(artifacts)}, warmup >= 0, runs >= 0]")
    threads = job.get("threads", 1)
    if not isinstance(threads, int) or threads < 1:
        raise JobError("field 'threads': must be an integer >= 1")
    return {"mode": mode, "artifacts": artifacts, "schedule": schedule, "threads": threads}


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Run a validated job; the result object printed as JSON."""
    started = time.time()
    result: dict[str, Any] = {"ok": True, "runner_version": RUNNER_VERSION, "mode": job["mode"]}
    if job["mode"] == "temperatures":
        result["thermal_c"] = thermal_zones()
        return result
    if job["mode"] == "probe":
        result["facts"] = device_facts()
        result["runtime_versions"] = runtime_versions()
        return result

    artifacts, threads = job["artifacts"], job["threads"]
    result["temperatures_start_c"] = thermal_zones()
    errors: list[dict[str, Any] | None] = [None] * len(artifacts)
    calls: list[Runnable | None] = [None] * len(artifacts)
    load_ms: list[float | None] = [None] * len(artifacts)
    for index, spec in enumerate(artifacts):
        begin = time.perf_counter()
        try:
            calls[index] = load(spec, threads)
            if job["mode"] == "check":
                calls[index]()  # type: ignore[misc]
        except LoadError as exc:
            errors[index] = {"stage": "load", "kind": "rejected", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a model that loads but cannot run once is rejected too
            errors[index] = {"stage": "load", "kind": "rejected", "message": _one_line(exc)}
        load_ms[index] = (time.perf_counter() - begin) * 1e3

    samples: list[list[float]] = [[] for _ in artifacts]
    if job["mode"] == "run":
        for index, warmup, runs in job["schedule"]:
            call = calls[index]
            if call is None or errors[index] is not None:
                continue
            try:
                samples[index].extend(time_runs(call, warmup, runs))
            except Exception as exc:  # noqa: BLE001 - reported per artifact, the batch carries on
                errors[index] = {"stage": "run", "kind": "failed", "message": _one_line(exc)}
    result.update(
        samples_ms=samples,
        errors=errors,
        load_ms=load_ms,
        threads=threads,
        temperatures_end_c=thermal_zones(),
        facts=device_facts(),
        runtime_versions={name: version for name, version in _loaded_runtime_versions().items()},
        wall_s=time.time() - started,
    )
    return result


def _loaded_runtime_versions() -> dict[str, str]:
    versions = {}
    for module in ("torch", "ai_edge_litert", "tflite_runtime", "executorch"):
        if module in sys.modules:
            versions[module] = str(getattr(sys.modules[module], "__version__", "") or _dist_version(module))
    return versions


def handle(text: str) -> tuple[dict[str, Any], int]:
    """One job's text -> (result object, exit status: 0 ok, 1 the job failed, 2 the job is malformed)."""
    try:
        try:
            job = _validate(json.loads(text))
        except json.JSONDecodeError as exc:
            raise JobError(f"the job is not JSON: {exc}") from exc
    except JobError as exc:
        return {"ok": False, "runner_version": RUNNER_VERSION, "error": str(exc)}, 2
    try:
        result = execute(job)
    except Exception as exc:  # noqa: BLE001 - never a traceback: the host parses this line
        result = {"ok": False, "runner_version": RUNNER_VERSION, "error": f"runner crashed: {_one_line(exc)}"}
    return result, 0 if result["ok"] else 1


def _result_channel() -> Callable[[dict[str, Any]], None]:
    """A writer of JSON lines to the real stdout; fd 1 itself is pointed at stderr from now on.

    Runtimes print banners on stdout from C++ ("Created TensorFlow Lite XNNPACK delegate"),
    which would break the one-JSON-line-per-job protocol.
    """
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)

    def write(result: dict[str, Any]) -> None:
        sys.stdout.flush()
        data = (json.dumps(result) + "\n").encode()
        while data:
            data = data[os.write(result_fd, data):]

    return write


def serve() -> int:
    """``runner.py --serve``: one job per stdin line, one result per stdout line, until stdin closes.

    The first line out is a greeting with the runner's PID. Keeping one process for a
    whole campaign pays the runtime import (seconds on a Pi) once instead of per job.
    """
    write = _result_channel()
    write({"ok": True, "runner_version": RUNNER_VERSION, "serving": True, "pid": os.getpid()})
    for line in iter(sys.stdin.readline, ""):
        if line.strip():
            write(handle(line)[0])
    return 0


def main(argv: list[str] | None = None) -> int:
    """``runner.py JOB.json`` (``-`` reads stdin) prints one JSON result line; ``--serve`` answers jobs line by line."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    if len(argv) != 1:
        print(json.dumps({"ok": False, "runner_version": RUNNER_VERSION, "error": "usage: runner.py JOB.json | - | --serve"}))
        return 2
    try:
        text = sys.stdin.read() if argv[0] == "-" else open(argv[0], encoding="utf-8").read()
    except OSError as exc:
        print(json.dumps({"ok": False, "runner_version": RUNNER_VERSION, "error": f"cannot read the job: {exc}"}))
        return 2
    write = _result_channel()
    result, status = handle(text)
    write(result)
    return status


if __name__ == "__main__":
    sys.exit(main())
