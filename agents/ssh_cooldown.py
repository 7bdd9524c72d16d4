"""Thermal hygiene of an SSH board: the inventory's ``hygiene:`` block and the wait until the board is cool.

The wait trusts only sane readings: a reader that returns NaN, inf or -273 C counts as
"no reading" (as :func:`agents.telemetry.sane_temperature` judges), so a broken sensor can
neither hold a job forever nor let one start on a hot board (the SSH agent's reader takes the
hottest *sane* zone, :func:`agents.telemetry.hottest`).

Example:
    >>> readings, slept = iter([81.0, 76.0, 69.5]), []
    >>> record = CooldownRecord(limit_c=70.0)
    >>> wait_until_cool(HygieneSettings(max_temperature_c=70.0, poll_s=5.0), record, lambda: next(readings),
    ...                 sleep=slept.append, clock=lambda: 5.0 * len(slept), device="pi4")
    >>> (record.start_c, record.end_c, record.waited_s, slept)
    (81.0, 69.5, 10.0, [5.0, 5.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from agents.base import DeviceUnavailable
from agents.telemetry import sane_temperature

__all__ = ["CooldownRecord", "HygieneSettings", "wait_until_cool"]


@dataclass(frozen=True)
class HygieneSettings:
    """CPU pinning and thermal cool-down; mirrors the inventory's ``hygiene:`` block."""

    affinity: tuple[int, ...] | None = None
    cooldown_s: float = 0.0
    max_temperature_c: float | None = None
    cooldown_timeout_s: float = 300.0
    poll_s: float = 5.0


@dataclass
class CooldownRecord:
    """What the last cool-down did: temperatures before and after, time waited, whether it gave up."""

    waited_s: float = 0.0
    start_c: float | None = None
    end_c: float | None = None
    limit_c: float | None = None
    timed_out: bool = False


def wait_until_cool(
    hygiene: HygieneSettings,
    record: CooldownRecord,
    read_temperature: Callable[[], float | None],
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    device: str,
) -> None:
    """Sleep ``cooldown_s``, then poll until the board is under ``max_temperature_c``, filling ``record``.

    Gives up after ``cooldown_timeout_s`` with :class:`DeviceUnavailable` (retryable: the farm
    tries the job again later); ``record`` says what happened either way.
    """
    if hygiene.cooldown_s > 0:
        sleep(hygiene.cooldown_s)
    limit = hygiene.max_temperature_c
    if limit is None:
        return
    started = clock()
    temperature = record.start_c = record.end_c = sane_temperature(read_temperature())
    while temperature is not None and temperature >= limit:
        if clock() - started >= hygiene.cooldown_timeout_s:
            record.timed_out = True
            record.waited_s = clock() - started
            raise DeviceUnavailable(
                f"device {device!r}: still {temperature:.1f} C after {record.waited_s:.0f} s of cool-down "
                f"(hygiene.max_temperature_c {limit}); raise cooldown_timeout_s or improve cooling"
            )
        sleep(hygiene.poll_s)
        temperature = record.end_c = sane_temperature(read_temperature())
    record.waited_s = clock() - started
