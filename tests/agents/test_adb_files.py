"""agents/adb_files.py against the adbd *simulation*: private folder, atomic pushes, sha256 checks (issue 13, class 1).

The ADB transport, sync pushes and shell word splitting are real; the phone is simulated
(tests/agents/adb_simulation.py). "Planting" and "swapping" write into the simulation's
sandbox, as another user of the phone's shell could.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.adb import ADBAgent, RemoteFileMismatch, UnsafeWorkdir
from agents.adb_files import parse_sha256sum
from agents.base import Artifact, Burst
from agents.hashing import file_sha256

sys.path.insert(0, str(Path(__file__).parent))
from adb_simulation import SANDBOX_ROOT, ADBDaemonSimulation, install_stand_in  # noqa: E402
from test_adb import BINARIES, adb_key, adbd, host_file, ptl_models, sandbox, settings  # noqa: E402,F401


def remote_of(artifact: Artifact, campaign: str = "c1") -> str:
    return f"{SANDBOX_ROOT}/latfarm/{campaign}/{file_sha256(artifact.path)[:16]}.ptl"


def test_a_planted_file_of_the_same_size_is_not_reused(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    first, second = ptl_models
    wanted = Path(second.path).read_bytes()
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        agent.prepare(first)  # the campaign folder exists from here on
        planted = host_file(sandbox, remote_of(second))
        planted.write_bytes(Path(first.path).read_bytes()[: len(wanted)].ljust(len(wanted), b"\0"))
        assert planted.stat().st_size == len(wanted)
        agent.prepare(second)
        assert planted.read_bytes() == wanted  # pushed anew and renamed over the planted file
        assert len(adbd.pushed) == 2 and all(path.endswith(".part") for path in adbd.pushed)
        assert adbd.invocations[-1].model_path == remote_of(second)


def test_a_file_with_the_same_sha256_is_reused(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact]
) -> None:
    twin = Artifact("toy", "another arch that built to the same bytes", "torchscript", 1, 32, ptl_models[0].path)
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        agent.prepare(ptl_models[0])
        agent.prepare(twin)
    assert len(adbd.pushed) == 1 and len(adbd.invocations) == 2


def test_a_swapped_artifact_is_refused_before_it_runs(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    artifact, other = ptl_models
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        agent.prepare(artifact)
        host_file(sandbox, remote_of(artifact)).write_bytes(Path(other.path).read_bytes())  # still a valid model
        ran = len(adbd.invocations)
        with pytest.raises(RemoteFileMismatch) as raised:
            agent.run([artifact], [Burst(0, 0, 3)])
    message = str(raised.value)
    assert remote_of(artifact) in message
    assert file_sha256(artifact.path) in message and file_sha256(other.path) in message  # expected and found
    assert not raised.value.retryable
    assert len(adbd.invocations) == ran  # nothing ran after the swap


def test_a_swapped_benchmark_binary_is_refused_before_it_runs(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        agent.prepare(ptl_models[0])
        install_stand_in(sandbox, BINARIES["torchscript"], "speed_benchmark_torch", variant="no_pep")
        with pytest.raises(RemoteFileMismatch, match="speed_benchmark_torch on the phone has sha256 [0-9a-f]{64}"):
            agent.run(ptl_models[:1], [Burst(0, 0, 2)])
    assert len(adbd.invocations) == 1  # only the load check before the swap


def test_the_workdir_is_private_and_the_campaign_folder_fresh(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    stale = sandbox / "latfarm" / "c1" / "left-over"
    stale.parent.mkdir(parents=True)
    stale.write_text("from another run")
    stale.parent.parent.chmod(0o777)
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        agent.prepare(ptl_models[0])
        assert not stale.exists()
        assert (sandbox / "latfarm").stat().st_mode & 0o777 == 0o700
        assert (sandbox / "latfarm" / "c1").stat().st_mode & 0o777 == 0o700
    assert not (sandbox / "latfarm" / "c1").exists()  # close() removed the campaign folder


def test_a_symlinked_workdir_is_refused(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str], ptl_models: list[Artifact], sandbox: Path
) -> None:
    elsewhere = sandbox / "someone-elses"
    elsewhere.mkdir()
    (sandbox / "latfarm").symlink_to(elsewhere)
    with ADBAgent(settings(adbd.port, adb_key[0])) as agent:
        with pytest.raises(UnsafeWorkdir, match="is a symlink") as raised:
            agent.prepare(ptl_models[0])
    assert not raised.value.retryable and "adb.workdir" in str(raised.value)
    assert adbd.pushed == [] and list(elsewhere.iterdir()) == []


def test_sha256sum_output_is_read_strictly() -> None:
    digest = "ab" * 32
    text = (f"{digest}  /d/a\n{digest.upper()}  /d/b\n{digest[:-1]}  /d/c\nsha256sum: /d/e: No such file or directory\n"
            f"{digest} */d/f\r\n{digest}  /d/not-asked\n")
    assert parse_sha256sum(text, ["/d/a", "/d/b", "/d/c", "/d/e", "/d/f"]) == {"/d/a": digest, "/d/f": digest}


@given(st.text(max_size=300), st.lists(st.text(min_size=1, max_size=20), max_size=4))
def test_any_output_gives_only_asked_paths_with_hex_digests(text: str, paths: list[str]) -> None:
    found = parse_sha256sum(text, paths)
    assert set(found) <= set(paths)
    assert all(len(value) == 64 and set(value) <= set("0123456789abcdef") for value in found.values())
