"""ReplayAgent: a simulated device replaying the public HELP table (never a measurement)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from agents.base import AgentError, Artifact, ArtifactRejected, Burst
from agents.replay import ReplayAgent
from farm.inventory import Device, ReplayConfig


@pytest.fixture(scope="module")
def pixel2(help_table_path: Path) -> pd.DataFrame:
    table = pq.read_table(help_table_path, filters=[("device", "==", "pixel2"), ("search_space", "==", "nasbench201")])
    return table.to_pandas().sort_values("arch_index").head(50)


def test_replays_the_table_value_exactly_without_noise(help_table_path: Path, pixel2: pd.DataFrame) -> None:
    agent = ReplayAgent(help_table_path, "pixel2")
    artifacts = [Artifact("nasbench201", arch) for arch in pixel2["arch"].head(5)]
    samples = agent.run(artifacts, [Burst(i, warmup=2, runs=3) for i in range(5)])
    assert samples == [[value] * 3 for value in pixel2["latency_ms"].head(5)]


def test_noise_is_multiplicative_seeded_and_centred(help_table_path: Path, pixel2: pd.DataFrame) -> None:
    arch, latency = pixel2["arch"].iloc[7], float(pixel2["latency_ms"].iloc[7])
    artifact = Artifact("nasbench201", arch)
    first = ReplayAgent(help_table_path, "pixel2", noise=0.05, seed=3).time_burst(artifact, 0, 400)
    again = ReplayAgent(help_table_path, "pixel2", noise=0.05, seed=3).time_burst(artifact, 0, 400)
    other = ReplayAgent(help_table_path, "pixel2", noise=0.05, seed=4).time_burst(artifact, 0, 400)
    assert first == again and first != other
    assert statistics.median(first) == pytest.approx(latency, rel=0.02)
    assert statistics.stdev(first) / statistics.mean(first) == pytest.approx(0.05, rel=0.25)
    assert min(first) > 0


def test_delay_is_slept_per_run_warmup_included(help_table_path: Path, pixel2: pd.DataFrame) -> None:
    agent = ReplayAgent(help_table_path, "pixel2", delay_ms=20)
    started = time.perf_counter()
    agent.time_burst(Artifact("nasbench201", pixel2["arch"].iloc[0]), warmup=2, runs=3)
    assert time.perf_counter() - started >= 5 * 0.020


def test_unknown_arch_is_rejected_permanently(help_table_path: Path) -> None:
    agent = ReplayAgent(help_table_path, "pixel2")
    with pytest.raises(ArtifactRejected, match="no nasbench201 arch 'nope'") as caught:
        agent.prepare(Artifact("nasbench201", "nope"))
    assert not caught.value.retryable
    with pytest.raises(ArtifactRejected):
        agent.time_burst(Artifact("ofa", "nope"), 0, 1)  # pixel2 has no OFA rows


def test_bad_configuration_is_a_clear_permanent_error(help_table_path: Path, tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="no rows for device 'pixel9'.*pixel2"):
        ReplayAgent(help_table_path, "pixel9")
    with pytest.raises(AgentError, match="not found"):
        ReplayAgent(tmp_path / "missing.parquet", "pixel2")
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"arch": ["a"], "device": ["x"]}).to_parquet(bad)
    with pytest.raises(AgentError, match="missing column.*search_space.*latency_ms"):
        ReplayAgent(bad, "x")


def test_from_inventory_device_says_it_is_a_simulation(help_table_path: Path, pixel2: pd.DataFrame) -> None:
    device = Device(
        name="replay-pixel2", kind="replay",
        replay=ReplayConfig(table=str(help_table_path), device="pixel2", noise=0.01, delay_ms=0),
    )
    agent = ReplayAgent.from_device(device, campaign_id="c1")
    facts = agent.probe()
    assert facts.extra["simulated"] is True and facts.extra["source_device"] == "pixel2"
    assert "simulated" in facts.cpu_model and facts.hostname.startswith("replay-simulation")
    # the seed depends on device and campaign: two campaigns do not replay identical noise
    artifact = Artifact("nasbench201", pixel2["arch"].iloc[0])
    other = ReplayAgent.from_device(device, campaign_id="c2")
    assert agent.time_burst(artifact, 0, 5) != other.time_burst(artifact, 0, 5)
