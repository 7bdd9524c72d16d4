"""``adb`` client errors and ``adb devices`` listings, mapped to typed agent errors.

The ``adb`` client prints ``error: device unauthorized.`` (older) or ``adb: device
unauthorized.`` (newer), possibly after daemon banners (``* daemon started
successfully``) and followed by a hint. This module turns such text into the errors
:class:`agents.adb.ADBAgent` raises itself when it talks to ``adbd`` directly, so both
paths use one vocabulary:

- :class:`DeviceOffline`: the device is listed but ``offline`` (booting, USB trouble);
- :class:`DeviceUnauthorized`: the device has not accepted this host's RSA key;
- :class:`DeviceNotFound`: no device (or not the requested serial) is attached;
- :class:`MoreThanOneDevice`: several phones are attached and no serial was given;
- :class:`ConnectionDropped`: ``error: closed`` / ``protocol fault``: the server lost the
  device mid-command (USB reset, reboot, adbd restart);
- :class:`NoPermissions`: the USB device node is not accessible to this user (udev rules).

All are :class:`agents.base.DeviceUnavailable` (retryable: replugging, booting, tapping
"Allow" on the phone or fixing the host fixes them). The message prefix may be
``error:``, ``adb:``, ``adb: error:`` or, from Windows hosts, ``adb.exe:``. Multi-word
device states (``no permissions (user in plugdev group; are your udev rules wrong?)``)
keep their explanation.

Example:
    >>> error = classify("* daemon started successfully\\nerror: device unauthorized.\\n")
    >>> type(error).__name__
    'DeviceUnauthorized'
"""

from __future__ import annotations

import re

from agents.base import DeviceUnavailable
from agents.parsers.common import UnparsableOutput

__all__ = ["ConnectionDropped", "DeviceNotFound", "DeviceOffline", "DeviceUnauthorized", "MoreThanOneDevice",
           "NoPermissions", "classify", "parse_devices", "raise_for_adb_output", "require_online"]

TOOL = "adb"


class DeviceOffline(DeviceUnavailable):
    """The device is attached but offline: wait for boot, replug, or `adb reconnect`."""


class DeviceUnauthorized(DeviceUnavailable):
    """The device refused this host's ADB key: accept the "Allow USB debugging" dialog on the phone."""


class DeviceNotFound(DeviceUnavailable):
    """No such device: check the cable / `adb devices`, or the host:port of adb over TCP."""


class MoreThanOneDevice(DeviceUnavailable):
    """Several devices are attached and the command named none: give the inventory entry its serial."""


class ConnectionDropped(DeviceUnavailable):
    """The adb server lost the device mid-command (``error: closed``, ``protocol fault``)."""


class NoPermissions(DeviceUnavailable):
    """This user cannot open the phone's USB device node: a udev rule or group is missing on the host."""


_MESSAGE = re.compile(r"^(?:error|adb(?:\.exe)?)(?:: error)?: (?P<message>.+)$")
_PATTERNS: list[tuple[re.Pattern[str], type[DeviceUnavailable], str]] = [
    (re.compile(r"device (?:unauthorized|still authorizing)"), DeviceUnauthorized,
     "accept the 'Allow USB debugging' dialog on the phone (tick 'Always allow'), or check key_file"),
    (re.compile(r"device (?:offline|still connecting)"), DeviceOffline,
     "wait for the device to finish booting, replug it, or run `adb reconnect`"),
    (re.compile(r"no devices/emulators found|device '.*' not found|no devices found|device not found"),
     DeviceNotFound, "check the cable and `adb devices`, or the inventory's serial / host:port"),
    (re.compile(r"more than one (?:device|emulator)"), MoreThanOneDevice,
     "several devices are attached: set the inventory entry's serial so every adb command names one (`adb -s`)"),
    (re.compile(r"(?:no|insufficient) permissions"), NoPermissions,
     "the farm user cannot open the phone's USB device: add a udev rule for its vendor id (GROUP=\"plugdev\"), "
     "add the user to plugdev, replug, then `adb kill-server`"),
    (re.compile(r"(?:^|: )closed$|protocol fault|connection reset"),
     ConnectionDropped,
     "the device dropped off mid-command (USB reset, reboot or adbd restart): the job is retried; "
     "if it keeps happening, replug it or run `adb kill-server`"),
]
_LISTING_HEADER = "List of devices attached"
#: ``adb devices`` states of more than one word: the state and its parenthesised explanation.
_MULTI_WORD_STATE = re.compile(r"^no permissions(?: \([^)]*\))?")


def classify(text: str, *, source: str = "adb") -> DeviceUnavailable | None:
    """The typed error an ``adb`` client output announces, or ``None`` if it announces none."""
    for line in text.splitlines():
        match = _MESSAGE.match(line.strip())
        if not match:
            continue
        message = match.group("message").rstrip().removesuffix(".")
        for pattern, error_class, fix in _PATTERNS:
            if pattern.search(message):
                return error_class(f"{source}: {message}: {fix}")
    return None


def raise_for_adb_output(text: str, *, source: str = "adb") -> None:
    """Raise the typed error ``text`` announces; return quietly when it announces none."""
    error = classify(text, source=source)
    if error is not None:
        raise error


def parse_devices(text: str, *, source: str = "adb devices") -> dict[str, str]:
    """``adb devices`` -> serial -> state (``device``, ``offline``, ``unauthorized``, ...).

    ``no permissions`` keeps its explanation: ``no permissions (user in plugdev group; ...)``.

    Example:
        >>> parse_devices("List of devices attached\\nemulator-5554\\toffline\\n")
        {'emulator-5554': 'offline'}
    """
    lines = [line.rstrip() for line in text.splitlines()]
    if _LISTING_HEADER not in (line.strip() for line in lines):
        raise_for_adb_output(text, source=source)
        raise UnparsableOutput(TOOL, f"no `{_LISTING_HEADER}` header", source=source)
    start = [line.strip() for line in lines].index(_LISTING_HEADER) + 1
    devices: dict[str, str] = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith("*"):
            continue
        serial, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
        multi_word = _MULTI_WORD_STATE.match(rest.strip())
        state = multi_word.group(0) if multi_word else (rest.split()[0] if rest.split() else "")
        if not serial or not state:
            raise UnparsableOutput(TOOL, "a device line without `serial<TAB>state`", source=source, line=line)
        devices[serial.strip()] = state
    return devices


def require_online(devices: dict[str, str], serial: str | None, *, source: str = "adb devices") -> str:
    """The serial to use, or the typed error explaining why ``serial`` (or any device) is not usable."""
    candidates = {serial: devices[serial]} if serial in devices else ({} if serial else devices)
    if not candidates:
        wanted = f"device '{serial}' not found" if serial else "no devices/emulators found"
        raise DeviceNotFound(f"{source}: {wanted}: check the cable and `adb devices`, or the inventory's serial")
    for found, state in candidates.items():
        if state == "device":
            return found
    found, state = next(iter(candidates.items()))
    raise_for_adb_output(f"error: device {state}.", source=f"{source}: {found}")
    raise DeviceUnavailable(f"{source}: {found} is in state {state!r}, not 'device'")
