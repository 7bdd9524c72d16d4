"""adb client messages -> typed errors, against every file in tests/fixtures/adb_errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import DeviceUnavailable
from agents.parsers.adb_errors import (
    ConnectionDropped,
    DeviceNotFound,
    DeviceOffline,
    DeviceUnauthorized,
    MoreThanOneDevice,
    NoPermissions,
    classify,
    parse_devices,
    raise_for_adb_output,
    require_online,
)
from agents.parsers.common import UnparsableOutput

CLASSIFIED = {
    "unauthorized_error_prefix_termux.txt": DeviceUnauthorized,
    "unauthorized_adb_prefix_server_version_mismatch.txt": DeviceUnauthorized,
    "no_devices_emulators_found_old_daemon_banner.txt": DeviceNotFound,
    "device_offline_emulator_script_log.txt": DeviceOffline,
}
LISTING = "adb_devices_offline_tab_separated.txt"
NO_PERMISSIONS_LISTING = "adb_devices_no_permissions_udev_2020.txt"


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "adb_errors").iterdir()} == set(CLASSIFIED) | {LISTING,
                                                                                          NO_PERMISSIONS_LISTING}


def test_a_published_no_permissions_listing_keeps_the_udev_hint(fixtures_dir: Path) -> None:
    devices = parse_devices((fixtures_dir / "adb_errors" / NO_PERMISSIONS_LISTING).read_text())
    assert devices == {"00000000": "no permissions (user in plugdev group; are your udev rules wrong?)"}
    with pytest.raises(NoPermissions, match="are your udev rules wrong") as raised:
        require_online(devices, None)
    assert raised.value.retryable and "plugdev" in str(raised.value)


@pytest.mark.parametrize("name", sorted(CLASSIFIED))
def test_messages_map_to_typed_retryable_errors(fixtures_dir: Path, name: str) -> None:
    error = classify((fixtures_dir / "adb_errors" / name).read_text(), source=name)
    assert type(error) is CLASSIFIED[name]
    assert isinstance(error, DeviceUnavailable) and error.retryable
    assert str(error).startswith(name) and "\n" not in str(error)
    with pytest.raises(CLASSIFIED[name]):
        raise_for_adb_output((fixtures_dir / "adb_errors" / name).read_text())


def test_devices_listing_with_offline_emulator(fixtures_dir: Path) -> None:
    devices = parse_devices((fixtures_dir / "adb_errors" / LISTING).read_text())
    assert devices == {"emulator-5554": "offline"}
    assert classify((fixtures_dir / "adb_errors" / LISTING).read_text()) is None
    with pytest.raises(DeviceOffline, match="emulator-5554"):
        require_online(devices, "emulator-5554")
    with pytest.raises(DeviceNotFound, match="'R5CT10' not found"):
        require_online(devices, "R5CT10")


def test_online_device_and_refusals() -> None:
    assert require_online({"a": "unauthorized", "b": "device"}, None) == "b"
    with pytest.raises(DeviceUnauthorized):
        require_online({"a": "unauthorized"}, "a")
    with pytest.raises(DeviceNotFound):
        parse_devices("error: no devices/emulators found\n")
    with pytest.raises(UnparsableOutput):
        parse_devices("hello\n")


# --- issue 13, class 5: adb client errors routine on a host with several phones. The messages are the adb
# client's wording as quoted in issue 13 and in public how-tos; the multi-line texts are SYNTHETIC.
@pytest.mark.parametrize("text, error_class, hint", [
    ("error: more than one device/emulator\n", MoreThanOneDevice, "serial"),
    ("adb: error: more than one device/emulator\n", MoreThanOneDevice, "serial"),
    ("adb.exe: more than one device/emulator\n", MoreThanOneDevice, "serial"),
    ("error: closed\n", ConnectionDropped, "retried"),
    ("adb: error: connect failed: closed\n", ConnectionDropped, "retried"),
    ("error: protocol fault (couldn't read status): Connection reset by peer\n", ConnectionDropped, "retried"),
    ("adb.exe: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n", DeviceUnauthorized, "Allow"),
    ("adb.exe: device offline\n", DeviceOffline, "reconnect"),
    ("error: device still authorizing\n", DeviceUnauthorized, "Allow"),
    ("error: insufficient permissions for device: user in plugdev group; are your udev rules wrong?\n",
     NoPermissions, "udev"),
])
def test_routine_multi_device_errors_are_classified(text: str, error_class: type, hint: str) -> None:
    error = classify(text, source="lab-host")
    assert type(error) is error_class and error.retryable and hint in str(error) and "\n" not in str(error)


def test_a_multi_word_state_keeps_its_hint() -> None:
    listing = ("List of devices attached\n"
               "R58M123\tno permissions (user in plugdev group; are your udev rules wrong?); "
               "see [http://developer.android.com/tools/device.html]\n"
               "emulator-5554\tdevice product:sdk_gphone64 model:sdk_gphone64 transport_id:1\n")
    devices = parse_devices(listing)
    assert devices == {"R58M123": "no permissions (user in plugdev group; are your udev rules wrong?)",
                       "emulator-5554": "device"}
    with pytest.raises(NoPermissions, match="udev rules wrong.*udev rule for its vendor id"):
        require_online(devices, "R58M123")
    assert require_online(devices, None) == "emulator-5554"
