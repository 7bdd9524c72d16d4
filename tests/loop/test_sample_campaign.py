"""loop.sample_campaign: only archs the store lacks (ok/unstable, default configuration) go to a campaign.

The store is real (Parquet rows appended with farm.store); the campaign runner is
replaced by a recorder here, because tests/e2e/test_add_device.py runs the real one.
"""

from __future__ import annotations

from pathlib import Path

from farm.inventory import Device
from farm.run import CampaignConfig
from farm.store import Store
from farm.summary import CampaignSummary, DeviceSummary
from loop.sample_campaign import default_configuration, measure_missing
from tests.loop.help_subset import SPACE, subset_archs


def row(arch: str, status: str, runtime: str = "torch", batch_size: int = 1) -> dict:
    return {"measurement_id": f"{arch}-{status}-{runtime}-{batch_size}", "campaign_id": "c", "source": "farm",
            "device": "pi", "device_kind": "cpu", "runtime": runtime, "search_space": SPACE, "arch": arch,
            "batch_size": batch_size, "input_size": 32, "protocol": "interleaved", "latency_ms": 1.0, "status": status,
            "measured_at": "2026-01-01T00:00:00Z", "host": "test", "farm_version": "0"}


def test_stored_ok_and_unstable_archs_are_not_measured_again(tmp_path: Path) -> None:
    archs = subset_archs(6)
    Store(tmp_path).append([row(archs[0], "ok"), row(archs[1], "unstable"), row(archs[2], "failed"),
                            row(archs[3], "ok", runtime="torchscript"), row(archs[4], "ok", batch_size=8)])
    device = Device(name="pi", kind="cpu", runtimes=["torch", "torchscript"], batch_sizes=[1, 8])
    seen: list[CampaignConfig] = []

    def recorder(config: CampaignConfig) -> CampaignSummary:
        seen.append(config)
        return CampaignSummary("c", SPACE, str(tmp_path), devices=[DeviceSummary("pi", "cpu", measured=len(config.archs))])

    result = measure_missing(tmp_path, SPACE, device, archs, run=recorder)
    (config,) = seen
    assert list(config.archs) == archs[2:]  # failed is retried; other configurations do not count
    assert [d.runtimes for d in config.devices] == [["torch"]] and [d.batch_sizes for d in config.devices] == [[1]]
    assert result.already_stored == 2 and result.new_rows == 4 and result.problems == 0

    assert measure_missing(tmp_path, SPACE, device, archs[:2], run=recorder).summary is None  # nothing to do
    assert len(seen) == 1


def test_default_configuration_is_the_first_runtime_and_batch_size() -> None:
    device = default_configuration(Device(name="pi", kind="cpu", runtimes=["torchscript", "torch"], batch_sizes=[4, 1]))
    assert device.runtimes == ["torchscript"] and device.batch_sizes == [4] and device.name == "pi"
