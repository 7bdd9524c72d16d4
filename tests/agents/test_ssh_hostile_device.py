"""Issue 13, classes 1, 3 and 4 on the SSH path: a hostile or broken board, reached through a real sshd.

Class 1: a shared board cannot make the SSH agent run someone else's code. The workdir must be a private
folder of the login user; nothing on the device is reused by its size; a planted ``.part`` symlink is never
followed; the runner and every artifact are checked by sha256 right before use.

Class 3: whatever the runner answers (wrong types, missing keys, deeply nested JSON, inf, a line longer
than any result) is a typed, retryable ``MalformedResult``; the runner is stopped and the next call works.

Class 4: a thermal zone reading NaN, inf or -9999.9 is dropped: it never disables the cool-down while a
hot zone is present, and the run record names what it dropped.

Simulated (and named so): the hostile board, an ``ssh.python`` wrapper around the real runner
(``sshd_peer.hostile_board_python``) that reports the zones or answers the lines a test asks for.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import pytest

from agents.base import ArtifactRejected, Burst, DeviceUnavailable
from agents.runner_result import MAX_LINE_CHARS
from agents.ssh import RUNNER_SOURCE, DeviceSetupError, HygieneSettings, MalformedResult, SSHAgent
from tests.agents.conftest import sshd_peer
from tests.agents.test_ssh import _runners, settings_for

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize(
    ("make_workdir", "message"),
    [
        (lambda path: (path.mkdir(), path.chmod(0o777)), "group- or other-writable"),
        (lambda path: (path.mkdir(), os.chown(path, 65534, 65534), path.chmod(0o700)), "owned by uid 65534"),
        (lambda path: (path.with_name("elsewhere").mkdir(mode=0o700), path.symlink_to(path.with_name("elsewhere"))),
         "is a symlink"),
    ],
    ids=["world-writable", "someone-elses", "symlink"],
)
def test_a_workdir_that_is_not_private_is_refused_in_one_line(sshd, tmp_path: Path, make_workdir, message) -> None:
    if "uid" in message and os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    workdir = tmp_path / "latfarm"
    make_workdir(workdir)
    agent = SSHAgent(settings_for(sshd, tmp_path, workdir=str(workdir)), campaign_id="c-private")
    with pytest.raises(DeviceSetupError, match=f"{message}.*ssh.workdir") as caught:
        agent.probe()
    assert "\n" not in str(caught.value) and not caught.value.retryable
    assert not (workdir / "c-private").exists()
    agent.close()


def test_planted_files_are_not_reused_and_planted_part_symlinks_not_followed(sshd, tmp_path: Path, tiny_torchscript) -> None:
    good = tiny_torchscript[0]
    workdir, canary, victim = tmp_path / "remote", tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    artifacts = workdir / "c-plant" / "artifacts"
    artifacts.mkdir(parents=True, mode=0o700)
    workdir.chmod(0o700)
    runner_sha = hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()
    runner = workdir / "c-plant" / f"runner-{runner_sha[:16]}.py"
    evil = f"open({str(canary)!r}, 'w').write('x')\n".encode()
    runner.write_bytes(evil + b"#" * (RUNNER_SOURCE.stat().st_size - len(evil)))  # same size as the real runner
    artifact_sha = hashlib.sha256(Path(good.path).read_bytes()).hexdigest()
    planted = artifacts / f"{artifact_sha}.ptl"
    planted.write_bytes(b"\0" * Path(good.path).stat().st_size)
    for path in (runner, planted):
        Path(f"{path}.part").symlink_to(victim)
    with SSHAgent(settings_for(sshd, tmp_path, python=sys.executable), campaign_id="c-plant") as agent:
        agent.prepare(good)
        assert len(agent.run([good], [Burst(0, 1, 3)])[0]) == 3
        assert planted.read_bytes() == Path(good.path).read_bytes() and runner.read_bytes() == RUNNER_SOURCE.read_bytes()
    assert not canary.exists() and victim.read_text() == "keep me\n"


def test_an_artifact_swapped_after_upload_is_refused_before_it_is_loaded(sshd, tmp_path: Path, tiny_torchscript) -> None:
    good, other = tiny_torchscript
    with SSHAgent(settings_for(sshd, tmp_path), campaign_id="c-swap") as agent:
        agent.prepare(good)
        remote = next((tmp_path / "remote" / "c-swap" / "artifacts").iterdir())
        remote.write_bytes(Path(other.path).read_bytes())
        with pytest.raises(ArtifactRejected, match="damaged: sha256") as caught:
            agent.run([good], [Burst(0, 1, 3)])
        assert not caught.value.retryable


def test_a_runner_swapped_on_the_device_is_never_started(sshd, tmp_path: Path, tiny_torchscript) -> None:
    canary = tmp_path / "PWNED"
    with SSHAgent(settings_for(sshd, tmp_path), campaign_id="c-runner") as agent:
        agent.prepare(tiny_torchscript[0])
        agent._stop_runner()
        runner = next((tmp_path / "remote" / "c-runner").glob("runner-*.py"))
        runner.write_text(f"open({str(canary)!r}, 'w').write('x')\n")
        with pytest.raises(DeviceSetupError, match="does not match its sha256"):
            agent.run([tiny_torchscript[0]], [Burst(0, 1, 3)])
    assert not canary.exists()


def hostile_agent(sshd, tmp_path: Path, plan: dict, *, campaign_id: str, **hygiene: float) -> SSHAgent:
    python = sshd_peer.hostile_board_python(tmp_path / "board", plan)
    return SSHAgent(settings_for(sshd, tmp_path, python=python), campaign_id=campaign_id,
                    hygiene=HygieneSettings(**hygiene))


@pytest.mark.parametrize(
    ("lies", "words"),
    [
        ({"hello": '{"ok": true, "pid": "1; rm -rf ~"}'}, "hello result is malformed: pid: an integer, not str"),
        ({"hello": "[" * 100_000}, "not JSON (nested too deeply)"),
        ({"reply": '{"ok": true, "mode": "temperatures", "thermal_c": [95]}'}, "thermal_c: an object, not list"),
        ({"reply": '{"ok": true, "mode": "temperatures"}'}, "thermal_c: missing"),
        ({"reply": '{"ok": true, "mode": "temperatures", "thermal_c": {"cpu": "hot"}}'}, "thermal_c.cpu: a number"),
        ({"reply": '{"ok": true, "mode": "probe", "thermal_c": {}}'}, "answered a temperatures job with a 'probe'"),
        ({"reply": '{"ok": true, "mode": "temperatures", "thermal_c": {"cpu": ' + "9" * 5000 + "}}"}, "not JSON"),
        ({"reply": ["x", MAX_LINE_CHARS + 10]}, f"a line of more than {MAX_LINE_CHARS} bytes"),
    ],
    ids=["hello-pid-str", "hello-nested", "zones-list", "zones-missing", "zone-str", "wrong-mode", "huge-int",
         "huge-line"],
)
def test_a_malformed_answer_is_a_typed_retryable_error_and_the_next_runner_works(sshd, tmp_path: Path, lies, words) -> None:
    campaign = "c-lies"
    with hostile_agent(sshd, tmp_path, {"lies": lies}, campaign_id=campaign) as agent:
        with pytest.raises(MalformedResult) as caught:
            agent.temperature_c()
        assert words in str(caught.value) and caught.value.retryable and "\n" not in str(caught.value)
        assert str(caught.value).startswith("device '127.0.0.1': ")
        assert agent.temperature_c() is None  # a fresh runner answers honestly (this VM has no thermal zone)
        assert len(_runners(f"{tmp_path}/remote/{campaign}/runner-")) == 1  # the lying one was stopped


def test_a_run_result_with_infinite_or_missing_samples_is_refused(sshd, tmp_path: Path, tiny_torchscript) -> None:
    lie = '{"ok": true, "mode": "run", "samples_ms": [[1.0, Infinity]], "errors": [null]}'
    with hostile_agent(sshd, tmp_path, {"lies": {"reply": lie}}, campaign_id="c-inf") as agent:
        with pytest.raises(MalformedResult, match=r"samples_ms\[0\]\[1\]: inf is not finite"):
            agent.run([tiny_torchscript[0]], [Burst(0, 1, 3)])
    lie = '{"ok": true, "mode": "check", "errors": [{"stage": "load", "kind": "rejected"}]}'
    with hostile_agent(sshd, tmp_path / "2", {"lies": {"reply": lie}}, campaign_id="c-check") as agent:
        with pytest.raises(MalformedResult, match=r"errors\[0\]\.message: missing"):
            agent.prepare(tiny_torchscript[0])


def test_a_nan_zone_does_not_disable_the_cool_down_while_a_zone_reads_95_c(sshd, tmp_path: Path) -> None:
    plan = {"thermal_c": {"a": math.nan, "b": 95.0}}
    with hostile_agent(sshd, tmp_path, plan, campaign_id="c-hot", max_temperature_c=70.0, cooldown_timeout_s=1.0,
                       poll_s=0.2) as agent:
        assert agent.temperature_c() == 95.0
        with pytest.raises(DeviceUnavailable, match="still 95.0 C after") as caught:
            agent.cool_down()
        assert caught.value.retryable
        assert agent.last_cooldown.start_c == 95.0 and agent.last_cooldown.timed_out


def test_impossible_zones_are_dropped_and_named_in_the_run_record(sshd, tmp_path: Path, tiny_torchscript) -> None:
    plan = {"thermal_c": {"a": math.nan, "b": 45.5, "c": -9999.9, "d": math.inf}}
    with hostile_agent(sshd, tmp_path, plan, campaign_id="c-zones") as agent:
        telemetry = agent.probe().telemetry()
        assert telemetry.temperature_c == 45.5 and set(telemetry.dropped) == {"a=nan", "c=-9999.9", "d=inf"}
        assert len(agent.run([tiny_torchscript[0]], [Burst(0, 1, 3)])[0]) == 3
    record = agent.last_run
    assert record.temperature_start_c == record.temperature_end_c == 45.5
    assert record.temperatures_dropped == ("a=nan", "c=-9999.9", "d=inf") * 2


def test_what_a_board_says_about_a_rejected_model_is_one_bounded_line(sshd, tmp_path: Path, tiny_torchscript) -> None:
    said = "cannot load\nTraceback (most recent call last):\n" + "x" * 100_000
    lie = json.dumps({"ok": True, "mode": "check", "errors": [{"stage": "load", "kind": "rejected", "message": said}]})
    with hostile_agent(sshd, tmp_path, {"lies": {"reply": lie}}, campaign_id="c-said") as agent:
        with pytest.raises(ArtifactRejected, match=r"rejected tiny arch '4' .*: cannot load\\nTraceback") as caught:
            agent.prepare(tiny_torchscript[0])
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 1000
