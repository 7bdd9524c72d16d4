"""Campaigns on a real local Ray with real Parquet: streaming, resume, retries, down devices, builds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from agents.base import Artifact
from farm.anchoring import anchor_archs
from farm.inventory import Device, ReplayConfig
from farm.run import CampaignConfig, plan, run_campaign
from farm.store import Store
from farm.store_lock import LockBusy, lock_campaign
from farm.summary import load_records, record_path
from tests.farm.scripted_agent import arch_latency, counter_file, local_ray, per_device_factory, scripted_factory

FAST = {"warmup": 0, "runs": 2, "rounds": 1}

pytestmark = pytest.mark.timeout(180)
ARCHS = [f"arch-{i:02d}" for i in range(7)]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    yield from local_ray(resources={"device:crashy": 1})


def scripted_device(name: str, **fields) -> Device:
    """A device entry for the scripted agent (the agent factory is injected; kind adb holds no Ray CPU)."""
    return Device(name=name, kind="adb", adb={"serial": name}, protocol={"max_cv": 10.0}, **fields)


def config(store: Path, devices, archs=ARCHS, **options) -> CampaignConfig:
    options = {"job_size": 3, "backoff_s": 0.01, "progress": False, **FAST, **options}
    return CampaignConfig("nasbench201", archs, devices, store, **options)


def outcomes(store: Path) -> pd.DataFrame:
    """The rows of the campaign's own archs (the drift anchors every job adds are left out)."""
    frame = Store(store).read(columns=["device", "arch", "status", "error", "latency_ms", "campaign_id", "is_anchor"])
    return frame[~frame["is_anchor"].astype(bool)]


def test_plan_skips_done_keys_and_splits_into_jobs() -> None:
    devices = [scripted_device("a", batch_sizes=[1, 8]), scripted_device("b")]
    done = {("a", "torch", 1, 32, "nasbench201", "arch-00", "interleaved")}
    plans = plan(config(Path("unused"), devices), done)
    a, b = plans
    assert (a.requested, a.skipped, b.requested, b.skipped) == (14, 1, 7, 0)
    assert [len(j.requested_archs) for j in a.jobs] == [3, 3, 3, 3, 1]  # 6 pending at batch 1, 7 at batch 8
    anchors = anchor_archs("nasbench201")  # interleaved: 3 anchors in every job, measured in the same batch
    assert all(j.anchors == anchors and j.archs == (*j.requested_archs, *anchors) for j in a.jobs + b.jobs)
    assert all(len(j.archs) == 3 for j in plan(config(Path("unused"), devices, anchors=0), done)[0].jobs[:4])
    assert {j.batch_size for j in a.jobs} == {1, 8} and all(j.input_size == 32 for j in a.jobs)
    assert "arch-00" not in [x for j in a.jobs if j.batch_size == 1 for x in j.archs]


def test_replay_campaign_streams_rows_then_resumes_without_duplicates(tmp_path: Path, help_table_path: Path) -> None:
    table = pq.read_table(help_table_path, filters=[("search_space", "==", "nasbench201")],
                          columns=["arch", "device", "latency_ms", "arch_index"]).to_pandas()
    archs = table[table["arch_index"] < 8]["arch"].unique().tolist()
    devices = [
        Device(name=f"replay-{d}", kind="replay", platform=d, replay=ReplayConfig(table=str(help_table_path), device=d))
        for d in ("pixel2", "raspi4")
    ]
    seen_jobs, durable = [], []

    def on_job(result) -> None:  # called once the job's rows are durable: check that they are
        seen_jobs.append(result)
        durable.append((len(Store(tmp_path).read(columns=["arch"])), sum(len(r.rows) for r in seen_jobs)))

    summary = run_campaign(config(tmp_path, devices, archs), on_job=on_job)
    every = Store(tmp_path).read()
    rows = every[~every["is_anchor"]]
    assert len(rows) == 16 and set(every["status"]) == {"ok"} and set(every["device_kind"]) == {"replay"}
    assert rows.groupby(["device", "arch"]).size().eq(1).all()
    assert len(every) == 16 + 6 * 3  # 6 jobs, 3 anchors each
    expected = table.set_index(["device", "arch"])["latency_ms"]
    for row in every.itertuples():
        assert row.latency_ms == expected[(row.platform, row.arch)]  # noise 0: the table value
    assert len(seen_jobs) == 6 and all(in_store >= reported for in_store, reported in durable)
    assert all(r.stored_at >= r.finished_at for r in seen_jobs)
    assert [(d.measured, d.skipped, d.failed) for d in summary.devices] == [(8, 0, 0), (8, 0, 0)]
    assert summary.devices[0].median_latency_ms is not None and summary.status == "finished"
    record = json.loads(record_path(tmp_path, summary.campaign_id).read_text())
    assert record["finished_at"] and record["devices"][1]["measured"] == 8

    again = run_campaign(config(tmp_path, devices, archs))
    assert [(d.measured, d.skipped) for d in again.devices] == [(0, 8), (0, 8)]
    assert len(Store(tmp_path).read()) == len(every)  # nothing to measure: no job, no anchors
    assert [r.campaign_id for r in load_records(tmp_path)] == [summary.campaign_id, again.campaign_id]


def test_failed_keys_are_retried_by_the_next_campaign(tmp_path: Path) -> None:
    device = scripted_device("dev")
    first = run_campaign(config(tmp_path, [device]), agent_factory=scripted_factory(reject=["arch-03"]))
    assert (first.devices[0].measured, first.devices[0].failed) == (6, 1)
    second = run_campaign(config(tmp_path, [device]), agent_factory=scripted_factory())
    assert (second.devices[0].measured, second.devices[0].skipped) == (1, 6)
    frame = outcomes(tmp_path)
    assert sorted(frame[frame["arch"] == "arch-03"]["status"]) == ["failed", "ok"]
    assert frame[frame["status"] == "ok"].groupby("arch").size().eq(1).all()


def test_retryable_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    attempts = []
    summary = run_campaign(
        config(tmp_path, [scripted_device("flaky")], job_size=10),
        agent_factory=scripted_factory(counter=counter_file(2)),
        on_job=lambda result: attempts.append(result.job.attempt),
    )
    assert attempts == [0, 1, 2]
    assert summary.devices[0].measured == 7 and summary.devices[0].failed == 0
    assert any("scripted failure" in e for e in summary.devices[0].errors)
    assert set(outcomes(tmp_path)["status"]) == {"ok"}


def test_retries_are_bounded(tmp_path: Path) -> None:
    summary = run_campaign(
        config(tmp_path, [scripted_device("flaky")], job_size=10, max_attempts=2),
        agent_factory=scripted_factory(counter=counter_file(100)),
    )
    assert summary.devices[0].failed == 7
    assert outcomes(tmp_path)["error"].str.contains("after 2 attempts").all()


def test_a_dead_device_is_marked_down_and_the_campaign_finishes(tmp_path: Path) -> None:
    devices = [scripted_device("good"), scripted_device("dead"), scripted_device("pinned", node="no-such-host")]
    summary = run_campaign(
        config(tmp_path, devices, down_after=2, node_wait_s=1),
        agent_factory=per_device_factory({"dead": {"connect_error": "DeviceUnavailable"}}),
    )
    good, dead, pinned = summary.devices
    assert (good.measured, good.failed, good.not_measured) == (7, 0, 0)
    assert dead.down_reason and "2 failures in a row" in dead.down_reason and "offline" in dead.down_reason
    assert dead.measured == 0 and dead.failed + dead.not_measured == 7 and dead.not_measured > 0
    assert "device:pinned" in pinned.down_reason and "ray start" in pinned.down_reason
    assert pinned.not_measured == 7
    frame = outcomes(tmp_path)
    assert set(frame[frame["device"] == "dead"]["status"]) == {"failed"}
    assert "pinned" not in set(frame["device"])  # not measured is not a measurement


def test_a_permanent_error_in_a_batch_fails_only_the_culprit(tmp_path: Path) -> None:
    summary = run_campaign(config(tmp_path, [scripted_device("dev")]), agent_factory=scripted_factory(poison=["arch-04"]))
    frame = outcomes(tmp_path)
    assert summary.devices[0].measured == 6 and summary.devices[0].failed == 1
    assert frame.set_index("arch")["status"].to_dict()["arch-04"] == "failed"
    ok = frame[frame["status"] == "ok"]
    assert all(ok["latency_ms"] == [arch_latency(a) for a in ok["arch"]])


def test_a_crashed_actor_is_replaced_once_and_its_jobs_retried(tmp_path: Path) -> None:
    # Two jobs are in flight when the process dies; both report it. The node offers the
    # device's resource once: a second replacement (or a leaked first) would never be placed.
    summary = run_campaign(
        config(tmp_path, [scripted_device("crashy", node="this-host")], job_size=3),
        agent_factory=scripted_factory(crash_counter=counter_file(1)),
    )
    assert summary.devices[0].measured == 7 and summary.devices[0].down_reason is None
    assert any("actor died" in e for e in summary.devices[0].errors)


def fake_build(space: str, arch: str, runtime: str, batch_size: int, input_size: int, cache_dir: str) -> Artifact:
    """A stand-in for farm.build.build_artifact: writes a file per call and fails for one arch."""
    if arch == "arch-05":
        raise RuntimeError("converter cannot lower this op")
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{arch}-{runtime}.ptl"
    path.write_text(arch)
    (folder / "calls").mkdir(exist_ok=True)
    (folder / "calls" / f"{arch}-{path.stat().st_mtime_ns}").touch()
    return Artifact(space, arch, runtime, batch_size, input_size, path=str(path))


def test_builds_run_as_tasks_once_per_artifact(tmp_path: Path) -> None:
    devices = [scripted_device("a", runtimes=["torchscript"]), scripted_device("b", runtimes=["torchscript"])]
    cache = tmp_path / "cache"
    summary = run_campaign(
        config(tmp_path / "store", devices, artifact_dir=str(cache)),
        agent_factory=scripted_factory(), build_fn=fake_build,
    )
    # 7 archs and 3 anchors, one failed build; shared by both devices and, for the anchors, by all jobs
    assert len(list((cache / "calls").iterdir())) == 9
    assert (summary.builds, summary.build_failures) == (10, 1) and summary.build_s > 0
    frame = outcomes(tmp_path / "store")
    failed = frame[frame["status"] == "failed"]
    assert sorted(failed["device"]) == ["a", "b"] and set(failed["arch"]) == {"arch-05"}
    assert failed["error"].str.contains("build failed: RuntimeError: converter cannot lower this op").all()
    assert (frame["status"] == "ok").sum() == 12
    for device in summary.devices:
        assert device.idle_share is not None and 0.0 <= device.idle_share <= 1.0


def test_builds_still_run_when_cpu_devices_hold_every_cpu(tmp_path: Path) -> None:
    # Two kind-cpu devices hold both CPUs of this 2-CPU Ray: builds must not wait forever.
    devices = [Device(name=n, kind="cpu", runtimes=["torchscript"], protocol={"max_cv": 10.0}) for n in ("c1", "c2")]
    summary = run_campaign(
        config(tmp_path / "store", devices, archs=ARCHS[:3], artifact_dir=str(tmp_path / "cache")),
        agent_factory=scripted_factory(), build_fn=fake_build,
    )
    assert [d.measured for d in summary.devices] == [3, 3] and summary.builds == 6  # 3 archs, 3 anchors


def test_plan_gives_each_ofa_arch_its_own_resolution() -> None:
    from farm.spaces import get

    archs = get("ofa").sample(4, seed=2)
    (device_plan,) = plan(CampaignConfig("ofa", archs, [scripted_device("dev")], "unused", job_size=4), set())
    (job,) = device_plan.jobs
    resolutions = [json.loads(arch)["r"] for arch in archs]
    assert [job.artifact(arch).input_size for arch in archs] == resolutions
    assert [job.without([archs[0]]).artifact(a).input_size for a in archs[1:]] == resolutions[1:]
    assert job.single(2).artifact(archs[2]).input_size == resolutions[2]


def test_a_campaign_protocol_other_than_the_devices_starts_from_its_own_defaults() -> None:
    from farm.inventory import Device
    from farm.run import CampaignConfig, make_protocol

    device = Device.model_validate(
        {"name": "cpu-x", "kind": "cpu", "protocol": {"name": "interleaved", "runs": 3, "rounds": 2, "max_ci": 0.2}}
    )
    own = make_protocol(device, CampaignConfig(search_space="nasbench201", archs=["a"], devices=[device], store_root="unused", protocol=None))
    assert own.row_fields()["runs"] == 6  # 2 rounds x 3 per burst
    switched = make_protocol(device, CampaignConfig(search_space="nasbench201", archs=["a"], devices=[device], store_root="unused", protocol="help"))
    assert switched.row_fields() == {"protocol": "help", "warmup_runs": 50, "runs": 50, "trim": 0.1}
    assert switched.max_ci == 0.2  # the device's stability rule goes along


def test_without_a_terminal_every_finished_job_prints_one_progress_line(tmp_path: Path, capsys) -> None:
    """Issue 12: under ``ray submit`` stderr is no terminal; each job's line carries the totals and an ETA."""
    summary = run_campaign(config(tmp_path, [scripted_device("dev")], progress=True, job_size=3),
                           agent_factory=scripted_factory(reject=["arch-03"]))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"campaign {summary.campaign_id}:")]
    assert len(lines) == 3  # 7 archs in jobs of 3: 3, 3, 1 (arch-03, refused by the device, is a failed row of its job)
    totals = [tuple(map(int, re.search(r": (\d+)/7 archs \(ok (\d+), failed (\d+)\)", line).groups())) for line in lines]
    assert [t[0] for t in totals] == sorted(t[0] for t in totals) and totals[-1] == (7, 6, 1)
    assert all(re.search(r"job dev-torch-b1-\d+, \d\d:\d\d elapsed, ETA \d\d:\d\d$", line) for line in lines)


def test_a_campaign_on_a_locked_store_is_refused_before_it_plans(tmp_path: Path) -> None:
    """Issue 13, class 13: another campaign's store lock stops this one with one line; nothing is written."""
    with lock_campaign(tmp_path, [], "holder-campaign"):
        with pytest.raises(LockBusy, match="is locked by campaign holder-campaign"):
            run_campaign(config(tmp_path, [scripted_device("dev")]), agent_factory=scripted_factory())
    assert load_records(tmp_path) == [] and Store(tmp_path).files() == []
    # released: the campaign runs, and a caller that already holds the locks hands them over
    own = config(tmp_path, [scripted_device("dev")])
    with lock_campaign(tmp_path, own.devices, own.campaign_id) as locks:
        summary = run_campaign(own, agent_factory=scripted_factory(), locks=locks)
        assert summary.devices[0].measured == 7
        with pytest.raises(ValueError, match="not held for campaign"):
            run_campaign(config(tmp_path, [scripted_device("dev")]), agent_factory=scripted_factory(), locks=locks)
