"""agents/adb_connection.py against the adbd *simulation*: the phone's output is bounded (issue 13, class 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agents.adb_connection import ADBConnection
from agents.base import RunFailed

sys.path.insert(0, str(Path(__file__).parent))
from adb_simulation import ADBDaemonSimulation  # noqa: E402
from test_adb import adb_key, adbd, sandbox, settings  # noqa: E402,F401


def test_output_beyond_the_bound_is_refused_and_the_link_recovers(
    adbd: ADBDaemonSimulation, adb_key: tuple[str, str]
) -> None:
    connection = ADBConnection(settings(adbd.port, adb_key[0]), max_output_bytes=256)
    full = ADBConnection(settings(adbd.port, adb_key[0])).shell("cat /proc/cpuinfo")
    assert full.status == 0 and len(full.output.encode()) > 256
    with pytest.raises(RunFailed, match="printed more than 256 bytes") as raised:
        connection.shell("cat /proc/cpuinfo")
    assert raised.value.retryable and not connection.connected  # the half-read stream was abandoned
    assert connection.shell("echo hi") == type(full)("hi\n", 0)  # reconnects on its own
    connection.close()


def test_a_command_past_its_deadline_is_run_failed(adbd: ADBDaemonSimulation, adb_key: tuple[str, str]) -> None:
    ticks = iter(range(0, 10_000, 50))  # a clock that jumps 50 s per reading
    connection = ADBConnection(settings(adbd.port, adb_key[0]), clock=lambda: float(next(ticks)))
    with pytest.raises(RunFailed, match="within the time limit"):
        connection.shell("cat /proc/cpuinfo", timeout_s=20.0)
    connection.close()
