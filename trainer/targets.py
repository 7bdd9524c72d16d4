"""Prediction targets: their stable names, each device's default, and the one-line account of a choice.

A *target* is a (device, runtime, batch_size) configuration, plus the input size
where a device was measured at several (DESIGN.md). Names must not depend on which
rows happen to be ``ok`` today (issue 10), so they are decided from

- the device's record in the store (``<store>/_devices/<device>.json``, written by
  the farm from ``inventory.yaml``: every runtime x batch size it lists), and
- the configurations of *all* the device's rows, whatever their status.

A device with one configuration in that set is named after the device (``pixel2``);
a device with several is named ``device:runtime:b<batch>`` (``:in<size>`` appended
when input sizes differ), e.g. ``cpu-local:torch:b1``.

A device's **default target** (what ``--target DEVICE`` means) is its inventory's
first runtime and first batch size. Without a record (imported tables, stores older
than the records) it is the configuration with the most rows of any status, ties
broken by (runtime, batch size, input size) order. ``--target device:runtime:bN``
names a configuration explicitly.

Example:
    >>> rows = pd.DataFrame({"device": ["cpu", "cpu", "pi"], "runtime": ["torch", "tflite", "external"],
    ...                      "batch_size": [1, 1, 1], "input_size": [32, 32, 0]})
    >>> naming = name_targets(rows)
    >>> sorted(naming.keys), naming.defaults["cpu"], naming.defaults["pi"]
    (['cpu:tflite:b1', 'cpu:torch:b1', 'pi'], 'cpu:tflite:b1', 'pi')
    >>> parse_label("cpu:torch:b8")
    ('cpu', 'torch', 8, None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from farm.device_records import DeviceRecord

#: Columns that identify a configuration.
TARGET_COLUMNS: tuple[str, ...] = ("device", "runtime", "batch_size", "input_size")
_LABEL = re.compile(r"^(?P<device>[^:]+):(?P<runtime>[^:]+):b(?P<batch>\d+)(?::in(?P<size>\d+))?$")

RULE_ONLY = "the device's only configuration"
RULE_INVENTORY = "inventory default: first runtime and batch size"
RULE_MOST_ROWS = "default without an inventory record: the configuration with the most rows"
RULE_EXPLICIT = "named explicitly"


@dataclass(frozen=True, order=True)
class TargetKey:
    """One prediction target: a device in one run configuration."""

    device: str
    runtime: str
    batch_size: int
    input_size: int

    def label(self, with_input_size: bool = False) -> str:
        """``device:runtime:b<batch>`` (``:in<size>`` appended when asked)."""
        text = f"{self.device}:{self.runtime}:b{self.batch_size}"
        return f"{text}:in{self.input_size}" if with_input_size else text


@dataclass(frozen=True)
class TargetNaming:
    """Labels of every known configuration and each device's default label."""

    keys: dict[str, TargetKey]
    defaults: dict[str, str]
    #: Why each device's default is what it is (one of the ``RULE_*`` texts).
    rules: dict[str, str]

    def label_of(self) -> dict[TargetKey, str]:
        """The inverse of :attr:`keys`."""
        return {key: label for label, key in self.keys.items()}


def parse_label(text: str) -> tuple[str, str, int, int | None] | None:
    """(device, runtime, batch size, input size or None) of ``device:runtime:bN[:inS]``; None otherwise."""
    match = _LABEL.fullmatch(text)
    if match is None:
        return None
    size = match["size"]
    return match["device"], match["runtime"], int(match["batch"]), int(size) if size is not None else None


def name_targets(rows: pd.DataFrame, records: Mapping[str, DeviceRecord] | None = None) -> TargetNaming:
    """Name the configurations of ``rows`` (all rows of a space, any status; columns :data:`TARGET_COLUMNS`)
    and of ``records`` (their devices' inventory entries), and choose each device's default."""
    records = records or {}
    counts = rows.groupby(list(TARGET_COLUMNS), sort=True).size() if len(rows) else pd.Series(dtype="int64")
    row_counts = {TargetKey(str(d), str(r), int(b), int(s)): int(n) for (d, r, b, s), n in counts.items()}
    by_device: dict[str, dict[TargetKey, int]] = {}
    for key, n in row_counts.items():
        by_device.setdefault(key.device, {})[key] = n
    for device, record in records.items():
        if device not in by_device:
            continue  # a device this space never measured has no targets here
        pairs = {(k.runtime, k.batch_size) for k in by_device[device]}
        for runtime, batch in record.configurations():
            if (runtime, batch) not in pairs:
                by_device[device][TargetKey(device, runtime, batch, int(record.input_size or 0))] = 0
    keys: dict[str, TargetKey] = {}
    defaults: dict[str, str] = {}
    rules: dict[str, str] = {}
    for device, configs in sorted(by_device.items()):
        labels = _labels(device, list(configs))
        keys.update({label: key for key, label in labels.items()})
        default, rules[device] = _default(configs, records.get(device))
        defaults[device] = labels[default]
    return TargetNaming(dict(sorted(keys.items())), defaults, rules)


def _labels(device: str, configs: list[TargetKey]) -> dict[TargetKey, str]:
    if len(configs) == 1:
        return {configs[0]: device}
    with_size = len({(c.runtime, c.batch_size) for c in configs}) < len(configs)
    return {config: config.label(with_input_size=with_size) for config in configs}


def _default(configs: Mapping[TargetKey, int], record: DeviceRecord | None) -> tuple[TargetKey, str]:
    """The default configuration and the rule that chose it."""
    if len(configs) == 1:
        return next(iter(configs)), RULE_ONLY
    by_rows = sorted(configs, key=lambda key: (-configs[key], key.runtime, key.batch_size, key.input_size))
    if record is not None:
        runtime, batch = record.default_configuration()
        first = [k for k in by_rows if (k.runtime, k.batch_size) == (runtime, batch)]
        sized = [k for k in first if record.input_size is not None and k.input_size == record.input_size]
        return (sized or first)[0], RULE_INVENTORY
    return by_rows[0], RULE_MOST_ROWS


@dataclass(frozen=True)
class TargetChoice:
    """Which target a request resolved to, and which rows of its device were used and skipped."""

    requested: str
    target: str
    rule: str
    used_rows: int
    used_archs: int
    #: Rows of the target not used, by reason: a status (``unstable``, ``failed``, ...).
    skipped: dict[str, int] = field(default_factory=dict)
    #: Rows of the device's other configurations (any status), by target label.
    other_configurations: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One line for a person: the choice, the rule, the rows used and skipped (with why)."""
        head = f"target {self.target}" if self.requested == self.target else f"target {self.requested} -> {self.target}"
        skipped = [f"{n} {status}" for status, n in sorted(self.skipped.items()) if n]
        others = sum(self.other_configurations.values())
        if others:
            skipped.append(f"{others} of other configurations ({', '.join(sorted(self.other_configurations))})")
        return (f"{head} ({self.rule}): {self.used_rows} rows used ({self.used_archs} archs); "
                f"skipped {', '.join(skipped) if skipped else 'none'}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the choice."""
        return {"requested": self.requested, "target": self.target, "rule": self.rule, "used_rows": self.used_rows,
                "used_archs": self.used_archs, "skipped": dict(self.skipped),
                "other_configurations": dict(self.other_configurations)}


__all__ = [
    "RULE_EXPLICIT",
    "RULE_INVENTORY",
    "RULE_MOST_ROWS",
    "RULE_ONLY",
    "TARGET_COLUMNS",
    "TargetChoice",
    "TargetKey",
    "TargetNaming",
    "name_targets",
    "parse_label",
]
