"""farm.build: real TorchScript / TFLite / ExecuTorch builds, verified against eager and cached by content hash."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch

from farm.build import (
    BuildError,
    BuildSettings,
    ConverterUnavailable,
    VerificationError,
    build,
    build_artifact,
    converter_available,
    has_xnnpack,
    read_metadata,
)


def tiny(space: str, arch: str, batch_size: int, input_size: int | None):
    """Stand-in space: a small CNN whose width is the arch string."""
    width = int(arch)
    size = input_size or 12
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.BatchNorm2d(width), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 5),
    )
    return model.eval(), (batch_size, 3, size, size)


class Noisy(torch.nn.Module):
    """Output depends on fresh random noise: no built file can agree with eager."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_torchscript_build_is_verified_hashed_and_cached(tmp_path: Path) -> None:
    first = build("tiny", "6", "torchscript", 2, 12, tmp_path, model_builder=tiny)
    path = Path(first.artifact.path)
    assert path.suffix == ".ptl" and path.is_file()
    assert first.artifact.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not first.cached and first.build_seconds > 0
    assert first.verified_with == "torch lite interpreter" and first.max_abs_diff <= 1e-4
    assert first.input_shape == (2, 3, 12, 12)
    # XNNPACK-less torch (the x86 CPU wheel) must still build, just without optimize_for_mobile.
    assert first.optimized_for_mobile == has_xnnpack()
    loaded = torch.jit.mobile._load_for_lite_interpreter(str(path))
    assert loaded(torch.zeros(2, 3, 12, 12)).shape == (2, 5)

    again = build("tiny", "6", "torchscript", 2, 12, tmp_path, model_builder=tiny)
    assert again.cached and again.artifact == first.artifact
    assert again.build_seconds == pytest.approx(first.build_seconds)
    assert read_metadata(path)["max_abs_diff"] == first.max_abs_diff

    other_batch = build("tiny", "6", "torchscript", 1, 12, tmp_path, model_builder=tiny)
    other_arch = build("tiny", "7", "torchscript", 2, 12, tmp_path, model_builder=tiny)
    assert len({first.artifact.path, other_batch.artifact.path, other_arch.artifact.path}) == 3


def test_cache_key_follows_the_weights(tmp_path: Path) -> None:
    def shifted(space, arch, batch_size, input_size):
        model, shape = tiny(space, arch, batch_size, input_size)
        with torch.no_grad():
            model[0].bias.add_(1.0)
        return model, shape

    plain = build("tiny", "4", "torchscript", 1, 12, tmp_path, model_builder=tiny)
    changed = build("tiny", "4", "torchscript", 1, 12, tmp_path, model_builder=shifted)
    assert plain.artifact.path != changed.artifact.path and not changed.cached


def test_damaged_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    first = build("tiny", "4", "torchscript", 1, 12, tmp_path, model_builder=tiny)
    Path(first.artifact.path).write_bytes(b"damaged")
    again = build("tiny", "4", "torchscript", 1, 12, tmp_path, model_builder=tiny)
    assert not again.cached and again.artifact.path == first.artifact.path
    digest = hashlib.sha256(Path(again.artifact.path).read_bytes()).hexdigest()
    assert digest == again.artifact.sha256 == read_metadata(again.artifact.path)["sha256"]


def test_failed_verification_raises_and_caches_nothing(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="max abs diff .* exceeds the tolerance"):
        build("tiny", "x", "torchscript", 1, 8, tmp_path, model_builder=lambda *a: (Noisy(), (1, 3, 8, 8)))
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".lock"] == []


def test_concurrent_requests_build_once_and_agree(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: build("tiny", "5", "torchscript", 1, 12, tmp_path, model_builder=tiny), range(3)))
    assert sorted(r.cached for r in results) == [False, True, True]
    assert len({r.artifact.sha256 for r in results}) == 1
    assert hashlib.sha256(Path(results[0].artifact.path).read_bytes()).hexdigest() == results[0].artifact.sha256


def test_eager_torch_needs_no_build_and_unknown_runtime_is_refused(tmp_path: Path) -> None:
    artifact = build_artifact("tiny", "4", "torch", 1, 12, tmp_path)
    assert artifact.path is None and artifact.runtime == "torch"
    with pytest.raises(BuildError, match="cannot build runtime 'onnx'"):
        build("tiny", "4", "onnx", 1, 12, tmp_path, model_builder=tiny)


def test_missing_converter_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # import litert_torch -> ImportError
    assert not converter_available("tflite")
    with pytest.raises(ConverterUnavailable, match=r"latfarm\[convert\]"):
        build("tiny", "4", "tflite", 1, 12, tmp_path, model_builder=tiny)


def test_tflite_build_with_channels_last_input(tmp_path: Path) -> None:
    """NHWC here; the NCHW default is built by tests/agents' ``tiny_tflite`` fixture and run there."""
    if not converter_available("tflite"):
        pytest.skip("litert-torch is not installed (the 'convert' extra)")
    result = build("tiny", "4", "tflite", 1, 12, tmp_path, model_builder=tiny, settings=BuildSettings(layout="nhwc"))
    assert result.artifact.path.endswith(".tflite") and result.verified_with == "ai-edge-litert interpreter"
    assert result.input_shape == (1, 12, 12, 3) and read_metadata(result.artifact.path)["layout"] == "nhwc"
    assert result.max_abs_diff <= 1e-4


def test_executorch_build_with_xnnpack(tmp_path: Path) -> None:
    if not converter_available("executorch"):
        pytest.skip("executorch is not installed (the 'executorch' extra)")
    result = build("tiny", "4", "executorch", 1, 12, tmp_path, model_builder=tiny)
    assert result.artifact.path.endswith(".pte") and result.verified_with == "executorch runtime"
    assert result.max_abs_diff <= 1e-4
