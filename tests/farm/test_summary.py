"""farm.summary: campaign records (whole-slug ids, unreadable ones named) and campaign counts from stored rows.

Issue 13, class 15: a killed campaign's record stays ``running`` with 0 measured; its counts come from its
rows, a dead process shows as interrupted, and every unfinished campaign is listed. Class 7: ``c1\\n`` ids.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from farm.cli import main
from farm.store import Store
from farm.summary import (CampaignSummary, DeviceSummary, RecordError, campaign_views, load_records, process_alive,
                          read_record, record_path, save_record)
from tests.farm.test_store import row


def dead_pid() -> int:
    """The id of a real process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def killed_campaign(root: Path, campaign_id: str, started_at: str, archs: list[str], pid: int) -> None:
    """What ``kill -9`` leaves: the record saved ``running`` at the start, 0 measured, and the rows it stored."""
    save_record(CampaignSummary(campaign_id, "nasbench201", str(root), started_at=started_at, archs=len(archs) + 1,
                                pid=pid, command=["measure.py", "--sample", str(len(archs) + 1)],
                                devices=[DeviceSummary("cpu-local", "cpu", requested=len(archs) + 1)]))
    Store(root).append([row(campaign_id=campaign_id, arch=a, status="failed" if a == "bad" else "ok") for a in archs])


def test_every_unfinished_campaign_is_listed_with_counts_from_its_rows(tmp_path: Path, capsys) -> None:
    killed_campaign(tmp_path, "c-old", "2026-01-01T00:00:00+00:00", ["a1", "a2", "bad"], dead_pid())
    killed_campaign(tmp_path, "c-new", "2026-01-02T00:00:00+00:00", ["a3"], dead_pid())
    save_record(CampaignSummary("c-done", "nasbench201", str(tmp_path), status="finished",
                                started_at="2026-01-01T12:00:00+00:00", finished_at="2026-01-01T12:01:00+00:00",
                                command=["measure.py", "--all"]))
    assert main(["status", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    unfinished = out.split("unfinished campaigns (2)")[1]
    assert "c-old: interrupted: process" in unfinished and "c-new: interrupted: process" in unfinished
    assert "2 ok, 0 unstable, 1 failed rows stored (ok/unstable/failed: cpu-local 2/0/1)" in unfinished
    assert "1 ok, 0 unstable, 0 failed rows stored" in unfinished
    assert unfinished.count("resume: python measure.py --sample") == 2 and "c-done" not in unfinished
    assert main(["status", "--store", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [c["campaign_id"] for c in payload["unfinished_campaigns"]] == ["c-old", "c-new"]
    assert payload["last_campaign"]["devices"][0]["measured"] == 1 and payload["last_campaign"]["state"] == "interrupted"
    # nothing was rewritten: the records still say what the campaigns wrote
    assert [r.status for r in load_records(tmp_path)] == ["running", "finished", "running"]


def test_a_running_campaign_is_not_unfinished_and_a_resumed_one_is_not_listed(tmp_path: Path) -> None:
    import os

    alive = CampaignSummary("c-run", "nasbench201", str(tmp_path), started_at="2999-01-01T00:00:00+00:00",
                            pid=os.getpid())
    killed = CampaignSummary("c-a", "nasbench201", str(tmp_path), started_at="2026-01-01", pid=dead_pid(),
                             command=["measure.py"])
    resumed = CampaignSummary("c-b", "nasbench201", str(tmp_path), status="finished", started_at="2026-01-02",
                              command=["measure.py"])
    elsewhere = CampaignSummary("c-c", "nasbench201", str(tmp_path), started_at="2026-01-03", host="other-host", pid=1)
    rows = Store(tmp_path).read(columns=["campaign_id", "device", "status"])
    views = {v.record.campaign_id: v for v in campaign_views([killed, resumed, elsewhere, alive], rows)}
    assert views["c-run"].state == "running" and not views["c-run"].unfinished
    assert views["c-a"].state == "interrupted" and views["c-a"].resumed_by == "c-b" and not views["c-a"].unfinished
    assert views["c-c"].state == "unfinished" and views["c-c"].unfinished and "other-host" in views["c-c"].state_line()


def test_a_reused_process_id_is_not_the_campaign(tmp_path: Path) -> None:
    import os

    assert process_alive(os.getpid(), "2000-01-01T00:00:00+00:00") is False
    assert process_alive(dead_pid()) is False and process_alive(os.getpid()) is True


@pytest.mark.parametrize("campaign_id", ["c1\n", "c1\nx", "../c1", "", "c 1"])
def test_a_campaign_id_must_be_a_whole_slug(tmp_path: Path, campaign_id: str) -> None:
    """Issue 13, class 7: a trailing newline (or a path) in a campaign id is refused, in a path and in a record."""
    with pytest.raises(ValueError, match="campaign id"):
        record_path(tmp_path, campaign_id)
    folder = tmp_path / "_campaigns"
    folder.mkdir(exist_ok=True)
    (folder / "c1.json").write_text(json.dumps(CampaignSummary(campaign_id, "nasbench201", str(tmp_path)).to_dict()))
    with pytest.raises(RecordError):
        read_record(folder / "c1.json")
    assert load_records(tmp_path) == []


def test_records_written_before_host_pid_and_command_still_load(tmp_path: Path) -> None:
    old = CampaignSummary("c1", "nasbench201", str(tmp_path), started_at="2026-01-01").to_dict()
    for key in ("host", "pid", "command"):
        del old[key]
    path = tmp_path / "_campaigns" / "c1.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**old, "written_by_a_newer_farm": 1}))
    (record,) = load_records(tmp_path)
    assert record.pid is None and record.host == "" and record.command == []
    (view,) = campaign_views([record], Store(tmp_path).read(columns=["campaign_id", "device", "status"]))
    assert view.state == "unfinished" and "re-run the measure.py command" in view.resume_hint()


@pytest.mark.parametrize("text", ["{not json", "[]", '{"campaign_id": "c1"}', "\xff", "[" * 100000])
def test_an_unreadable_record_is_a_record_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c1.json"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(RecordError):
        read_record(path)
