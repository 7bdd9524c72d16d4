"""What the ADB agent is told about a phone: :class:`ADBSettings`, its CPU mask, and configuration errors.

Everything here is checked without the phone: a mask that is not hex, or one naming a CPU
beyond :data:`MAX_CPUS`, is refused before anything connects.

Example:
    >>> settings = ADBSettings(name="pixel7", host="10.0.0.9", cpu_mask="f0", campaign_id="c1")
    >>> settings.address, settings.remote_dir, mask_cores(settings.cpu_mask)
    ('10.0.0.9:5555', '/data/local/tmp/latfarm/c1', [4, 5, 6, 7])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from agents.base import DeviceUnavailable

__all__ = [
    "ADBConfigError",
    "ADBSettings",
    "BenchmarkBinaryMissing",
    "MAX_CPUS",
    "affinity_mask",
    "check_cpu_mask",
    "mask_cores",
]

#: The most CPUs a phone may have or a mask may name (as the CPU-list parsers bound them).
MAX_CPUS = 4096
#: ``0x`` optional, then at most MAX_CPUS / 4 hex digits; matched against the whole string.
_MASK = re.compile(r"(0x)?[0-9a-fA-F]{1,%d}" % (MAX_CPUS // 4))


class ADBConfigError(DeviceUnavailable):
    """The farm side is misconfigured for this device (key file, USB support, binary path).

    A :class:`DeviceUnavailable` so the farm stops using the device, but not retryable:
    retrying cannot fix it, a person must.
    """

    retryable = False


class BenchmarkBinaryMissing(ADBConfigError):
    """The benchmark binary for a runtime is not configured, not on the phone, or not executable."""


@dataclass(frozen=True)
class ADBSettings:
    """What the ADB agent needs; :meth:`agents.adb.ADBAgent.from_device` builds it from the inventory.

    ``workdir`` is made private to the phone's shell user (mode 0700, never a symlink);
    each campaign gets a fresh ``<workdir>/<campaign_id>`` folder in it (:attr:`remote_dir`).
    """

    name: str
    host: str | None = None
    port: int = 5555
    serial: str | None = None
    key_file: str = "~/.android/adbkey"
    benchmark_binaries: dict[str, str] = field(default_factory=dict)
    workdir: str = "/data/local/tmp/latfarm"
    campaign_id: str = "adhoc"
    cpu_mask: str | None = None
    screen_off: bool = False
    threads: int = 1
    cooldown_s: float = 0.0
    max_temperature_c: float | None = None
    cooldown_timeout_s: float = 300.0
    cooldown_poll_s: float = 5.0
    tflite_batch_runs: int = 10
    use_xnnpack: bool = True
    connect_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    command_timeout_s: float = 900.0
    keep_remote_files: bool = False

    @property
    def address(self) -> str:
        """``host:port`` over TCP, ``usb:<serial>`` over USB (for messages)."""
        return f"{self.host}:{self.port}" if self.host else f"usb:{self.serial}"

    @property
    def remote_dir(self) -> str:
        """This campaign's folder on the phone."""
        return f"{self.workdir.rstrip('/')}/{self.campaign_id}"


def affinity_mask(cores: Sequence[int]) -> str:
    """The hex ``taskset`` mask of a core list.

    Example:
        >>> affinity_mask([4, 5, 6, 7])
        'f0'
    """
    return format(sum(1 << core for core in set(cores)), "x")


def check_cpu_mask(device: str, mask: str | None) -> None:
    """Raise :class:`ADBConfigError` unless ``mask`` is ``None`` or a whole hex CPU mask (``f0\\n`` is not).

    Example:
        >>> check_cpu_mask("pixel7", "0xf0")
        >>> check_cpu_mask("pixel7", "f0\\n")
        Traceback (most recent call last):
        ...
        agents.adb_settings.ADBConfigError: device 'pixel7': adb.big_core_mask 'f0\\n' is not a hex CPU mask; use e.g. 'f0' for cores 4-7
    """
    if mask is not None and not _MASK.fullmatch(mask):
        raise ADBConfigError(f"device {device!r}: adb.big_core_mask {mask[:40]!r} is not a hex CPU mask; "
                             "use e.g. 'f0' for cores 4-7")


def mask_cores(mask: str | None) -> list[int] | None:
    """The cores a hex mask selects (``None`` for no mask); the mask must pass :func:`check_cpu_mask`.

    Example:
        >>> mask_cores("0x5"), mask_cores(None)
        ([0, 2], None)
    """
    if mask is None:
        return None
    value = int(mask, 16)
    return [core for core in range(value.bit_length()) if value >> core & 1]
