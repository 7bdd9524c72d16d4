"""Fixtures of the agent tests: a real sshd on 127.0.0.1 and small built artifacts.

``sshd`` starts OpenSSH's ``/usr/sbin/sshd`` once per session (generated host
and client keys, ``StrictModes no``, ``UsePAM no``, ``-D -e -f CONFIG``) and
stops it by its PID; tests skip cleanly where sshd is not installed.
``sshd_factory`` starts extra daemons a test may crash.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch

HERE = Path(__file__).resolve().parent


def _load_peer():
    spec = importlib.util.spec_from_file_location("latfarm_tests_sshd_peer", HERE / "sshd_peer.py")
    assert spec is not None and spec.loader is not None
    if spec.name in sys.modules:  # tests/e2e loads the same peer
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sshd_peer = _load_peer()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator["sshd_peer.SSHDaemon"]:
    """A real sshd serving this machine as the "device"."""
    try:
        daemon = sshd_peer.start_sshd(tmp_path_factory.mktemp("sshd"))
    except sshd_peer.SSHDUnavailable as error:
        pytest.skip(f"no sshd: {error}")
    yield daemon
    daemon.stop()


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[Callable[[], "sshd_peer.SSHDaemon"]]:
    """Start extra sshd daemons (for tests that crash one); all stopped at the end."""
    started: list = []

    def start() -> "sshd_peer.SSHDaemon":
        try:
            daemon = sshd_peer.start_sshd(tmp_path / f"sshd{len(started)}")
        except sshd_peer.SSHDUnavailable as error:
            pytest.skip(f"no sshd: {error}")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def tiny_model_builder(space: str, arch: str, batch_size: int, input_size: int | None) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """A stand-in search space: a small CNN whose width is the arch string (e.g. ``"8"``)."""
    width = int(arch)
    size = input_size or 16
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3, padding=1),
        torch.nn.BatchNorm2d(width),
        torch.nn.ReLU(),
        torch.nn.Conv2d(width, width, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(width, 10),
    )
    return model.eval(), (batch_size, 3, size, size)


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def tiny_torchscript(artifact_cache: Path):
    """Two built and verified ``.ptl`` files of the stand-in space (widths 4 and 16)."""
    from farm.build import build

    return [
        build("tiny", width, "torchscript", 1, 16, artifact_cache, model_builder=tiny_model_builder).artifact
        for width in ("4", "16")
    ]


@pytest.fixture(scope="session")
def tiny_tflite(artifact_cache: Path):
    """A built and verified ``.tflite`` of the stand-in space; skips without litert-torch."""
    from farm.build import build, converter_available

    if not converter_available("tflite"):
        pytest.skip("litert-torch is not installed (the 'convert' extra)")
    return build("tiny", "8", "tflite", 1, 16, artifact_cache, model_builder=tiny_model_builder).artifact
