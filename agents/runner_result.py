"""The on-device runner's JSON result line, decoded and checked against its schema.

:mod:`agents.runner` prints one JSON object per job (see its docstring for the fields).
What comes back over SSH is untrusted: a runner of another version, a damaged copy, or a
hostile board can send anything. :func:`parse_runner_line` turns any line into either a
result whose every field the agent reads has the documented type, or a :class:`MalformedResult`
(a retryable :class:`RunFailed`) naming the field and what is wrong. It never raises anything else: not
``KeyError``/``AttributeError``/``TypeError`` on a missing or mistyped field, not
``RecursionError`` on deeply nested JSON, not ``ValueError`` on a 5000-digit integer.

Checked per mode (``hello`` is the ``--serve`` greeting):

- every result: ``ok`` (bool); ``ok: false`` becomes :class:`RunFailed` with ``error``;
- ``hello``: ``pid`` (int >= 0, optional);
- ``temperatures``: ``thermal_c`` (name -> number);
- ``probe``: ``facts`` (below), ``runtime_versions`` (name -> str);
- ``check`` / ``run``: ``errors`` (one ``null`` or ``{stage, kind, message}`` per artifact),
  and for ``run`` ``samples_ms`` (one list per artifact of finite times >= 0 ms, at most a
  day each), ``temperatures_start_c``/``temperatures_end_c``, ``wall_s``, ``threads``, ``facts``.

``facts`` (optional fields, each checked where present): ``hostname``/``cpu_model`` (str),
``online_cores``/``affinity`` (ints, at most :data:`MAX_CORES`), ``cpufreq`` (core ->
``{governor, cur_freq, min_freq, max_freq}`` of str or null), ``thermal_c`` (name -> number),
``free_memory_mb`` (number or null), ``tools`` (name -> object). Temperatures may be
non-finite here: :mod:`agents.telemetry` drops those and says so in the row.

Example:
    >>> result = parse_runner_line('{"ok": true, "mode": "run", "samples_ms": [[1.5, 1.4]], '
    ...                            '"errors": [null], "wall_s": 0.1, "threads": 1}',
    ...                            device="pi4", mode="run", artifacts=1)
    >>> result["samples_ms"], result["facts"]
    ([[1.5, 1.4]], {})
    >>> parse_runner_line('{"ok": true, "samples_ms": "x", "errors": [null]}', device="pi4", mode="run", artifacts=1)
    Traceback (most recent call last):
    ...
    agents.runner_result.MalformedResult: device 'pi4': the runner's run result is malformed: samples_ms: a list, not str
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from agents.base import AgentError, RunFailed

__all__ = [
    "MAX_CORES",
    "MAX_LINE_CHARS",
    "DeviceSetupError",
    "MalformedResult",
    "RunnerDied",
    "decode_runner_line",
    "parse_runner_line",
    "parse_runner_result",
    "runner_exit_error",
]

#: The most cores (list entries, cpufreq keys) a device may report.
MAX_CORES = 4096
#: A result line longer than this is refused before decoding (a real one is a few kB).
MAX_LINE_CHARS = 16 * 1024 * 1024
_MAX_SAMPLE_MS = 86_400e3
_MAX_ENTRIES = 100_000

Check = Callable[[Any, str], Any]


class MalformedResult(RunFailed):
    """The runner's answer is not a result line: not JSON, too long, or not matching the schema. Retryable."""


class _Malformed(Exception):
    """A field that does not match the schema: where it is and what is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def _one_line(text: str) -> str:
    """``text`` as one line: a hostile key or message cannot split the error over several."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(path, f"a string, not {_type_name(value)}")
    return value


def _integer(minimum: int, maximum: int) -> Check:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Malformed(path, f"an integer, not {_type_name(value)}")
        if not minimum <= value <= maximum:
            raise _Malformed(path, f"{value} is outside [{minimum}, {maximum}]")
        return value
    return check


def _number(minimum: float = -math.inf, maximum: float = math.inf, *, finite: bool = True) -> Check:
    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Malformed(path, f"a number, not {_type_name(value)}")
        if finite and not math.isfinite(value):
            raise _Malformed(path, f"{value} is not finite")
        if math.isfinite(value) and not minimum <= value <= maximum:
            raise _Malformed(path, f"{value:g} is outside [{minimum:g}, {maximum:g}]")
        return value
    return check


def _optional(check: Check) -> Check:
    return lambda value, path: None if value is None else check(value, path)


def _list_of(item: Check, *, max_length: int = _MAX_ENTRIES, length: int | None = None) -> Check:
    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _Malformed(path, f"a list, not {_type_name(value)}")
        if length is not None and len(value) != length:
            raise _Malformed(path, f"{len(value)} entries for {length} artifacts")
        if len(value) > max_length:
            raise _Malformed(path, f"{len(value)} entries, more than {max_length}")
        return [item(entry, f"{path}[{index}]") for index, entry in enumerate(value)]
    return check


def _dict_of(item: Check, *, max_length: int = _MAX_ENTRIES) -> Check:
    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Malformed(path, f"an object, not {_type_name(value)}")
        if len(value) > max_length:
            raise _Malformed(path, f"{len(value)} entries, more than {max_length}")
        return {key: item(entry, f"{path}.{key}") for key, entry in value.items()}
    return check


def _object(fields: dict[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    """An object whose listed fields are checked (absent optional ones left out); others pass as they are."""
    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Malformed(path, f"an object, not {_type_name(value)}")
        checked = dict(value)
        for name, field_check in fields.items():
            where = f"{path}.{name}" if path else name
            if name in value:
                checked[name] = field_check(value[name], where)
            elif name in required:
                raise _Malformed(where, "missing")
        return checked
    return check


_TEMPERATURES = _dict_of(_number(finite=False), max_length=_MAX_ENTRIES)
_CORES = _list_of(_integer(0, 1 << 20), max_length=MAX_CORES)
_FACTS = _object({
    "hostname": _string,
    "cpu_model": _string,
    "online_cores": _CORES,
    "affinity": _optional(_CORES),
    "cpufreq": _dict_of(_object({name: _optional(_string) for name in ("governor", "cur_freq", "min_freq", "max_freq")}),
                        max_length=MAX_CORES),
    "thermal_c": _TEMPERATURES,
    "free_memory_mb": _optional(_number(0.0)),
    "tools": _dict_of(_object({"stdout": _string, "stderr": _string})),
})
_ERROR = _optional(_object({"stage": _string, "kind": _string, "message": _string}, required=("stage", "kind", "message")))


def _mode_fields(mode: str, artifacts: int) -> tuple[dict[str, Check], tuple[str, ...]]:
    """The checked fields of a ``mode`` result and which of them must be present."""
    if mode == "hello":
        return {"pid": _integer(0, 1 << 31)}, ()
    if mode == "temperatures":
        return {"thermal_c": _TEMPERATURES}, ("thermal_c",)
    if mode == "probe":
        return {"facts": _FACTS, "runtime_versions": _dict_of(_string)}, ("facts",)
    errors = _list_of(_ERROR, length=artifacts)
    if mode == "check":
        return {"errors": errors}, ("errors",)
    if mode == "run":
        return {
            "errors": errors,
            "samples_ms": _list_of(_list_of(_number(0.0, _MAX_SAMPLE_MS), max_length=10_000_000), length=artifacts),
            "temperatures_start_c": _TEMPERATURES,
            "temperatures_end_c": _TEMPERATURES,
            "wall_s": _number(0.0),
            "threads": _integer(1, MAX_CORES),
            "facts": _FACTS,
            "runtime_versions": _dict_of(_string),
            "load_ms": _list_of(_optional(_number(0.0))),
        }, ("errors", "samples_ms")
    raise ValueError(f"unknown runner mode {mode!r}; one of hello, temperatures, probe, check, run")


def decode_runner_line(line: str, *, device: str) -> Any:
    """The JSON value of one result line; :class:`MalformedResult` for anything that is not JSON.

    Example:
        >>> decode_runner_line("[" * 100_000, device="pi4")
        Traceback (most recent call last):
        ...
        agents.runner_result.MalformedResult: device 'pi4': the runner's output is not JSON (nested too deeply): '[[[[[[[[[[[[[[[[[[[[...'
    """
    shown = repr(line[:20] + "..." if len(line) > 200 else line)
    if len(line) > MAX_LINE_CHARS:
        raise MalformedResult(f"device {device!r}: the runner's output is {len(line)} characters, more than any result")
    try:
        return json.loads(line)
    except RecursionError:
        raise MalformedResult(f"device {device!r}: the runner's output is not JSON (nested too deeply): {shown}") from None
    except ValueError as error:  # JSONDecodeError, and integers longer than Python converts
        raise MalformedResult(f"device {device!r}: the runner's output is not JSON ({error}): {shown}") from None


def parse_runner_result(result: Any, *, device: str, mode: str, artifacts: int = 0) -> dict[str, Any]:
    """``result`` checked against the schema of ``mode``; missing optional containers filled in empty.

    ``artifacts`` is the number of artifacts the job named (``check``/``run``). Raises
    :class:`RunFailed` for a result that says it failed, :class:`MalformedResult` for one that does not
    match the schema.
    """
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        got = "a JSON object without a boolean 'ok'" if isinstance(result, dict) else f"a {_type_name(result)}"
        raise MalformedResult(f"device {device!r}: the runner's output is not a result object: {got}")
    if not result["ok"]:
        reason = result.get("error")
        reason = _one_line(reason[:500]) if isinstance(reason, str) else "no reason given"
        raise RunFailed(f"device {device!r}: the runner failed: {reason}")
    answered = result.get("mode")
    if mode != "hello" and answered is not None and answered != mode:
        shown = _one_line(answered[:40]) if isinstance(answered, str) else _type_name(answered)
        raise MalformedResult(f"device {device!r}: the runner answered a {mode} job with a {shown!r} result")
    fields, required = _mode_fields(mode, artifacts)
    try:
        checked = _object(fields, required=required)(result, "")
    except _Malformed as error:
        raise MalformedResult(f"device {device!r}: the runner's {mode} result is malformed: {_one_line(str(error))}") from None
    except RecursionError:
        raise MalformedResult(f"device {device!r}: the runner's {mode} result is nested too deeply") from None
    for container in ("facts", "runtime_versions", "thermal_c", "temperatures_start_c", "temperatures_end_c"):
        if container in fields:
            checked.setdefault(container, {})
    return checked


def parse_runner_line(line: str, *, device: str, mode: str, artifacts: int = 0) -> dict[str, Any]:
    """:func:`decode_runner_line` then :func:`parse_runner_result`: one line in, a checked result or ``RunFailed``."""
    return parse_runner_result(decode_runner_line(line, device=device), device=device, mode=mode, artifacts=artifacts)


class RunnerDied(RunFailed):
    """The runner process ended mid-job (a runtime crashed it: segfault, abort, out of memory)."""


class DeviceSetupError(AgentError):
    """The device lacks something the inventory asks for (its ``python``, ``taskset``, a usable workdir). Permanent."""

    retryable = False


def runner_exit_error(
    device: str, status: int, stderr: str, python: str, *, starting: bool = False, mode: str | None = None
) -> AgentError:
    """The error for a runner that ended without answering: it never started (:class:`DeviceSetupError`)
    or it died during a ``mode`` job (:class:`RunnerDied`).

    Example:
        >>> runner_exit_error("pi4", 127, "python3: not found", "python3", starting=True)
        DeviceSetupError("device 'pi4': command not found (python3: not found); check ssh.python ('python3') and that taskset is installed")
        >>> runner_exit_error("pi4", 139, "", "python3", mode="run").retryable
        True
    """
    tail = _one_line(stderr[-2000:]) or "no output"
    if starting and status == 127:
        return DeviceSetupError(
            f"device {device!r}: command not found ({tail}); check ssh.python ({python!r}) and that taskset is installed"
        )
    if starting:
        return DeviceSetupError(
            f"device {device!r}: the runner did not start (exit status {status}): {tail}; "
            "check hygiene.affinity (cores the device has) and ssh.python"
        )
    return RunnerDied(f"device {device!r}: the runner died during a {mode} job (exit status {status}): {tail}")
