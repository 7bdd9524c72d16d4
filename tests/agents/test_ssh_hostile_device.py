"""Issue 13, class 1: a shared board cannot make the SSH agent run someone else's code (real sshd, real runner).

The workdir must be a private folder of the login user; nothing on the device is reused by its size; a planted
``.part`` symlink is never followed; the runner and every artifact are checked by sha256 right before use.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from agents.base import ArtifactRejected, Burst
from agents.ssh import RUNNER_SOURCE, DeviceSetupError, SSHAgent
from tests.agents.test_ssh import settings_for

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
