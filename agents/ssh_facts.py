"""A board's :class:`~agents.base.DeviceFacts` from the facts object of the runner's ``probe`` result.

The object has passed :mod:`agents.runner_result`'s schema, so every field read here has
its documented type; the values are still the device's word: a clock is taken only
as a plain decimal of at most 12 digits, and ``vcgencmd`` / ``nvpmodel -q`` output that
does not parse is kept in ``extra["tool_errors"]``, never fatal. Non-finite or absurd
temperatures are kept as reported; :meth:`DeviceFacts.telemetry` drops them and the row says so.

Example:
    >>> facts = facts_from_runner({"hostname": "pi4", "online_cores": [0, 1],
    ...                            "cpufreq": {"0": {"governor": "ondemand", "cur_freq": "1500000"},
    ...                                        "1": {"governor": "ondemand", "cur_freq": "9" * 5000}},
    ...                            "thermal_c": {"cpu": 48.5}}, {"torch": "2.5.0"}, taskset=True)
    >>> facts.cores, facts.frequencies_khz, facts.governor["1"], facts.extra["taskset"]
    (2, {'0': 1500000}, 'ondemand', True)
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from agents.base import DeviceFacts

__all__ = ["board_tool_readings", "facts_from_runner"]

#: A cpufreq ``cur_freq`` in kHz: ASCII digits only, and no more than any clock needs.
_KHZ = re.compile(r"[0-9]{1,12}")
_EXTRA_FIELDS = ("board", "machine", "kernel", "online_cores", "affinity", "load_average", "python")


def facts_from_runner(facts: Mapping[str, Any], versions: Mapping[str, str], *, taskset: bool | None = None) -> DeviceFacts:
    """:class:`DeviceFacts` from the runner's ``facts`` object; raw board-tool output kept in ``extra``."""
    cpufreq = facts.get("cpufreq") or {}
    extra: dict[str, Any] = {key: facts.get(key) for key in _EXTRA_FIELDS}
    extra["tools"] = facts.get("tools") or {}
    if taskset is not None:
        extra["taskset"] = taskset
    temperatures = dict(facts.get("thermal_c") or {})
    extra.update(board_tool_readings(extra["tools"], temperatures, source=f"{facts.get('hostname') or 'device'} output"))
    return DeviceFacts(
        hostname=facts.get("hostname") or "",
        cpu_model=facts.get("cpu_model") or "",
        cores=len(facts.get("online_cores") or []),
        governor={core: entry["governor"] for core, entry in cpufreq.items() if entry.get("governor")},
        frequencies_khz={
            core: int(entry["cur_freq"]) for core, entry in cpufreq.items() if _KHZ.fullmatch(entry.get("cur_freq") or "")
        },
        temperatures_c=temperatures,
        free_memory_mb=facts.get("free_memory_mb"),
        runtime_versions=dict(versions),
        extra=extra,
    )


def board_tool_readings(tools: Mapping[str, Any], temperatures_c: dict[str, float], *, source: str) -> dict[str, Any]:
    """Parse the raw ``vcgencmd`` (Pi) and ``nvpmodel -q`` (Jetson) output the runner captured.

    Returns ``throttled`` (the decoded bit field and its conditions) and ``power_mode``
    ({name, mode_id}); adds the SoC temperature from ``vcgencmd measure_temp`` to
    ``temperatures_c``. Output that does not parse is kept in ``tool_errors``, never fatal.

    Example:
        >>> temperatures = {}
        >>> board_tool_readings({"vcgencmd_measure_temp": {"stdout": "temp=51.0'C\\n"}}, temperatures, source="pi4")
        {}
        >>> temperatures
        {'vcgencmd': 51.0}
    """
    from agents.parsers import nvpmodel, vcgencmd
    from agents.parsers.common import OutputError

    readings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in ("vcgencmd_get_throttled", "vcgencmd_measure_temp", "nvpmodel_q"):
        output = tools.get(name)
        if not output:
            continue
        text = f"{output.get('stdout', '')}\n{output.get('stderr', '')}"
        try:
            if name == "nvpmodel_q":
                mode = nvpmodel.parse(text, source=source)
                readings["power_mode"] = {"name": mode.name, "mode_id": mode.mode_id, "errors": list(mode.errors)}
                continue
            parsed = vcgencmd.parse(text, source=source)
        except OutputError as error:
            errors[name] = str(error)
            continue
        if parsed.throttled is not None:
            readings["throttled"] = {"raw": hex(parsed.throttled.raw), "conditions": list(parsed.throttled.conditions)}
        if parsed.temperature_c is not None:
            temperatures_c["vcgencmd"] = parsed.temperature_c
    if errors:
        readings["tool_errors"] = errors
    return readings
