"""adb client messages -> typed errors, against every file in tests/fixtures/adb_errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.base import DeviceUnavailable
from agents.parsers.adb_errors import (
    DeviceNotFound,
    DeviceOffline,
    DeviceUnauthorized,
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


def test_every_fixture_file_has_an_expectation(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "adb_errors").iterdir()} == set(CLASSIFIED) | {LISTING}


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
