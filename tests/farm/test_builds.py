"""farm.builds: where build tasks are placed, and the device's TFLite input layout reaching the build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.base import Artifact
from farm.build import converter_available, read_metadata
from farm.builds import (
    build_capacity,
    build_key,
    build_layout,
    build_resources,
    build_task_options,
    default_build_fn,
    run_build,
)
from farm.inventory import loads
from farm.node_resources import BUILDER_RESOURCE, HEAD_RESOURCE

NB201_ARCH = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|"


def node(cpus: float, *markers: str, alive: bool = True) -> dict[str, Any]:
    """A ``ray.nodes()`` entry."""
    return {"Alive": alive, "Resources": {"CPU": cpus, **{marker: 1.0 for marker in markers}}}


def test_builds_go_to_builders_when_any_host_offers_builder_else_to_the_head() -> None:
    assert build_resources({"CPU": 6.0, BUILDER_RESOURCE: 2.0}) == {BUILDER_RESOURCE: 0.001}
    assert build_resources({"CPU": 6.0, "device:pi-a": 1.0}) == {HEAD_RESOURCE: 0.001}
    assert build_task_options({}, num_cpus=0) == {"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.001}}


def test_build_capacity_counts_only_the_cpus_of_build_nodes() -> None:
    """A Pi worker's CPUs do not count: a build task cannot use them, so they cannot keep it from waiting forever."""
    head, pi = node(2, HEAD_RESOURCE), node(4, "device:pi-a")
    assert build_capacity([head, pi]) == 2
    assert build_capacity([node(2, HEAD_RESOURCE, BUILDER_RESOURCE), pi, node(8, BUILDER_RESOURCE)]) == 10
    assert build_capacity([head, node(8, BUILDER_RESOURCE, alive=False)]) == 2  # a dead builder builds nothing


def test_the_layout_is_the_devices_for_tflite_only_and_part_of_the_build_key() -> None:
    inventory = loads("devices:\n  - name: phone\n    kind: adb\n    runtimes: [tflite, torchscript]\n"
                      "    tflite_layout: nhwc\n    adb: {serial: X}\n")
    layout = inventory.get("phone").tflite_layout
    assert (build_layout("tflite", layout), build_layout("torchscript", layout)) == ("nhwc", "nchw")
    artifact = Artifact("nasbench201", NB201_ARCH, "tflite")
    assert build_key(artifact, "nhwc") != build_key(artifact, "nchw") == build_key(artifact)


def test_run_build_passes_a_channels_last_layout_and_nothing_for_the_default(tmp_path: Path) -> None:
    """A build function that knows no layouts still works for every device that asks for none."""
    calls: list[dict[str, Any]] = []

    def build_fn(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str,
                 **options: Any) -> Artifact:
        calls.append(options)
        return Artifact(space, arch, runtime, batch_size, input_size)

    artifact = Artifact("nasbench201", NB201_ARCH, "tflite")
    assert run_build(build_fn, artifact, str(tmp_path)).error is None
    assert run_build(build_fn, artifact, str(tmp_path), "nhwc").error is None
    assert calls == [{}, {"layout": "nhwc"}]

    def layout_blind(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str) -> Artifact:
        return Artifact(space, arch, runtime, batch_size, input_size)

    assert run_build(layout_blind, artifact, str(tmp_path)).error is None


@pytest.mark.slow
def test_default_build_gives_a_channels_last_tflite_for_an_nhwc_device(tmp_path: Path) -> None:
    """The real NAS-Bench-201 model through litert-torch, verified against eager (about a minute here)."""
    if not converter_available("tflite"):
        pytest.skip("litert-torch is not installed (the 'convert' extra)")
    result = run_build(default_build_fn, Artifact("nasbench201", NB201_ARCH, "tflite", 1, 32), str(tmp_path), "nhwc")
    assert result.error is None and result.data
    meta = read_metadata(result.artifact.path)
    assert meta["layout"] == "nhwc" and meta["input_shape"] == [1, 32, 32, 3] and meta["max_abs_diff"] <= 1e-4
