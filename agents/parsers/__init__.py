"""Parsers of on-device tool output, one module per tool; every one refuses with a typed error.

- :mod:`~agents.parsers.tflite_benchmark`: TFLite ``benchmark_model`` (v1.12 .. v2.20, op profiling)
- :mod:`~agents.parsers.speed_benchmark_torch`: PyTorch Mobile ``speed_benchmark_torch``
- :mod:`~agents.parsers.executor_runner`: ExecuTorch ``executor_runner`` / ``qnn_executor_runner``
- :mod:`~agents.parsers.vcgencmd`: Raspberry Pi temperature, clocks, throttling bits
- :mod:`~agents.parsers.tegrastats`, :mod:`~agents.parsers.nvpmodel`, :mod:`~agents.parsers.jetson_clocks`: Jetson
- :mod:`~agents.parsers.dumpsys_battery`, :mod:`~agents.parsers.thermal`, :mod:`~agents.parsers.getprop`: Android
- :mod:`~agents.parsers.cpuinfo`, :mod:`~agents.parsers.governor`: Linux ``/proc/cpuinfo`` and cpufreq
- :mod:`~agents.parsers.adb_errors`: ``adb`` client messages -> typed :class:`~agents.base.DeviceUnavailable`

Refusals are :class:`~agents.parsers.common.OutputError` subclasses (``UnparsableOutput``,
``ModelRejected``, ``ToolCrashed``) whose ``agent_error()`` gives the farm-level error.
"""

from agents.parsers.common import ModelRejected, OutputError, ToolCrashed, UnparsableOutput

__all__ = ["ModelRejected", "OutputError", "ToolCrashed", "UnparsableOutput"]
