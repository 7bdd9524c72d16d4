"""A campaign over two Android phones: one healthy, one dropped mid-campaign. Both are *simulations*.

Real: Ray (device actors in worker processes), farm.build (TorchScript lite .ptl of real
NAS-Bench-201 archs), the ADB agent with adb-shell over TCP and RSA keys, Parquet.
Simulated: the phones, by the protocol-level adbd simulation in tests/agents/adb_simulation.py
(stand-in benchmark binaries print speed_benchmark_torch's real output format, with a latency
that is a function of the pushed model's bytes).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import ray

from farm.inventory import Device
from farm.run import CampaignConfig, run_campaign
from farm.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agents"))
from adb_simulation import SANDBOX_ROOT, ADBDaemonSimulation, install_stand_in  # noqa: E402

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
]
BINARY = f"{SANDBOX_ROOT}/speed_benchmark_torch"


@pytest.fixture(scope="module")
def ray_session():  # noqa: ANN201
    if ray.is_initialized():  # another module's session: use it, leave it running
        yield
        return
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    yield
    ray.shutdown()


def phone(name: str, port: int, key: str) -> Device:
    return Device(
        name=name, kind="adb", platform="pixel8-simulation", runtimes=["torchscript"],
        protocol={"name": "interleaved", "warmup": 1, "runs": 3, "rounds": 2, "max_ci": 10.0},
        adb={"host": "127.0.0.1", "port": port, "key_file": key, "benchmark_binaries": {"torchscript": BINARY},
             "big_core_mask": "f0"},
    )


def test_campaign_carries_on_when_one_phone_drops(
    ray_session: None, tmp_path: Path, fixtures_dir: Path
) -> None:
    from adb_shell.auth.keygen import keygen

    keygen(str(tmp_path / "adbkey"))
    public = (tmp_path / "adbkey.pub").read_text()
    sandboxes = {name: tmp_path / name for name in ("healthy", "dropping")}
    for sandbox in sandboxes.values():
        install_stand_in(sandbox, BINARY, "speed_benchmark_torch")
    with ADBDaemonSimulation(sandboxes["healthy"], fixtures_dir, authorized_keys=[public]) as healthy, \
            ADBDaemonSimulation(sandboxes["dropping"], fixtures_dir, authorized_keys=[public],
                                drop_on_invocation=4) as dropping:  # during its second job
        devices = [phone("pixel-a", healthy.port, str(tmp_path / "adbkey")),
                   phone("pixel-b", dropping.port, str(tmp_path / "adbkey"))]
        summary = run_campaign(CampaignConfig(
            "nasbench201", ARCHS, devices, tmp_path / "store", job_size=1, max_attempts=2, backoff_s=0.05,
            down_after=2, progress=False, artifact_dir=str(tmp_path / "artifacts"),
            anchors=0))  # one-arch jobs: the drop, not drift, is under test
        printed = [run for run in healthy.invocations if "--iter=3" in run.argv]
    rows = Store(tmp_path / "store").read()
    good = rows[rows["device"] == "pixel-a"].set_index("arch")
    assert sorted(good.index) == sorted(ARCHS) and set(good["status"]) == {"ok"}
    assert set(good["device_kind"]) == {"adb"} and set(good["runtime"]) == {"torchscript"}
    # every stored sample is a figure the simulated speed_benchmark_torch printed for that model
    by_model: dict[str, list[float]] = {}
    for run in printed:
        by_model.setdefault(run.model_path, []).extend(v / 1000 for v in run.printed_us)
    assert len(by_model) == 2 and len(printed) == 2 * 2  # 2 archs x 2 rounds, one invocation per burst
    stored = sorted(sorted(round(float(v), 3) for v in samples) for samples in good["samples_ms"])
    assert stored == sorted(sorted(round(v, 3) for v in values) for values in by_model.values())
    assert {run.cpu_mask for run in healthy.invocations} == {"f0"}
    assert good["temperature_start_c"].notna().all()
    # the dropped phone: its first job's row is kept, the second fails saying why, the campaign finishes
    dropped = rows[rows["device"] == "pixel-b"].set_index("arch")
    assert dropping.dropped and len(dropping.invocations) == 4
    assert dropped.loc[ARCHS[0], "status"] == "ok" and len(dropped.loc[ARCHS[0], "samples_ms"]) == 6
    assert dropped.loc[ARCHS[1], "status"] == "failed"
    assert "lost during" in dropped.loc[ARCHS[1], "error"] or "nothing answers" in dropped.loc[ARCHS[1], "error"]
    devices_summary = {d.device: d for d in summary.devices}
    assert devices_summary["pixel-a"].measured == 2
    assert devices_summary["pixel-b"].measured == 1 and devices_summary["pixel-b"].down_reason
