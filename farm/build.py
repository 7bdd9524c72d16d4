"""Build, verify and cache the files a device runs: TorchScript ``.ptl``, ``.tflite``, ExecuTorch ``.pte``.

An artifact is built once per (space, arch, runtime, batch size, input size,
layout) and cached under ``cache_dir`` by the hash of everything that goes
into it: those fields, the eager model's structure and weights, and the
versions of torch and of the converter. A second request for the same
artifact returns the cached file without building.

Every fresh build is verified once on the build host before it is shipped:
the built file is loaded in its own interpreter (the lite interpreter,
ai-edge-litert / tflite_runtime, or the ExecuTorch runtime), fed the same
input as the eager model, and the largest absolute difference of the outputs
must stay within ``atol + rtol * max|eager|``. A failed verification raises
:class:`VerificationError` and leaves nothing in the cache.

Runtimes:

- ``torchscript``: ``torch.jit.trace`` (``script`` where tracing fails), then
  ``torch.jit.freeze``, then ``_save_for_lite_interpreter``.
  ``optimize_for_mobile`` is applied only where this torch has XNNPACK
  (the CPU wheels on x86 have none, and it then raises).
- ``tflite``: through ``litert-torch`` (the ``convert`` extra; no TensorFlow),
  NCHW input or, with ``layout="nhwc"``, channels-last input.
- ``executorch``: ``torch.export`` -> ``to_edge_transform_and_lower`` with the
  XNNPACK partitioner -> ``.pte`` (the ``executorch`` extra).
- ``torch``: eager; nothing is built, the agent builds the model itself.

The model comes from an injectable :data:`ModelBuilder`; the default asks
``farm.spaces.get(space)``.

Example:
    >>> import tempfile, torch
    >>> def tiny(space, arch, batch_size, input_size):
    ...     torch.manual_seed(0)
    ...     model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    ...     return model, (batch_size, 3, input_size, input_size)
    >>> result = build("tiny", "a", "torchscript", 1, 8, tempfile.mkdtemp(), model_builder=tiny)
    >>> result.artifact.path.endswith(".ptl"), result.cached, result.max_abs_diff < 1e-5
    (True, False, True)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch

from farm.atomic import write_bytes_atomic
from agents.base import AgentError, Artifact

#: Bumped whenever the way a file is built changes, so old cache entries are not reused.
BUILD_FORMAT = 1

Layout = Literal["nchw", "nhwc"]

#: ``(space, arch, batch_size, input_size) -> (eager model in eval mode, NCHW input shape)``.
ModelBuilder = Callable[[str, str, int, "int | None"], "tuple[torch.nn.Module, tuple[int, ...]]"]

SUFFIXES = {"torchscript": ".ptl", "tflite": ".tflite", "executorch": ".pte"}

_SEEDED = threading.Lock()


class BuildError(AgentError):
    """An artifact could not be built (conversion failed, bad request). Permanent for that artifact."""


class ConverterUnavailable(BuildError):
    """The converter for a runtime is not installed here (e.g. litert-torch without the ``convert`` extra)."""


class VerificationError(BuildError):
    """The built file disagrees with the eager model, or cannot be loaded by its own interpreter."""


@dataclass(frozen=True)
class BuildSettings:
    """How artifacts are built and checked.

    ``atol`` and ``rtol`` bound the verification: max |built - eager| <= atol + rtol * max |eager|.
    ``layout`` is the input layout of ``.tflite`` files (TorchScript and ExecuTorch take NCHW).
    """

    layout: Layout = "nchw"
    atol: float = 1e-4
    rtol: float = 1e-4
    seed: int = 0


@dataclass(frozen=True)
class BuiltArtifact:
    """The outcome of :func:`build`.

    ``seconds`` is the time this call spent (model construction, conversion and
    verification; near zero for a cache hit); ``build_seconds`` is what the
    original build took, also for cache hits, so a campaign summary can report
    the build cost it saved.
    """

    artifact: Artifact
    seconds: float
    build_seconds: float
    cached: bool
    max_abs_diff: float | None
    verified_with: str | None
    input_shape: tuple[int, ...] | None
    optimized_for_mobile: bool = False


def space_model_builder(space: str, arch: str, batch_size: int, input_size: int | None) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The default :data:`ModelBuilder`: the eager model and its input shape from ``farm.spaces``."""
    from farm import spaces

    search_space = spaces.get(space)
    model = search_space.build(arch, input_size=input_size).eval()
    return model, tuple(search_space.input_shape(arch, batch_size, input_size))


def build_artifact(
    space: Any,
    arch: str,
    runtime: str,
    batch_size: int,
    input_size: int | None,
    cache_dir: str | os.PathLike[str],
    **options: Any,
) -> Artifact:
    """Build (or fetch from the cache) one artifact; ``path`` and ``sha256`` are set except for eager ``torch``.

    ``options`` are those of :func:`build` (``settings``, ``model_builder``).
    """
    return build(space, arch, runtime, batch_size, input_size, cache_dir, **options).artifact


def build(
    space: Any,
    arch: str,
    runtime: str,
    batch_size: int,
    input_size: int | None,
    cache_dir: str | os.PathLike[str],
    *,
    settings: BuildSettings | None = None,
    model_builder: ModelBuilder | None = None,
) -> BuiltArtifact:
    """Build, verify and cache one artifact; see the module docstring.

    ``space`` is a space name or a ``SearchSpace`` object. Raises :class:`BuildError`
    (unknown runtime, conversion failure), :class:`ConverterUnavailable` and
    :class:`VerificationError`.
    """
    started = time.perf_counter()
    settings = settings or BuildSettings()
    space_name = space if isinstance(space, str) else space.name
    if runtime == "torch":
        return BuiltArtifact(
            Artifact(space_name, arch, runtime, batch_size, input_size or 0), 0.0, 0.0, True, None, None, None
        )
    if runtime not in SUFFIXES:
        raise BuildError(f"cannot build runtime {runtime!r}; known: torch, {', '.join(SUFFIXES)}")
    converter = _CONVERTERS[runtime]
    converter_version = converter.version()

    builder = model_builder or space_model_builder
    with _SEEDED, torch.random.fork_rng():  # the global RNG is shared by threads
        torch.manual_seed(settings.seed)  # same weights every time, so the cache key is stable
        model, input_shape = builder(space_name, arch, batch_size, input_size)
    model = model.eval()
    input_size = input_size or int(input_shape[-1])
    artifact = Artifact(space_name, arch, runtime, batch_size, input_size)
    key = _cache_key(artifact, model, settings, converter_version)
    target = Path(cache_dir) / runtime / key[:2] / f"{key}{SUFFIXES[runtime]}"
    meta_path = target.with_name(target.name + ".json")

    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_name(target.name + ".lock")):  # one build per key, also across processes
        meta = _read_cached(target, meta_path)
        cached = meta is not None
        if meta is None:
            meta = _convert_and_verify(converter, model, artifact, input_shape, target, settings, started)
            meta["converter"] = converter_version
            write_bytes_atomic(json.dumps(meta, indent=1).encode(), meta_path)
    return BuiltArtifact(
        replace(artifact, path=str(target), sha256=meta["sha256"]),
        seconds=time.perf_counter() - started,
        build_seconds=float(meta["build_seconds"]),
        cached=cached,
        max_abs_diff=meta["max_abs_diff"],
        verified_with=meta["verified_with"],
        input_shape=tuple(meta["input_shape"]),
        optimized_for_mobile=bool(meta.get("optimized_for_mobile", False)),
    )


def _convert_and_verify(
    converter: "_Converter",
    model: torch.nn.Module,
    artifact: Artifact,
    input_shape: tuple[int, ...],
    target: Path,
    settings: BuildSettings,
    started: float,
) -> dict[str, Any]:
    """Convert into a scratch file, verify it against eager, move it to ``target``; its metadata."""
    what = f"{artifact.runtime} build of {artifact.search_space} arch {artifact.arch!r}"
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(settings.seed))
    with torch.no_grad():
        expected = _as_array(model(example))
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        scratch_file = Path(scratch) / target.name
        try:
            notes = converter.convert(model, example, scratch_file, settings)
        except (BuildError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything; name the step that failed
            raise BuildError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
        actual, file_shape = converter.run(scratch_file, example, settings)
        max_diff = _check(expected, actual, settings, what)
        digest = hashlib.sha256(scratch_file.read_bytes()).hexdigest()
        os.replace(scratch_file, target)
    return {
        "sha256": digest,
        "build_seconds": time.perf_counter() - started,
        "max_abs_diff": max_diff,
        "verified_with": converter.verifier,
        "input_shape": list(file_shape),
        "layout": settings.layout if artifact.runtime == "tflite" else "nchw",
        "optimized_for_mobile": bool(notes.get("optimized_for_mobile", False)),
        "artifact": asdict(artifact),
        "torch": torch.__version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON written next to a built file (input shape, layout, build time, verification), if any."""
    meta_path = Path(f"{path}.json")
    return json.loads(meta_path.read_text()) if meta_path.is_file() else None


def has_xnnpack() -> bool:
    """Whether this torch build has XNNPACK, which ``optimize_for_mobile`` needs."""
    try:
        import torch.backends.xnnpack as xnnpack

        return bool(xnnpack.enabled)
    except (ImportError, AttributeError, RuntimeError):
        return False


def converter_available(runtime: str) -> bool:
    """Whether ``runtime`` can be built here (its converter and verifier import)."""
    if runtime == "torch":
        return True
    try:
        _CONVERTERS[runtime].version()
    except (ConverterUnavailable, KeyError):
        return False
    return True


# --- converters ---------------------------------------------------------------------------------


class _Converter:
    """One runtime's converter and the interpreter that verifies its files."""

    runtime = ""
    verifier = ""
    distribution = ""  # the package whose version goes into the cache key
    modules: tuple[str, ...] = ()  # what must import for a build
    extra = ""  # the latfarm extra that installs them

    def version(self) -> str:
        try:
            version = importlib.metadata.version(self.distribution)
            for module in self.modules:
                importlib.import_module(module)
        except (ImportError, importlib.metadata.PackageNotFoundError) as exc:
            raise ConverterUnavailable(
                f"{self.runtime} builds need {self.distribution} ({exc}); install the extra: pip install 'latfarm[{self.extra}]'"
            ) from exc
        return f"{self.distribution} {version}"

    def convert(self, model: torch.nn.Module, example: torch.Tensor, out: Path, settings: BuildSettings) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, path: Path, example: torch.Tensor, settings: BuildSettings) -> tuple[np.ndarray, tuple[int, ...]]:
        """Load ``path`` in its interpreter, run ``example``; (output, the file's input shape)."""
        try:
            return self._run(path, example, settings)
        except Exception as exc:  # noqa: BLE001 - any failure to load or run the file fails verification
            raise VerificationError(f"the {self.verifier} cannot run {path.name}: {type(exc).__name__}: {exc}") from exc

    def _run(self, path: Path, example: torch.Tensor, settings: BuildSettings) -> tuple[np.ndarray, tuple[int, ...]]:
        raise NotImplementedError


class _TorchScript(_Converter):
    runtime = "torchscript"
    verifier = "torch lite interpreter"

    def version(self) -> str:
        return f"torch {torch.__version__} xnnpack={has_xnnpack()}"

    def convert(self, model: torch.nn.Module, example: torch.Tensor, out: Path, settings: BuildSettings) -> dict[str, Any]:
        try:
            scripted = torch.jit.trace(model, example, check_trace=False)
        except Exception:  # noqa: BLE001 - data-dependent control flow: fall back to scripting
            scripted = torch.jit.script(model)
        frozen = torch.jit.freeze(scripted.eval())
        optimized = False
        if has_xnnpack():
            from torch.utils.mobile_optimizer import optimize_for_mobile

            frozen = optimize_for_mobile(frozen)
            optimized = True
        frozen._save_for_lite_interpreter(str(out))
        return {"optimized_for_mobile": optimized}

    def _run(self, path: Path, example: torch.Tensor, settings: BuildSettings) -> tuple[np.ndarray, tuple[int, ...]]:
        from torch.jit.mobile import _load_for_lite_interpreter

        module = _load_for_lite_interpreter(str(path))
        with torch.no_grad():
            return _as_array(module(example)), tuple(example.shape)


class _TFLite(_Converter):
    runtime = "tflite"
    verifier = "ai-edge-litert interpreter"
    distribution = "litert-torch"
    modules = ("litert_torch",)
    extra = "convert"

    def convert(self, model: torch.nn.Module, example: torch.Tensor, out: Path, settings: BuildSettings) -> dict[str, Any]:
        os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # it draws a progress tree per conversion
        import litert_torch

        sample = example
        if settings.layout == "nhwc":
            model = litert_torch.to_channel_last_io(model, args=[0])
            sample = example.permute(0, 2, 3, 1).contiguous()
        litert_torch.convert(model, (sample,)).export(str(out))
        return {}

    def _run(self, path: Path, example: torch.Tensor, settings: BuildSettings) -> tuple[np.ndarray, tuple[int, ...]]:
        feed = example.permute(0, 2, 3, 1).contiguous() if settings.layout == "nhwc" else example
        interpreter = _tflite_interpreter_class()(model_path=str(path))
        interpreter.allocate_tensors()
        (inp,) = interpreter.get_input_details()
        interpreter.set_tensor(inp["index"], feed.numpy().astype(inp["dtype"]))
        interpreter.invoke()
        out = interpreter.get_output_details()[0]
        return np.asarray(interpreter.get_tensor(out["index"]), dtype=np.float64), tuple(int(d) for d in inp["shape"])


class _ExecuTorch(_Converter):
    runtime = "executorch"
    verifier = "executorch runtime"
    distribution = "executorch"
    modules = ("executorch.exir", "executorch.runtime")
    extra = "executorch"

    def convert(self, model: torch.nn.Module, example: torch.Tensor, out: Path, settings: BuildSettings) -> dict[str, Any]:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        exported = torch.export.export(model, (example,))
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
        out.write_bytes(program.buffer)
        return {}

    def _run(self, path: Path, example: torch.Tensor, settings: BuildSettings) -> tuple[np.ndarray, tuple[int, ...]]:
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(path)).load_method("forward")
        return _as_array(method.execute([example])[0]), tuple(example.shape)


_CONVERTERS: dict[str, _Converter] = {"torchscript": _TorchScript(), "tflite": _TFLite(), "executorch": _ExecuTorch()}


def _tflite_interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found,no-redef]
    return Interpreter


# --- helpers -------------------------------------------------------------------------------------


def _as_array(output: Any) -> np.ndarray:
    if isinstance(output, (tuple, list)):
        output = output[0]
    if isinstance(output, dict):
        output = next(iter(output.values()))
    return output.detach().cpu().numpy().astype(np.float64)


def _check(expected: np.ndarray, actual: np.ndarray, settings: BuildSettings, what: str) -> float:
    if expected.shape != actual.shape:
        raise VerificationError(f"{what}: output shape {actual.shape} differs from eager {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise VerificationError(f"{what}: the built model outputs NaN or inf")
    max_diff = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
    bound = settings.atol + settings.rtol * float(np.max(np.abs(expected))) if expected.size else settings.atol
    if max_diff > bound:
        raise VerificationError(
            f"{what}: max abs diff {max_diff:.3g} against eager exceeds the tolerance {bound:.3g} "
            "(atol + rtol * max|eager|); the file was not cached or shipped"
        )
    return max_diff


def _cache_key(artifact: Artifact, model: torch.nn.Module, settings: BuildSettings, converter_version: str) -> str:
    digest = hashlib.sha256()
    header = {
        "format": BUILD_FORMAT,
        "artifact": asdict(artifact),
        "layout": settings.layout if artifact.runtime == "tflite" else "nchw",
        "atol": settings.atol,
        "rtol": settings.rtol,
        "seed": settings.seed,
        "converter": converter_version,
        "model": repr(model),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        buffer = io.BytesIO()
        np.save(buffer, tensor.detach().cpu().numpy(), allow_pickle=False)
        digest.update(buffer.getvalue())
    return digest.hexdigest()


def _read_cached(target: Path, meta_path: Path) -> dict[str, Any] | None:
    if not (target.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if hashlib.sha256(target.read_bytes()).hexdigest() != meta.get("sha256"):
        return None  # damaged cache entry: rebuild over it
    return meta
