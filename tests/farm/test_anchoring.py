"""farm.anchoring: the anchor set, the job factor, corrected latencies, and anchoring in real campaigns.

The campaign tests run a real local Ray and real Parquet files against
:class:`DriftingReplaySimulation`, a replay device (a simulation: it runs no
model) whose every other job runs 10% slow, as the shared build machine's host did.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import ray.cloudpickle

from agents.replay import ReplayAgent
from farm.anchoring import (
    GROUP_COLUMNS,
    anchor_archs,
    anchoring_report,
    corrected_interval,
    corrected_latency,
    job_anchor_ms,
    job_factors,
    reference_archs,
)
from farm.inventory import Device, ReplayConfig
from farm.run import CampaignConfig, run_campaign
from farm.spaces import get
from farm.store import Store
from tests.farm.scripted_agent import local_ray

HELP_REFERENCES = {  # data/README.md, in HELP's order
    "nasbench201": [11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462],
    "fbnet": [3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100],
    "ofa": [1316, 1587, 1621, 1636, 1980, 2329, 2487, 3355, 3740, 4948],
}
SLOWDOWN = 1.10


# ------------------------------------------------------------------ anchor set
@pytest.mark.parametrize("space", sorted(HELP_REFERENCES))
def test_anchors_are_helps_reference_archs_spread_over_the_middle_of_the_flops_range(space: str, help_table_path: Path) -> None:
    table = pq.read_table(help_table_path, columns=["search_space", "arch_index", "arch"],
                          filters=[("search_space", "==", space)]).to_pandas().drop_duplicates()
    by_index = table.set_index("arch_index")["arch"]
    references = reference_archs(space)
    assert sorted(references) == sorted(by_index[i] for i in HELP_REFERENCES[space])
    flops = [get(space).flops(arch) for arch in references]
    assert flops == sorted(flops)
    assert anchor_archs(space) == (references[1], references[5], references[8])
    assert anchor_archs(space, 1) == (references[5],) and anchor_archs(space, 2) == (references[2], references[7])
    assert anchor_archs(space, 10) == references and anchor_archs(space, 0) == ()
    with pytest.raises(ValueError, match="at most 10 anchors"):
        anchor_archs(space, 11)


# ------------------------------------------------------- factors, on a frame
def synthetic_campaign(speeds: list[float], campaign: str = "c1") -> pd.DataFrame:
    """Rows of jobs at the given speed factors: two archs each plus two anchors (2 and 8 ms at speed 1)."""
    rows = []
    for job, speed in enumerate(speeds):
        anchor_ms = math.sqrt(2.0 * 8.0) * speed
        for arch, base, is_anchor in (("anchor-a", 2.0, True), ("anchor-b", 8.0, True),
                                      (f"arch-{job}-0", 3.0 + job, False), (f"arch-{job}-1", 5.0 + job, False)):
            latency = base * speed
            rows.append({"campaign_id": campaign, "device": "d", "runtime": "torch", "batch_size": 1,
                         "input_size": 32, "protocol": "interleaved", "job_id": f"j{job}", "arch": arch,
                         "status": "ok", "is_anchor": is_anchor, "anchor_ms": anchor_ms, "latency_ms": latency,
                         "ci_low_ms": 0.99 * latency, "ci_high_ms": 1.01 * latency, "samples_ms": [latency] * 4})
    return pd.DataFrame(rows)


def test_the_factor_is_each_jobs_anchor_estimate_over_the_median_job() -> None:
    frame = synthetic_campaign([1.0, 1.1, 0.95, 1.0, 1.05])
    factors = job_factors(frame).set_index("job_id")["factor"]
    assert factors.round(6).to_dict() == {"j0": 1.0, "j1": 1.1, "j2": 0.95, "j3": 1.0, "j4": 1.05}
    corrected = corrected_latency(frame)
    assert corrected.name == "corrected_latency_ms" and corrected.index.equals(frame.index)
    own = ~frame["is_anchor"]
    expected = frame["latency_ms"] / frame["job_id"].map({"j0": 1.0, "j1": 1.1, "j2": 0.95, "j3": 1.0, "j4": 1.05})
    assert np.allclose(corrected[own], expected[own])
    assert np.allclose(corrected[frame["arch"] == "anchor-b"], 8.0)  # every job's anchor lands on the median
    assert "latency_ms" in frame and not np.allclose(frame["latency_ms"][frame["arch"] == "anchor-b"], 8.0)


def test_factors_are_per_campaign_and_a_job_without_anchor_ms_is_not_corrected() -> None:
    frame = pd.concat([synthetic_campaign([1.0, 1.2, 1.0]), synthetic_campaign([2.0, 2.0, 2.4], "c2")], ignore_index=True)
    frame.loc[(frame["campaign_id"] == "c2") & (frame["job_id"] == "j0"), "anchor_ms"] = None  # an anchor failed there
    factors = job_factors(frame).set_index(["campaign_id", "job_id"])["factor"].round(6)
    assert factors.to_dict() == {("c1", "j0"): 1.0, ("c1", "j1"): 1.2, ("c1", "j2"): 1.0,
                                 ("c2", "j1"): round(2.0 / 2.2, 6), ("c2", "j2"): round(2.4 / 2.2, 6)}
    corrected = corrected_latency(frame)
    unanchored = (frame["campaign_id"] == "c2") & (frame["job_id"] == "j0")
    assert corrected[unanchored].isna().all() and corrected[~unanchored].notna().all()
    assert frame["latency_ms"].notna().all()  # the raw estimate stays


def test_factor_uncertainty_comes_from_the_anchors_disagreement() -> None:
    frame = synthetic_campaign([1.0, 1.1, 1.0])
    agreeing = job_factors(frame)
    assert np.allclose(agreeing["factor_rel_u"], 0.0)
    skewed = frame.copy()
    skewed.loc[(skewed["job_id"] == "j1") & (skewed["arch"] == "anchor-a"), "latency_ms"] *= 1.04  # anchors disagree
    u = job_factors(skewed).set_index("job_id")["factor_rel_u"]
    assert u["j1"] == pytest.approx(np.std([np.log(1.04), 0.0], ddof=1) / np.sqrt(2))
    interval = corrected_interval(skewed)
    row = (skewed["job_id"] == "j1") & (skewed["arch"] == "arch-1-0")
    width = float((interval["corrected_high_ms"] - interval["corrected_low_ms"])[row].iloc[0])
    plain = float((0.02 * skewed["latency_ms"] / 1.1)[row].iloc[0])  # the row's own interval, scaled
    assert width > plain  # the factor's uncertainty widens it
    without_anchor_rows = job_factors(frame[~frame["is_anchor"]])
    assert without_anchor_rows["factor"].notna().all() and without_anchor_rows["factor_rel_u"].isna().all()


def test_job_anchor_ms_is_a_geometric_mean_and_needs_every_anchor() -> None:
    rows = [{"arch": "x", "status": "ok", "latency_ms": 2.0}, {"arch": "y", "status": "unstable", "latency_ms": 8.0},
            {"arch": "a", "status": "ok", "latency_ms": 100.0}]
    assert job_anchor_ms(rows, ("x", "y")) == pytest.approx(4.0)
    assert job_anchor_ms(rows, ("x", "y", "z")) is None
    assert job_anchor_ms([*rows[:1], {"arch": "y", "status": "failed", "latency_ms": None}], ("x", "y")) is None
    assert job_anchor_ms(rows, ()) is None


def test_the_report_gives_the_factor_range_and_the_anchors_time_share() -> None:
    (report,) = anchoring_report(synthetic_campaign([1.0, 1.1, 0.9]))
    assert (report.jobs, report.anchored_jobs) == (3, 3)
    assert (round(report.factor_min, 6), round(report.factor_max, 6)) == (0.9, 1.1)
    assert report.anchor_time_share == pytest.approx(30 / (30 + 8 * 1.0 + 10 * 1.1 + 12 * 0.9))  # (2 + 8) ms x 3 jobs
    assert "3/3 jobs anchored" in report.render() and report.to_dict()["device"] == "d"


# -------------------------------------------------- campaigns on a real Ray
class DriftingReplaySimulation(ReplayAgent):
    """A simulation: replays HELP's table, and a run whose batch holds one of ``slow_archs`` takes 10% longer."""

    def __init__(self, table: str, slow_archs: frozenset[str]) -> None:
        super().__init__(table, "pixel2", noise=0.003, seed=1)
        self.slow_archs = slow_archs

    def run(self, artifacts, schedule):
        slow = any(artifact.arch in self.slow_archs for artifact in artifacts)
        runs = super().run(artifacts, schedule)
        return [[value * SLOWDOWN for value in values] for values in runs] if slow else runs


def _make_drifting(table: str, slow_archs: frozenset[str], device: Device, campaign_id: str) -> DriftingReplaySimulation:
    return DriftingReplaySimulation(table, slow_archs)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def ray_session():
    yield from local_ray()


def nb201_archs(indices: range) -> list[str]:
    space = get("nasbench201")
    return [space.arch(i) for i in indices]


@pytest.mark.timeout(240)
def test_anchored_jobs_at_different_speeds_agree_once_corrected(tmp_path: Path, help_table_path: Path, ray_session) -> None:
    archs = nb201_archs(range(100, 112))
    table = pq.read_table(help_table_path, filters=[("search_space", "==", "nasbench201"), ("device", "==", "pixel2")],
                          columns=["arch", "latency_ms"]).to_pandas().set_index("arch")["latency_ms"]
    device = Device(name="drifting", kind="replay", replay=ReplayConfig(table=str(help_table_path), device="pixel2"))
    factory = functools.partial(_make_drifting, str(help_table_path), frozenset(archs[4:8]))  # the second job is slow
    config = CampaignConfig("nasbench201", archs, [device], tmp_path, job_size=4, rounds=2, runs=5, warmup=0,
                            progress=False)
    summary = run_campaign(config, agent_factory=factory)
    assert (summary.devices[0].measured, summary.devices[0].failed) == (12, 0)  # anchors are not counted

    rows = Store(tmp_path).read()
    anchors = anchor_archs("nasbench201")
    assert rows["job_id"].nunique() == 3 and rows["anchor_ms"].notna().all()
    for _, job in rows.groupby("job_id"):  # every job measured every anchor, and flagged them
        assert set(job.loc[job["is_anchor"], "arch"]) == set(anchors) and job["anchor_ms"].nunique() == 1
    own = rows[~rows["is_anchor"]].copy()
    raw_ratio = own["latency_ms"] / own["arch"].map(table)
    corrected_ratio = corrected_latency(rows)[own.index] / own["arch"].map(table)
    assert raw_ratio.max() / raw_ratio.min() > 1.08  # raw: the slow job stands out
    assert corrected_ratio.max() / corrected_ratio.min() < 1.02  # corrected: one device again
    (report,) = anchoring_report(rows)
    assert report.anchored_jobs == 3 and report.factor_max / report.factor_min == pytest.approx(SLOWDOWN, rel=0.01)

    # Resume with 4 more archs: the 12 done are skipped, the new job is anchored all the same.
    more = run_campaign(CampaignConfig("nasbench201", archs + nb201_archs(range(112, 116)), [device], tmp_path,
                                       job_size=4, rounds=2, runs=5, warmup=0, progress=False), agent_factory=factory)
    assert (more.devices[0].measured, more.devices[0].skipped) == (4, 12)
    new = Store(tmp_path).read(where={"campaign_id": more.campaign_id})
    assert len(new) == 4 + 3 and set(new.loc[new["is_anchor"], "arch"]) == set(anchors)
    assert new["anchor_ms"].notna().all() and new["job_id"].nunique() == 1


@pytest.mark.timeout(240)
def test_no_anchors_means_no_anchor_rows(tmp_path: Path, help_table_path: Path, ray_session) -> None:
    device = Device(name="plain", kind="replay", replay=ReplayConfig(table=str(help_table_path), device="pixel2"))
    run_campaign(CampaignConfig("nasbench201", nb201_archs(range(100, 104)), [device], tmp_path, job_size=4,
                                rounds=1, runs=2, warmup=0, anchors=0, progress=False))
    rows = Store(tmp_path).read()
    assert len(rows) == 4 and not rows["is_anchor"].any() and rows["anchor_ms"].isna().all()
    assert rows["job_id"].notna().all() and corrected_latency(rows).isna().all()


def test_group_columns_are_job_level_settings() -> None:
    assert "input_size" not in GROUP_COLUMNS and {"campaign_id", "device", "protocol"} <= set(GROUP_COLUMNS)


def test_leaving_campaign_id_out_of_the_group_puts_two_campaigns_on_one_scale() -> None:
    frame = pd.concat([synthetic_campaign([1.0, 1.1]), synthetic_campaign([1.2, 1.2], "c2")], ignore_index=True)
    own_scale = corrected_latency(frame)  # each campaign against its own median job: c2 stays 20% slow
    shared = corrected_latency(frame, group=[c for c in GROUP_COLUMNS if c != "campaign_id"])
    anchor_b, second = frame["arch"] == "anchor-b", frame["campaign_id"] == "c2"
    assert own_scale[anchor_b & second].round(6).tolist() == [9.6, 9.6]
    assert own_scale[anchor_b & ~second].round(6).tolist() == [8.4, 8.4]  # c1: the median of 1.0 and 1.1
    assert shared[anchor_b].round(6).tolist() == [9.2] * 4  # the median of the four jobs' anchor_ms: 8 x 1.15
