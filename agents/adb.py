"""The ADB agent: Android phones measured with their on-device benchmark binaries.

This file holds the agent; its parts live beside it, one concept each:
:mod:`agents.adb_settings` (settings, CPU mask, configuration errors),
:mod:`agents.adb_connection` (the adb link and bounded shell commands) and
:mod:`agents.adb_files` (the private campaign folder, atomic pushes, sha256 checks).
Every public name of those is importable from here too.

Connection: `adb-shell <https://pypi.org/project/adb-shell/>`_ talks the ADB protocol
to ``adbd`` on the phone itself, no ``adb`` server needed: over TCP (``host:5555``,
after ``adb tcpip 5555``) or over USB by ``serial`` when adb-shell's USB extra
(``libusb1``) is installed. Authentication uses the RSA key in ``key_file`` (default
``~/.android/adbkey``, the key the ``adb`` tool creates); the phone must have accepted
it once ("Allow USB debugging", tick "Always allow").

Files: artifacts go to a fresh, private (0700) ``<workdir>/<campaign>/`` folder, each
pushed to a random ``.part`` name and renamed; the sha256 of the benchmark binary and of
the artifact are checked on the phone right before every invocation, and a mismatch is
:class:`~agents.adb_files.RemoteFileMismatch` naming the file and both hashes.

What runs on the phone: the benchmark binary the inventory names for the runtime
(``adb.benchmark_binaries``), one model per invocation, pinned with ``taskset`` to the
big-core mask:

- ``torchscript`` (``.ptl``): ``speed_benchmark_torch --model= --input_dims=B,3,S,S
  --input_type=float --warmup=W --iter=R --report_pep=true``; one invocation per burst,
  each ``PyTorchObserver`` line is one timed run (microseconds, given as a string).
- ``tflite`` (``.tflite``): ``benchmark_model --graph= --num_threads= --warmup_runs=
  --num_runs= --use_xnnpack= --min_secs=0 --warmup_min_secs=0``. The tool prints only
  aggregates, so a burst of R runs is cut into batches of ``tflite_batch_runs`` (10, the
  LatBench batch) and each invocation contributes *one sample, the batch mean*; the
  protocol's estimator then works on batch means (LatBench's second stage). The samples
  of a TFLite row are therefore batch means, not single runs
  (:attr:`ADBAgent.SAMPLE_KIND`).
- ``executorch`` (``.pte``): ``executor_runner --model_path= --num_executions=N``, which
  prints the total time of N runs; batches as for TFLite. The runner has no warm-up
  flag, so a burst's warm-up is a separate invocation of W executions whose time is
  discarded (it warms caches and clocks, not the next process's allocator).

The interleaved protocol runs as the farm schedules it: bursts visit the archs in
rounds, each burst is one short invocation (or a few, for batch runtimes).

Hygiene: before each schedule the agent sleeps ``cooldown_s``, then polls the battery
(``dumpsys battery``, tenths of °C) and ``/sys/class/thermal`` until the hottest sensor
is below ``max_temperature_c`` or ``cooldown_timeout_s`` passes (recorded in
:attr:`ADBAgent.last_run`, not fatal; a reading that is not finite or outside the
physical range of :mod:`agents.telemetry` never counts, and :meth:`ADBAgent.telemetry`
names it); optionally turns the screen off (``input keyevent KEYCODE_SLEEP``); records
temperatures before and after. Every shell argument is ``shlex.quote``-d.

Errors: unreachable -> :class:`~agents.parsers.adb_errors.DeviceNotFound`, no answer to
the handshake -> :class:`~agents.parsers.adb_errors.DeviceOffline`, key not accepted ->
:class:`~agents.parsers.adb_errors.DeviceUnauthorized`, connection lost mid-run ->
:class:`DeviceOffline` (all retryable :class:`~agents.base.DeviceUnavailable`); a missing
key file or binary -> :class:`ADBConfigError` / :class:`BenchmarkBinaryMissing` (not
retryable); a model the binary refuses -> :class:`~agents.base.ArtifactRejected`; a file
swapped on the phone -> :class:`RemoteFileMismatch` (not retryable). Counts the phone
reports are bounded (:data:`~agents.adb_settings.MAX_CPUS` cores, :data:`MAX_ZONES`
thermal zones, :data:`~agents.adb_connection.MAX_SHELL_OUTPUT_BYTES` of output).

Example (against the protocol-level adbd simulation of the tests)::

    agent = ADBAgent(ADBSettings(name="pixel8", host="127.0.0.1", port=adbd.port, key_file=key,
                                 benchmark_binaries={"torchscript": "/data/local/tmp/speed_benchmark_torch"}))
    agent.prepare(artifact)
    samples = agent.run([artifact], [Burst(0, warmup=2, runs=10)])
"""

from __future__ import annotations

import functools
import logging
import math
import re
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from agents.adb_connection import (
    MAX_SHELL_OUTPUT_BYTES,
    RC_MARKER,
    ADBConnection,
    ShellResult,
    connect_adb_shell,
)
from agents.adb_files import RemoteFileMismatch, RemoteFiles, UnsafeWorkdir
from agents.adb_settings import (
    MAX_CPUS,
    ADBConfigError,
    ADBSettings,
    BenchmarkBinaryMissing,
    affinity_mask,
    check_cpu_mask,
    mask_cores,
)
from agents.base import Agent, AgentError, Artifact, ArtifactRejected, Burst, DeviceFacts, RunFailed
from agents.hashing import file_sha256
from agents.parsers import cpuinfo, dumpsys_battery, executor_runner, getprop, governor, thermal
from agents.parsers import speed_benchmark_torch, tflite_benchmark
from agents.parsers.adb_errors import DeviceNotFound, DeviceOffline, DeviceUnauthorized
from agents.parsers.common import OutputError
from agents.telemetry import Telemetry, from_cores, hottest, sane_temperature

if TYPE_CHECKING:
    from adb_shell.adb_device import AdbDevice

    from farm.inventory import Device

__all__ = [
    "ADBAgent",
    "ADBConfigError",
    "ADBConnection",
    "ADBSettings",
    "BenchmarkBinaryMissing",
    "DeviceNotFound",
    "DeviceOffline",
    "DeviceUnauthorized",
    "MAX_CPUS",
    "MAX_SHELL_OUTPUT_BYTES",
    "MAX_ZONES",
    "RC_MARKER",
    "RemoteFileMismatch",
    "RemoteFiles",
    "ShellResult",
    "UnsafeWorkdir",
    "affinity_mask",
    "connect_adb_shell",
]

logger = logging.getLogger(__name__)

#: The most thermal zones a phone may report (real ones have under 100).
MAX_ZONES = 1024
_SUFFIX = {"torchscript": ".ptl", "tflite": ".tflite", "executorch": ".pte"}
_TOOL_OF_RUNTIME = {"torchscript": "speed_benchmark_torch", "tflite": "benchmark_model",
                    "executorch": "executor_runner"}
_MEM_AVAILABLE = re.compile(r"^MemAvailable:\s+(\d{1,15}) kB$", re.MULTILINE)


class ADBAgent(Agent):
    """An Android phone reached over ADB; see the module docstring for what runs where."""

    #: What one returned sample is, per runtime (see the module docstring).
    SAMPLE_KIND = {"torchscript": "run", "tflite": "batch_mean", "executorch": "batch_mean"}

    def __init__(
        self,
        settings: ADBSettings,
        *,
        connector: Callable[[ADBSettings], "AdbDevice"] = connect_adb_shell,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_cpu_mask(settings.name, settings.cpu_mask)
        self.settings = settings
        self.sleep = sleep
        self.connection = ADBConnection(settings, connector)
        self.files = RemoteFiles(self.connection)
        self._remote: dict[tuple[Any, ...], tuple[str, str]] = {}  # artifact key -> (path on the phone, sha256)
        self._checked_binaries: dict[str, tuple[str, str]] = {}  # runtime -> (path, sha256 when first checked)
        self._screen_done = False
        self.last_run: dict[str, Any] = {}

    @classmethod
    def from_device(cls, device: "Device", *, campaign_id: str) -> "ADBAgent":
        """The agent for an inventory device of kind ``adb``."""
        if device.adb is None:
            raise ADBConfigError(f"device {device.name!r}: kind adb needs an `adb:` section")
        adb, hygiene = device.adb, device.hygiene
        mask = adb.big_core_mask or (affinity_mask(hygiene.affinity) if hygiene.affinity else None)
        return cls(ADBSettings(
            name=device.name, host=adb.host, port=adb.port, serial=adb.serial, key_file=adb.key_file,
            benchmark_binaries=dict(adb.benchmark_binaries), workdir=adb.workdir, campaign_id=campaign_id,
            cpu_mask=mask, screen_off=adb.screen_off, threads=device.threads, cooldown_s=hygiene.cooldown_s,
            max_temperature_c=hygiene.max_temperature_c, cooldown_timeout_s=hygiene.cooldown_timeout_s,
        ))

    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ShellResult:
        """Run ``command`` (already quoted) in the phone's shell; see :meth:`ADBConnection.shell`."""
        return self.connection.shell(command, timeout_s=timeout_s, what=what)

    # ------------------------------------------------------------ facts
    def _read(self, command: str, parse: Callable[..., Any], default: Any) -> Any:
        """Run a read-out command and parse it; a fact the phone does not give is ``default`` (logged)."""
        result = self.shell(command)
        try:
            return parse(result.output, source=f"device {self.settings.name!r} `{command[:40]}`")
        except OutputError as error:
            logger.info("%s", error)
            return default

    def _cpufreq(self) -> dict[str, governor.CpuFreq]:
        """Per-core governor and clocks; a table of more than :data:`MAX_CPUS` rows is not believed."""
        table = self._read(governor.CPUFREQ_READ_COMMAND, governor.parse_table, {})
        if len(table) > MAX_CPUS:
            logger.info("device %s: cpufreq lists %d cores, more than %d; ignored", self.settings.name,
                        len(table), MAX_CPUS)
            return {}
        return table

    def _temperature_readings(self) -> dict[str, float]:
        """Every temperature the phone reports, in °C, unreadable zones as NaN (so they can be named)."""
        found: dict[str, float] = {}
        battery = self._read("dumpsys battery", dumpsys_battery.parse, None)
        if battery is not None and battery.temperature_c is not None:
            found["battery"] = battery.temperature_c
        zones = self._read(thermal.ZONE_READ_COMMAND, thermal.parse_zone_readings, thermal.ZoneReadings())
        if len(zones) + len(zones.dropped) > MAX_ZONES:
            logger.info("device %s: %d thermal zones, more than %d; ignored", self.settings.name,
                        len(zones) + len(zones.dropped), MAX_ZONES)
            return found
        found.update({f"zone:{name}": value for name, value in zones.items()})
        found.update({f"zone:{name}": math.nan for name in zones.dropped})
        return found

    def temperatures(self) -> dict[str, float]:
        """Battery and thermal-zone temperatures in °C (``battery``, ``zone:<type>``), sane readings only.

        A reading that is not finite or outside :data:`agents.telemetry.TEMPERATURE_RANGE_C`
        is left out (:meth:`telemetry` names it).
        """
        return {name: value for name, value in self._temperature_readings().items()
                if sane_temperature(value) is not None}

    def temperature_c(self) -> float | None:
        """The hottest sane sensor now; a broken sensor (NaN, -273 °C) never hides a hot one."""
        return hottest(self._temperature_readings())

    def telemetry(self) -> Telemetry:
        """Hottest sane sensor, mean clock and governor of the cores of ``cpu_mask`` (all without a mask).

        Two shell read-outs; readings dropped as not finite or impossible are named in ``dropped``.
        """
        freqs = self._cpufreq()
        return from_cores({cpu: row.governor for cpu, row in freqs.items()},
                          {cpu: row.cur_khz for cpu, row in freqs.items()},
                          self._temperature_readings(), cores=mask_cores(self.settings.cpu_mask))

    def probe(self) -> DeviceFacts:
        """Model, Android version, CPU (from ``/proc/cpuinfo``), cpufreq, temperatures, binaries.

        Facts are informational: one the phone does not give (odd vendor output) stays empty
        rather than failing the probe; only a broken connection raises.
        """
        properties = self._read("getprop", functools.partial(getprop.parse, strict=False), {})
        cpu = self._read("cat /proc/cpuinfo", cpuinfo.parse, cpuinfo.CpuInfo([]))
        online = self._read("cat /sys/devices/system/cpu/online", cpuinfo.parse_online, [])
        cores = len(online) or cpu.cores
        freqs = self._cpufreq()
        available = _MEM_AVAILABLE.search(self.shell("cat /proc/meminfo").output)
        return DeviceFacts(
            hostname=f"{properties.get('ro.product.model', 'android')} ({self.settings.address})",
            cpu_model=cpu.model,
            cores=cores,
            governor={cpu_name: row.governor for cpu_name, row in freqs.items()},
            frequencies_khz={cpu_name: row.cur_khz for cpu_name, row in freqs.items()},
            temperatures_c=self.temperatures(),
            free_memory_mb=int(available.group(1)) / 1024 if available else None,
            runtime_versions=self._binary_versions(),
            extra={
                "android_release": properties.get("ro.build.version.release"),
                "sdk": properties.get("ro.build.version.sdk"),
                "abi": properties.get("ro.product.cpu.abi"),
                "device": properties.get("ro.product.device"),
                "cpu_mask": self.settings.cpu_mask,
                "sample_kind": {runtime: kind for runtime, kind in self.SAMPLE_KIND.items()
                                if runtime in self.settings.benchmark_binaries},
            },
        )

    def _binary_versions(self) -> dict[str, str]:
        """Runtime -> ``<binary> sha256:<12 hex>`` (binaries print no version; the hash identifies the build)."""
        paths = self.settings.benchmark_binaries
        digests = self.files.hashes(list(paths.values())) if paths else {}
        return {runtime: f"{Path(path).name} sha256:{digests[path][:12]}" if path in digests else f"{path} missing"
                for runtime, path in paths.items()}

    # ------------------------------------------------------------ preparing
    def _binary(self, runtime: str) -> tuple[str, str]:
        """The benchmark binary of ``runtime`` on the phone and its sha256 when first checked this session."""
        if runtime in self._checked_binaries:
            return self._checked_binaries[runtime]
        name = self.settings.name
        if runtime not in _TOOL_OF_RUNTIME:
            raise ArtifactRejected(f"device {name!r}: runtime {runtime!r} cannot run on an Android phone; list "
                                   "torchscript, tflite or executorch in the device's runtimes")
        path = self.settings.benchmark_binaries.get(runtime)
        tool = _TOOL_OF_RUNTIME[runtime]
        if not path:
            raise BenchmarkBinaryMissing(
                f"device {name!r}: adb.benchmark_binaries has no entry for {runtime}; add the path of "
                f"{tool} on the phone, e.g. /data/local/tmp/{tool}")
        executable = self.shell(f"test -x {shlex.quote(path)}").status == 0
        digest = self.files.hashes([path]).get(path) if executable else None
        if digest is None:
            raise BenchmarkBinaryMissing(
                f"device {name!r}: benchmark binary for {runtime} not found, not executable or not readable on the "
                f"phone: {path}; push it: `adb push {tool} {path} && adb shell chmod 755 {path}`")
        self._checked_binaries[runtime] = (path, digest)
        return path, digest

    def prepare(self, artifact: Artifact) -> None:
        """Push the artifact into the campaign's private folder (hash-checked) and check its binary loads it once."""
        if artifact.key() in self._remote:
            return
        self._binary(artifact.runtime)
        if artifact.path is None or not Path(artifact.path).is_file():
            raise ArtifactRejected(f"device {self.settings.name!r}: artifact {artifact.arch} ({artifact.runtime}) "
                                   f"has no built file (path={artifact.path!r}); build it with farm.build first")
        local = Path(artifact.path)
        digest = file_sha256(local)
        if artifact.sha256 and artifact.sha256 != digest:
            raise ArtifactRejected(f"device {self.settings.name!r}: {local} has sha256 {digest}, but the build "
                                   f"recorded {artifact.sha256}; rebuild it with farm.build")
        remote = self.files.push(local, digest, f"{digest[:16]}{_SUFFIX[artifact.runtime]}")
        self._remote[artifact.key()] = (remote, digest)
        try:
            self._time(artifact, warmup=0, runs=1)  # the binary must load and run it once
        except AgentError:
            del self._remote[artifact.key()]
            raise

    # ------------------------------------------------------------ running
    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        """Cool down, then run ``schedule`` burst by burst; per artifact, its samples in ms."""
        for artifact in artifacts:
            self.prepare(artifact)
        self.last_run = {"cpu_mask": self.settings.cpu_mask, "invocations": 0}
        self._cool_down()
        self._screen_off_once()
        self.last_run["temperatures_start_c"] = self.temperatures()
        samples: list[list[float]] = [[] for _ in artifacts]
        for burst in schedule:
            samples[burst.index].extend(self._time(artifacts[burst.index], burst.warmup, burst.runs))
        self.last_run["temperatures_end_c"] = self.temperatures()
        return samples

    def _cool_down(self) -> None:
        settings = self.settings
        if settings.cooldown_s > 0:
            self.sleep(settings.cooldown_s)
        if settings.max_temperature_c is None:
            return
        waited, hottest_c = 0.0, self.temperature_c()
        while hottest_c is not None and hottest_c > settings.max_temperature_c and waited < settings.cooldown_timeout_s:
            self.sleep(settings.cooldown_poll_s)
            waited += settings.cooldown_poll_s
            hottest_c = self.temperature_c()
        timed_out = hottest_c is not None and hottest_c > settings.max_temperature_c
        self.last_run.update(cooldown_waited_s=waited, cooldown_timed_out=timed_out,
                             temperature_after_cooldown_c=hottest_c)
        if timed_out:
            logger.warning("device %s: still %.1f C after %.0f s of cool-down (limit %.1f C); measuring anyway",
                           settings.name, hottest_c, waited, settings.max_temperature_c)

    def _screen_off_once(self) -> None:
        if self.settings.screen_off and not self._screen_done:
            self.shell("input keyevent KEYCODE_SLEEP")
            self._screen_done = True
        self.last_run["screen_off"] = self._screen_done

    def _time(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        """One burst: ``warmup`` untimed and ``runs`` timed runs; samples in ms (see SAMPLE_KIND)."""
        if artifact.runtime == "torchscript":
            result = self._invoke(artifact, speed_benchmark_torch.parse, [
                f"--input_dims={artifact.batch_size},3,{artifact.input_size},{artifact.input_size}",
                "--input_type=float", f"--warmup={warmup}", f"--iter={runs}", "--report_pep=true"])
            if result.per_iteration_us:
                if len(result.per_iteration_us) != runs:
                    raise RunFailed(f"device {self.settings.name!r}: speed_benchmark_torch printed "
                                    f"{len(result.per_iteration_us)} PyTorchObserver lines for --iter={runs}")
                return result.per_iteration_ms
            # A build without --report_pep support: its summary is one batch mean.
            return [result.summary_us_per_iter / 1000.0]
        batches = [min(self.settings.tflite_batch_runs, runs - start)
                   for start in range(0, runs, self.settings.tflite_batch_runs)]
        if artifact.runtime == "tflite":
            common = [f"--num_threads={self.settings.threads}", f"--warmup_runs={warmup}",
                      f"--use_xnnpack={'true' if self.settings.use_xnnpack else 'false'}",
                      "--min_secs=0", "--warmup_min_secs=0"]
            return [self._invoke(artifact, tflite_benchmark.parse, [f"--num_runs={size}", *common]).inference_avg_ms
                    for size in batches]
        if warmup > 0:
            self._invoke(artifact, executor_runner.parse, [f"--num_executions={warmup}"])
        return [self._invoke(artifact, executor_runner.parse, [f"--num_executions={size}"]).per_run_ms
                for size in batches]

    def _invoke(self, artifact: Artifact, parse: Callable[..., Any], flags: list[str]) -> Any:
        """Check the binary's and the artifact's sha256 on the phone, then run the binary once, pinned; parse."""
        binary, binary_digest = self._binary(artifact.runtime)
        remote, digest = self._remote[artifact.key()]
        tool = _TOOL_OF_RUNTIME[artifact.runtime]
        try:
            self.files.verify({binary: binary_digest, remote: digest}, purpose=f"to run {tool} on {artifact.arch}")
        except RemoteFileMismatch:
            self._remote.pop(artifact.key(), None)
            self._checked_binaries.pop(artifact.runtime, None)
            raise
        model_flag = {"torchscript": "--model", "tflite": "--graph", "executorch": "--model_path"}[artifact.runtime]
        argv = [binary, f"{model_flag}={remote}", *flags]
        pin = ["taskset", self.settings.cpu_mask] if self.settings.cpu_mask else []
        command = f"cd {shlex.quote(self.files.folder)} && {shlex.join(pin + argv)}"
        result = self.shell(command, what=f"the {tool} run of {artifact.arch}")
        self.last_run["invocations"] = self.last_run.get("invocations", 0) + 1
        if result.status in (126, 127):
            self._checked_binaries.pop(artifact.runtime, None)
            raise BenchmarkBinaryMissing(f"device {self.settings.name!r}: {binary} cannot be executed "
                                         f"(exit status {result.status}): {result.output.strip()[:200]}")
        try:
            parsed = parse(result.output, source=f"device {self.settings.name!r} {tool} on {artifact.arch}")
        except OutputError as error:
            raise error.agent_error() from None
        if result.status != 0:
            raise RunFailed(f"device {self.settings.name!r}: {tool} on {artifact.arch} exited with status "
                            f"{result.status} after printing its timings")
        return parsed

    # ------------------------------------------------------------ closing
    def close(self) -> None:
        """Remove this campaign's files from the phone (unless kept) and disconnect. Safe to call twice."""
        if self.connection.connected and self.files.ready and not self.settings.keep_remote_files:
            try:
                self.files.remove_folder()
            except AgentError as error:
                logger.info("device %s: could not clean up %s: %s", self.settings.name, self.files.folder, error)
        self._remote.clear()
        self.connection.close()
