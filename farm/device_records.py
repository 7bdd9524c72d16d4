"""Each measured device's inventory entry, kept in the store: ``<store>/_devices/<device>.json``.

The Parquet rows say how each measurement was taken, but not which configuration
(runtime, batch size) the inventory lists *first*: the device's default prediction
target. The trainer must not guess that from whichever rows happen to be ``ok``
today (issue 10), so the farm writes the entry here at the start of every campaign
that measures the device, atomically (temporary file, fsync, rename); the newest
campaign's entry wins. The store's Parquet reader skips ``_``-prefixed folders.

Stdlib and ``json`` only: the trainer reads these records without importing the farm's
inventory, Ray or pydantic.

Record fields: ``device, kind, platform, runtimes, batch_sizes`` (inventory order),
``threads, input_size`` (None: the space decides), ``updated_at`` (UTC ISO time).

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> record = DeviceRecord("cpu-local", "cpu", None, ("torch", "torchscript"), (1, 8), 1, None)
    >>> _ = write_record(root, record)
    >>> read_records(root)["cpu-local"].default_configuration()
    ('torch', 1)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from farm.atomic import write_json_atomic
from farm.errors import UserError

#: The folder of a store that holds the device records.
DEVICES_DIR = "_devices"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class DeviceRecordError(UserError):
    """A device record that cannot be read or does not hold a valid entry: one line, exit 2."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DeviceRecord:
    """One device's inventory entry as the farm last measured it."""

    device: str
    kind: str
    platform: str | None
    runtimes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    threads: int
    input_size: int | None
    updated_at: str = field(default_factory=_now)

    def default_configuration(self) -> tuple[str, int]:
        """(runtime, batch size) of the device's default target: the inventory's first of each."""
        return self.runtimes[0], self.batch_sizes[0]

    def configurations(self) -> list[tuple[str, int]]:
        """Every (runtime, batch size) the inventory lists, default first, in inventory order."""
        return [(runtime, batch) for runtime in self.runtimes for batch in self.batch_sizes]

    @classmethod
    def of(cls, device: Any) -> "DeviceRecord":
        """The record of an inventory device (``farm.inventory.Device`` or anything with its fields)."""
        return cls(
            device=str(device.name), kind=str(device.kind), platform=device.platform,
            runtimes=tuple(str(r) for r in device.runtimes), batch_sizes=tuple(int(b) for b in device.batch_sizes),
            threads=int(device.threads), input_size=device.input_size,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the record file."""
        data = asdict(self)
        data["runtimes"], data["batch_sizes"] = list(self.runtimes), list(self.batch_sizes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], origin: str = "<record>") -> "DeviceRecord":
        """Parse a record; :class:`DeviceRecordError` names the file and the bad field."""
        if not isinstance(data, Mapping):
            raise DeviceRecordError(f"{origin}: expected a JSON object; {_FIX}")
        try:
            record = cls(
                device=_text(data, "device", origin), kind=_text(data, "kind", origin),
                platform=data.get("platform"), runtimes=tuple(_list(data, "runtimes", str, origin)),
                batch_sizes=tuple(_list(data, "batch_sizes", int, origin)), threads=int(data.get("threads", 1)),
                input_size=data.get("input_size"), updated_at=str(data.get("updated_at", "")),
            )
        except (TypeError, ValueError) as error:
            raise DeviceRecordError(f"{origin}: {error}; {_FIX}") from None
        return record


_FIX = "delete the file; the next campaign measuring the device writes it again"


def _text(data: Mapping[str, Any], key: str, origin: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise DeviceRecordError(f"{origin}: field {key!r}: expected a non-empty string, got {value!r}; {_FIX}")
    return value


def _list(data: Mapping[str, Any], key: str, kind: type, origin: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise DeviceRecordError(
            f"{origin}: field {key!r}: expected a non-empty list of {kind.__name__}, got {value!r}; {_FIX}"
        )
    return value


def record_path(store_root: str | os.PathLike[str], device: str) -> Path:
    """``<store>/_devices/<device>.json``; a name that is not a plain file name is refused."""
    if not _SAFE_NAME.fullmatch(device):
        raise DeviceRecordError(f"device name {device!r}: not a plain name (letters, digits, . _ -); rename it in the inventory")
    return Path(store_root) / DEVICES_DIR / f"{device}.json"


def write_record(store_root: str | os.PathLike[str], record: DeviceRecord) -> Path:
    """Write (or replace) ``record`` atomically: temporary file, fsync, rename."""
    return write_json_atomic(record.to_json(), record_path(store_root, record.device))


def record_devices(store_root: str | os.PathLike[str], devices: Iterable[Any]) -> list[Path]:
    """Write the record of every inventory device a campaign measures (``farm.run`` calls this at start)."""
    return [write_record(store_root, DeviceRecord.of(device)) for device in devices]


def read_record(store_root: str | os.PathLike[str], device: str) -> DeviceRecord | None:
    """The record of ``device``, or None when the store has none (imported data, older stores)."""
    path = record_path(store_root, device)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeviceRecordError(f"{path}: not valid JSON ({error}); {_FIX}") from None
    record = DeviceRecord.from_json(data, str(path))
    if record.device != device:
        raise DeviceRecordError(f"{path}: field 'device': {record.device!r} does not match the file name; {_FIX}")
    return record


def read_records(store_root: str | os.PathLike[str]) -> dict[str, DeviceRecord]:
    """Every device record of a store, by device name (empty when there are none)."""
    folder = Path(store_root) / DEVICES_DIR
    if not folder.is_dir():
        return {}
    records = {}
    for path in sorted(folder.glob("*.json")):
        if _SAFE_NAME.fullmatch(path.stem):
            record = read_record(store_root, path.stem)
            if record is not None:
                records[record.device] = record
    return records


__all__ = [
    "DEVICES_DIR",
    "DeviceRecord",
    "DeviceRecordError",
    "read_record",
    "read_records",
    "record_devices",
    "record_path",
    "write_record",
]
