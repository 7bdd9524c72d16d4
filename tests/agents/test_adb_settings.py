"""agents/adb_settings.py: the CPU mask is checked as a whole string, before any phone is reached (issue 13, class 7)."""

from __future__ import annotations

import pytest

from agents.adb import ADBAgent
from agents.adb_settings import MAX_CPUS, ADBConfigError, ADBSettings, affinity_mask, check_cpu_mask, mask_cores


@pytest.mark.parametrize("mask", ["f0\n", "f0 ", "f0; reboot", "0x", "", "g0", "f" * (MAX_CPUS // 4 + 1)])
def test_a_mask_that_is_not_wholly_hex_is_refused_before_connecting(mask: str) -> None:
    with pytest.raises(ADBConfigError, match="not a hex CPU mask") as raised:
        ADBAgent(ADBSettings(name="pixel7", host="10.0.0.9", cpu_mask=mask))
    assert not raised.value.retryable
    assert "\n" not in str(raised.value)


def test_masks_and_core_lists_round_trip() -> None:
    for cores in ([0], [4, 5, 6, 7], [0, 2, 9], [MAX_CPUS - 1]):
        mask = affinity_mask(cores)
        check_cpu_mask("pixel7", mask)
        assert mask_cores(mask) == cores
    assert mask_cores("0xF0") == [4, 5, 6, 7] and mask_cores(None) is None
