"""agents.ssh_cooldown.wait_until_cool: the fixed pause, the poll until cool, the give-up, and broken sensors.

The clock and sleep are a fake pair (the time a cool-down takes is the subject, not something to wait for);
the real board path, a NaN zone next to a 95 C one over a real sshd, is in test_ssh_hostile_device.py.
"""

from __future__ import annotations

import math
from typing import Iterator

import pytest

from agents.base import DeviceUnavailable
from agents.ssh import SSHAgent, SSHSettings
from agents.ssh_cooldown import CooldownRecord, HygieneSettings, wait_until_cool


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def wait(hygiene: HygieneSettings, readings: Iterator[float | None]) -> tuple[CooldownRecord, FakeTime]:
    record, time = CooldownRecord(limit_c=hygiene.max_temperature_c), FakeTime()
    wait_until_cool(hygiene, record, lambda: next(readings), sleep=time.sleep, clock=time, device="pi4")
    return record, time


def test_waits_the_fixed_pause_then_polls_until_under_the_limit() -> None:
    record, time = wait(HygieneSettings(cooldown_s=2.0, max_temperature_c=70.0, poll_s=5.0), iter([81.0, 76.5, 69.9]))
    assert (record.start_c, record.end_c, record.waited_s, record.timed_out) == (81.0, 69.9, 10.0, False)
    assert time.now == 12.0


def test_without_a_limit_only_the_fixed_pause_is_taken_and_no_sensor_is_read() -> None:
    record, time = wait(HygieneSettings(cooldown_s=3.0), iter([]))
    assert time.now == 3.0 and record.start_c is None


def test_the_agent_gives_up_after_the_timeout_with_a_retryable_error_and_keeps_the_record() -> None:
    time = FakeTime()
    agent = SSHAgent(
        SSHSettings(host="board", user="bench"),
        campaign_id="c",
        name="pi4",
        hygiene=HygieneSettings(max_temperature_c=70.0, cooldown_timeout_s=20.0, poll_s=5.0),
        temperature_reader=lambda: 85.0,
        sleep=time.sleep,
        clock=time,
    )
    with pytest.raises(DeviceUnavailable, match="device 'pi4': still 85.0 C after 20 s") as caught:
        agent.cool_down()
    record = agent.last_cooldown
    assert caught.value.retryable and record.timed_out and record.waited_s == 20.0 and record.limit_c == 70.0


@pytest.mark.parametrize("broken", [math.nan, math.inf, -math.inf, -273.15, 9999.0])
def test_a_broken_reading_is_no_reading_never_a_temperature(broken: float) -> None:
    hygiene = HygieneSettings(max_temperature_c=70.0, poll_s=5.0)
    record, _ = wait(hygiene, iter([broken]))
    assert record.start_c is None and record.waited_s == 0.0
    record, _ = wait(hygiene, iter([95.0, broken]))
    assert record.start_c == 95.0 and record.end_c is None and record.waited_s == 5.0
