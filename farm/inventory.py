"""The device inventory: which devices the farm measures on and how to reach them.

``inventory.yaml`` holds a ``devices:`` list; each entry becomes a
:class:`Device`. Every model forbids unknown keys, so a typo is refused rather
than silently ignored. :func:`load` turns every problem (YAML syntax, unknown
key, wrong type, duplicate name, missing connection section) into one
:class:`InventoryError` line naming the file, the device, the field, what is
wrong and what to do, plus the YAML line where it can tell::

    inventory.yaml: device 'pi4': field 'ssh': missing: kind ssh needs an `ssh:` section ... (line 12)

Relative paths of files on this host (``replay.table``, ``ssh.key_file``,
``ssh.known_hosts``, ``adb.key_file``) are resolved against the inventory's
folder, not the working directory; ``~`` is the user's home as usual.

Beyond the connection sections: ``cuda: {index: N}`` is also accepted on an
``ssh`` device (a Jetson): its TorchScript models run on the board's GPU
``cuda:N`` (``agents.ssh``; refused unless ``torchscript`` is among its
runtimes). ``tflite_layout`` (``nchw``, the default, or ``nhwc``) is the input
layout its ``.tflite`` files are built with (``farm.builds``; refused unless
``tflite`` is among its runtimes).

Everything that can be checked without the device is checked here, so a
mistake is one line and exit 2 before Ray starts, never a ``failed`` row
written when the device connects: an ``adb:`` section with neither ``serial``
nor ``host``, a ``big_core_mask`` that is not hex, an empty ``devices:`` list;
and, by :func:`load`, for every device this host drives itself (no ``node:``;
a device attached to another Ray node has its files there): the replay table
(exists, is Parquet with the replay columns, holds rows of ``replay.device``),
``ssh.key_file``, ``ssh.known_hosts`` unless ``trust_on_first_use``, and
``adb.key_file``. Names are matched as whole strings (``pi4\n`` is not a slug).

Example:
    >>> inventory = Inventory(devices=[Device(name="cpu-local", kind="cpu")])
    >>> inventory.get("cpu-local").protocol.name
    'interleaved'
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal, Sequence, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from farm.errors import UserError
from farm.intervals import DEFAULT_MAX_CI
from farm.user_files import read_text

__all__ = [
    "ADBConfig",
    "CUDAConfig",
    "DEFAULT_PATH",
    "Device",
    "Hygiene",
    "Inventory",
    "InventoryError",
    "ProtocolSettings",
    "ReplayConfig",
    "SSHConfig",
    "check_local_files",
    "load",
]

DEFAULT_PATH = "inventory.yaml"

DeviceKind = Literal["cpu", "cuda", "ssh", "adb", "replay"]
Runtime = Literal["torch", "torchscript", "tflite", "executorch"]
ProtocolName = Literal["interleaved", "help", "latbench"]
#: Input layout of ``.tflite`` files: NCHW as the torch model takes it, or channels-last (NHWC).
TFLiteLayout = Literal["nchw", "nhwc"]

SLUG = re.compile(r"[a-z0-9][a-z0-9._-]*")
#: A CPU mask as ``taskset`` takes it: hex digits, optionally after ``0x``.
HEX_MASK = re.compile(r"(0x)?[0-9a-fA-F]{1,64}")

#: Connection sections, each named after the kind that uses it (cuda's is optional: index 0).
CONNECTION_SECTIONS: tuple[str, ...] = ("ssh", "adb", "replay", "cuda")
#: Kinds that may carry a section besides their own: ``cuda`` on ``ssh`` picks the board's GPU (a Jetson).
_ALSO_ALLOWED = {"cuda": {"ssh"}}
_REQUIRED_SECTION = {"ssh", "adb", "replay"}
_SECTION_HELP = {
    "ssh": "an `ssh:` section with host and user",
    "adb": "an `adb:` section (serial for USB, or host for adb over TCP)",
    "replay": "a `replay:` section with table and device",
}


class InventoryError(UserError):
    """Bad inventory input. The message is one line: file, device, field, problem, fix."""


class _FieldProblem(ValueError):
    """Raised inside validators to name the offending field in the one-line message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProtocolSettings(_Model):
    """Per-device protocol choice and overrides; ``None`` keeps the protocol's default.

    ``rounds`` and ``quantile`` (the estimator: 0.1, the lower decile, by default;
    0.5 for the median) only apply to ``interleaved``. ``max_ci`` and ``max_repeats`` drive the
    stability verdict: an arch whose confidence interval's relative half-width stays above
    ``max_ci`` after ``max_repeats`` re-measurements is stored with status ``unstable``.
    ``max_cv`` (the former CV limit) is still accepted so old inventories load, and ignored:
    the CV of the runs measures the host's interference, not the precision of the estimate.
    """

    name: ProtocolName = "interleaved"
    warmup: int | None = Field(default=None, ge=0)
    runs: int | None = Field(default=None, ge=1)
    rounds: int | None = Field(default=None, ge=1)
    quantile: float | None = Field(default=None, ge=0.0, le=1.0)
    trim: float | None = Field(default=None, ge=0.0, lt=0.5)
    max_ci: float = Field(default=DEFAULT_MAX_CI, gt=0.0)
    max_cv: float | None = Field(default=None, gt=0.0)
    max_repeats: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _rounds_only_for_interleaved(self) -> "ProtocolSettings":
        for key in ("rounds", "quantile"):
            if getattr(self, key) is not None and self.name != "interleaved":
                raise _FieldProblem(key, f"only applies to the interleaved protocol, not {self.name}; remove it")
        return self


class Hygiene(_Model):
    """Measurement hygiene: CPU pinning and thermal cool-down before each job."""

    affinity: list[int] | None = None
    cooldown_s: float = Field(default=0.0, ge=0.0)
    max_temperature_c: float | None = Field(default=None, gt=0.0)
    cooldown_timeout_s: float = Field(default=300.0, ge=0.0)

    @field_validator("affinity")
    @classmethod
    def _cores_are_valid(cls, cores: list[int] | None) -> list[int] | None:
        if cores is None:
            return None
        if not cores:
            raise ValueError("is empty; list the CPU cores to pin to, e.g. [0, 1], or remove it")
        if any(core < 0 for core in cores):
            raise ValueError("core numbers must be >= 0")
        if len(set(cores)) != len(cores):
            raise ValueError("lists a core twice")
        return cores


class SSHConfig(_Model):
    """How to reach a Linux board over SSH. Host keys are verified against ``known_hosts``.

    There is deliberately no password field: use a key (``key_file`` or the SSH agent).
    """

    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    trust_on_first_use: bool = False
    python: str = "python3"
    workdir: str = "~/.cache/latfarm"


class ADBConfig(_Model):
    """How to reach an Android phone: USB ``serial`` or adb over TCP (``host``:``port``)."""

    serial: str | None = None
    host: str | None = None
    port: int = Field(default=5555, ge=1, le=65535)
    key_file: str = "~/.android/adbkey"
    benchmark_binaries: dict[Runtime, str] = Field(default_factory=dict)
    workdir: str = "/data/local/tmp/latfarm"
    big_core_mask: str | None = None
    screen_off: bool = False

    @field_validator("big_core_mask")
    @classmethod
    def _mask_is_hex(cls, mask: str | None) -> str | None:
        if mask is not None and (not HEX_MASK.fullmatch(mask) or int(mask, 16) == 0):
            raise ValueError(f"{mask!r} is not a non-zero hex CPU mask; write it as taskset takes it, e.g. f0 or 0xf0")
        return mask

    @model_validator(mode="after")
    def _reachable_somehow(self) -> "ADBConfig":
        if not self.serial and not self.host:
            raise ValueError("sets neither serial (a USB phone, see `adb devices`) nor host (adb over TCP); set one")
        return self


class ReplayConfig(_Model):
    """A device simulated from a recorded latency table (``table``, rows of ``device``)."""

    table: str = Field(min_length=1)
    device: str = Field(min_length=1)
    noise: float = Field(default=0.0, ge=0.0)
    delay_ms: float = Field(default=0.0, ge=0.0)


class CUDAConfig(_Model):
    """Which GPU: for kind ``cuda`` one of this host's (``torch.device(f"cuda:{index}")``); on an ``ssh``
    device the board's own (a Jetson), where TorchScript models run on ``cuda:<index>``."""

    index: int = Field(default=0, ge=0)


class Device(_Model):
    """One device in the farm.

    Example:
        >>> Device(name="pi4-a", kind="ssh", ssh={"host": "10.0.0.7", "user": "pi"}).ssh.port
        22
    """

    name: str
    kind: DeviceKind
    platform: str | None = None
    runtimes: list[Runtime] = Field(default_factory=lambda: ["torch"])
    batch_sizes: list[int] = Field(default_factory=lambda: [1])
    threads: int = Field(default=1, ge=1)
    input_size: int | None = Field(default=None, ge=1)
    node: str | None = None
    tflite_layout: TFLiteLayout = "nchw"
    protocol: ProtocolSettings = Field(default_factory=ProtocolSettings)
    hygiene: Hygiene = Field(default_factory=Hygiene)
    ssh: SSHConfig | None = None
    adb: ADBConfig | None = None
    replay: ReplayConfig | None = None
    cuda: CUDAConfig | None = None

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, name: str) -> str:
        if not SLUG.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a slug; use lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (e.g. pi4-a)"
            )
        return name

    @field_validator("runtimes")
    @classmethod
    def _runtimes_listed_once(cls, runtimes: list[str]) -> list[str]:
        if not runtimes:
            raise ValueError("is empty; list at least one runtime, e.g. [torch]")
        if len(set(runtimes)) != len(runtimes):
            raise ValueError("lists a runtime twice")
        return runtimes

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes_positive(cls, sizes: list[int]) -> list[int]:
        if not sizes:
            raise ValueError("is empty; list at least one batch size, e.g. [1]")
        if any(size < 1 for size in sizes):
            raise ValueError("batch sizes must be >= 1")
        if len(set(sizes)) != len(sizes):
            raise ValueError("lists a batch size twice")
        return sizes

    @model_validator(mode="after")
    def _connection_matches_kind(self) -> "Device":
        for section in CONNECTION_SECTIONS:
            allowed = {section} | _ALSO_ALLOWED.get(section, set())
            if getattr(self, section) is not None and self.kind not in allowed:
                kinds = " or ".join(sorted(allowed))
                raise _FieldProblem(
                    section, f"only used with kind {kinds}, but kind is {self.kind}; remove it or set kind: {section}"
                )
        if self.kind in _REQUIRED_SECTION and getattr(self, self.kind) is None:
            raise _FieldProblem(self.kind, f"missing: kind {self.kind} needs {_SECTION_HELP[self.kind]}")
        if self.kind == "ssh" and self.cuda is not None and "torchscript" not in self.runtimes:
            raise _FieldProblem(
                "cuda", "on an ssh device only TorchScript runs on the board's GPU, and runtimes lists no "
                "torchscript; add torchscript to runtimes or remove cuda"
            )
        if self.tflite_layout != "nchw" and "tflite" not in self.runtimes:
            raise _FieldProblem(
                "tflite_layout", f"{self.tflite_layout} only applies to the tflite runtime, which runtimes does not "
                "list; add tflite to runtimes or remove tflite_layout"
            )
        if self.kind == "cuda" and self.cuda is None:
            object.__setattr__(self, "cuda", CUDAConfig())
        return self

    @property
    def ray_resource(self) -> str:
        """The Ray custom resource that pins this device's actor to its node: ``device:<name>``."""
        return f"device:{self.name}"


class Inventory(_Model):
    """All devices, with unique names.

    Example:
        >>> inventory = Inventory(devices=[Device(name="a", kind="cpu"), Device(name="b", kind="cpu")])
        >>> [d.name for d in inventory.select(["b"])]
        ['b']
    """

    devices: list[Device]

    @field_validator("devices")
    @classmethod
    def _not_empty(cls, devices: list[Device]) -> list[Device]:
        if not devices:
            raise ValueError("is empty; list at least one device (see the README's inventory section)")
        return devices

    _source: str = PrivateAttr(default=DEFAULT_PATH)

    @model_validator(mode="after")
    def _names_unique(self) -> "Inventory":
        seen: set[str] = set()
        for index, device in enumerate(self.devices):
            if device.name in seen:
                raise _FieldProblem(
                    f"devices[{index}].name", f"duplicate name {device.name!r}; every device needs its own name"
                )
            seen.add(device.name)
        return self

    @property
    def source(self) -> str:
        """The file this inventory was loaded from (for error messages)."""
        return self._source

    def names(self) -> list[str]:
        return [device.name for device in self.devices]

    def get(self, name: str) -> Device:
        """The device called ``name``; :class:`InventoryError` (listing the known names) otherwise."""
        for device in self.devices:
            if device.name == name:
                return device
        raise InventoryError(
            f"{self._source}: unknown device {name!r}; known devices: {', '.join(self.names()) or '(none)'}"
        )

    def select(self, names: Sequence[str] | None = None) -> list[Device]:
        """The named devices in the given order, or all devices when ``names`` is ``None``."""
        if names is None:
            return list(self.devices)
        return [self.get(name) for name in names]


# ------------------------------------------------------------------ loading
class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}; give each key once", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: str | Path) -> Inventory:
    """Read and validate an inventory file; raise :class:`InventoryError` with one line on bad input.

    Example:
        >>> import tempfile, os
        >>> folder = tempfile.mkdtemp()
        >>> file = os.path.join(folder, "inventory.yaml")
        >>> _ = open(file, "w").write("devices:\\n  - name: cpu-local\\n    kind: cpu\\n")
        >>> load(file).names()
        ['cpu-local']
    """
    source = str(path)
    try:
        text = read_text(path, hint="pass --inventory with an existing inventory file")
    except UserError as error:
        raise InventoryError(str(error)) from None
    inventory = loads(text, source=source, base_dir=Path(path).resolve().parent)
    for device in inventory.devices:
        if device.node is None:
            check_local_files(device, source)
    return inventory


def check_local_files(device: Device, source: str = DEFAULT_PATH) -> None:
    """The files ``device``'s agent will open on this host exist and fit; :class:`InventoryError` otherwise."""
    where = f"{source}: device {device.name!r}"
    if device.replay is not None:
        _check_replay_table(device.replay, f"{where}: field 'replay.table'")
    if device.ssh is not None:
        if device.ssh.key_file is not None:
            _check_file(device.ssh.key_file, f"{where}: field 'ssh.key_file'",
                        "fix the path, or remove key_file to use the SSH agent")
        if not device.ssh.trust_on_first_use:
            _check_file(device.ssh.known_hosts, f"{where}: field 'ssh.known_hosts'",
                        f"add the board's key (ssh-keyscan -p {device.ssh.port} {device.ssh.host} >> "
                        f"{device.ssh.known_hosts}) or set ssh.trust_on_first_use: true")
    if device.adb is not None:
        _check_file(device.adb.key_file, f"{where}: field 'adb.key_file'",
                    f"create it with `adb keygen {device.adb.key_file}` (or run `adb devices` once) and accept it "
                    "on the phone")


def _check_file(path: str, where: str, fix: str) -> None:
    expanded = Path(path).expanduser()
    if not expanded.is_file():
        raise InventoryError(f"{where}: {path} {'is not a file' if expanded.exists() else 'does not exist'}; {fix}")


def _check_replay_table(replay: ReplayConfig, where: str) -> None:
    """The table is Parquet with the replay columns and holds rows of ``replay.device``."""
    import pyarrow.parquet as pq

    from agents.replay import REQUIRED_COLUMNS

    table = Path(replay.table).expanduser()
    _check_file(replay.table, where, "point it at a Parquet table (e.g. data/help_latency.parquet)")
    try:
        schema = pq.read_schema(table)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise InventoryError(f"{where}: {replay.table} is not a readable Parquet file ({type(error).__name__}); "
                             "point it at a Parquet table") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in schema.names]
    if missing:
        raise InventoryError(f"{where}: {replay.table} has no column {missing[0]!r}; a replay table needs "
                             f"{', '.join(REQUIRED_COLUMNS)}")
    try:
        devices = set(pq.read_table(table, columns=["device"]).column("device").unique().to_pylist())
    except Exception as error:  # noqa: BLE001 - a damaged table
        raise InventoryError(f"{where}: {replay.table} cannot be read ({type(error).__name__}: {error})") from None
    if replay.device not in devices:
        known = sorted(str(d) for d in devices if d is not None)
        close = difflib.get_close_matches(replay.device, known, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise InventoryError(f"{where.rsplit(': field', 1)[0]}: field 'replay.device': {replay.table} holds no rows of "
                             f"{replay.device!r}; {guess}it holds {len(known)} devices, e.g. {', '.join(known[:5])}")


def loads(text: str, *, source: str = DEFAULT_PATH, base_dir: Path | None = None) -> Inventory:
    """Validate inventory YAML ``text``; ``source`` names it in error messages."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InventoryError(f"{source}: YAML error{where}: {exc.problem or exc.context}; fix the YAML") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{source}: YAML error: {exc}; fix the YAML") from None
    if data is None:
        raise InventoryError(f"{source}: the file is empty; it needs a `devices:` list (see the README)")
    if not isinstance(data, dict):
        raise InventoryError(
            f"{source}: the top level is a {type(data).__name__}; it must be a mapping with a `devices:` list"
        )
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventoryError(_describe(exc, data, text, source)) from None
    if base_dir is not None:
        _resolve_relative_paths(inventory, base_dir)
    inventory._source = source
    return inventory


def _resolve_relative_paths(inventory: Inventory, base_dir: Path) -> None:
    """Host-side file fields that are relative paths, made absolute under ``base_dir`` (in place)."""
    def resolved(path: str) -> str:
        expanded = Path(path).expanduser()
        return path if expanded.is_absolute() else str((base_dir / expanded).resolve())

    for device in inventory.devices:
        if device.replay is not None:
            device.replay.table = resolved(device.replay.table)
        if device.ssh is not None:
            device.ssh.known_hosts = resolved(device.ssh.known_hosts)
            if device.ssh.key_file is not None:
                device.ssh.key_file = resolved(device.ssh.key_file)
        if device.adb is not None:
            device.adb.key_file = resolved(device.adb.key_file)


# --------------------------------------------------------- error rendering
def _describe(exc: ValidationError, data: dict[str, Any], text: str, source: str) -> str:
    """One line for the first validation error: file, device, field, problem, fix, YAML line."""
    errors = exc.errors(include_url=False)
    # An unknown key is usually a typo that also explains a "missing" error: report it first.
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    error = errors[0]
    loc: tuple[Any, ...] = tuple(error["loc"])
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, _FieldProblem):
        loc = loc + tuple(_split_field(problem.field))
        message = problem.message
    else:
        message = _explain(error, loc)
    parts = [source]
    field_loc = loc
    if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int):
        parts.append(f"device {_device_label(data, loc[1])}")
        field_loc = loc[2:]
    if field_loc:
        parts.append(f"field {_format_loc(field_loc)!r}")
    parts.append(message)
    line = _line_of(text, loc)
    more = f"; {len(errors) - 1} more problem(s) after this one" if len(errors) > 1 else ""
    return ": ".join(parts) + more + (f" (line {line})" if line else "")


def _explain(error: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        if isinstance(key, str) and "password" in key.lower():
            return "passwords are not accepted in the inventory; use key_file (an SSH key) or the SSH agent"
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        listing = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        return f"unknown key{guess}{listing}"
    if kind == "missing":
        return "missing: this field is required; add it"
    message = str(error["msg"])
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    if kind in {"model_type", "dict_type"}:
        return f"{message}; got {_short(error.get('input'))} (write it as `key: value` lines)"
    return f"{message}; got {_short(error.get('input'))}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _device_label(data: dict[str, Any], index: int) -> str:
    devices = data.get("devices")
    if isinstance(devices, list) and index < len(devices):
        entry = devices[index]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            return repr(entry["name"])
    return f"#{index + 1}"


def _format_loc(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _split_field(field: str) -> list[Any]:
    parts: list[Any] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model found by following ``loc`` from :class:`Inventory`."""
    model: Any = Inventory
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = _unwrap_model(model.model_fields[part].annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap_model(annotation: Any) -> Any:
    """The BaseModel inside ``X | None`` or ``list[X]``, else the annotation itself."""
    origin = get_origin(annotation)
    if origin is Union or origin is list or str(origin) == "<class 'types.UnionType'>":
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return annotation


def _line_of(text: str, loc: Sequence[Any]) -> int | None:
    """The 1-based YAML line of the node at ``loc`` (the deepest one that exists)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line, child = key_node.start_mark.line + 1, value_node
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
