"""The ADB agent: Android phones measured with their on-device benchmark binaries.

Connection: `adb-shell <https://pypi.org/project/adb-shell/>`_ talks the ADB protocol
to ``adbd`` on the phone itself, no ``adb`` server needed: over TCP (``host:5555``,
after ``adb tcpip 5555``) or over USB by ``serial`` when adb-shell's USB extra
(``libusb1``) is installed. Authentication uses the RSA key in ``key_file`` (default
``~/.android/adbkey``, the key the ``adb`` tool creates); the phone must have accepted
it once ("Allow USB debugging", tick "Always allow").

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
:attr:`ADBAgent.last_run`, not fatal); optionally turns the screen off
(``input keyevent KEYCODE_SLEEP``); records temperatures before and after. Every shell
argument is ``shlex.quote``-d.

Errors: unreachable -> :class:`~agents.parsers.adb_errors.DeviceNotFound`, no answer to
the handshake -> :class:`~agents.parsers.adb_errors.DeviceOffline`, key not accepted ->
:class:`~agents.parsers.adb_errors.DeviceUnauthorized`, connection lost mid-run ->
:class:`DeviceOffline` (all retryable :class:`~agents.base.DeviceUnavailable`); a missing
key file or binary -> :class:`ADBConfigError` / :class:`BenchmarkBinaryMissing` (not
retryable); a model the binary refuses -> :class:`~agents.base.ArtifactRejected`.

Example (against the protocol-level adbd simulation of the tests)::

    agent = ADBAgent(ADBSettings(name="pixel8", host="127.0.0.1", port=adbd.port, key_file=key,
                                 benchmark_binaries={"torchscript": "/data/local/tmp/speed_benchmark_torch"}))
    agent.prepare(artifact)
    samples = agent.run([artifact], [Burst(0, warmup=2, runs=10)])
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
import shlex
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from agents.base import (
    Agent,
    AgentError,
    Artifact,
    ArtifactRejected,
    Burst,
    DeviceFacts,
    DeviceUnavailable,
    RunFailed,
)
from agents.parsers import cpuinfo, dumpsys_battery, executor_runner, getprop, governor, thermal
from agents.parsers import speed_benchmark_torch, tflite_benchmark
from agents.parsers.adb_errors import DeviceNotFound, DeviceOffline, DeviceUnauthorized
from agents.parsers.common import OutputError

if TYPE_CHECKING:
    from adb_shell.adb_device import AdbDevice

    from farm.inventory import Device

__all__ = [
    "ADBAgent",
    "ADBConfigError",
    "ADBSettings",
    "BenchmarkBinaryMissing",
    "DeviceNotFound",
    "DeviceOffline",
    "DeviceUnauthorized",
    "ShellResult",
    "affinity_mask",
    "connect_adb_shell",
]

logger = logging.getLogger(__name__)

RC_MARKER = "__latfarm_rc="
_MASK = re.compile(r"^(0x)?[0-9a-fA-F]+$")
_SUFFIX = {"torchscript": ".ptl", "tflite": ".tflite", "executorch": ".pte"}
_TOOL_OF_RUNTIME = {"torchscript": "speed_benchmark_torch", "tflite": "benchmark_model",
                    "executorch": "executor_runner"}


class ADBConfigError(DeviceUnavailable):
    """The farm side is misconfigured for this device (key file, USB support, binary path).

    A :class:`DeviceUnavailable` so the farm stops using the device, but not retryable:
    retrying cannot fix it, a person must.
    """

    retryable = False


class BenchmarkBinaryMissing(ADBConfigError):
    """The benchmark binary for a runtime is not configured, not on the phone, or not executable."""


@dataclass(frozen=True)
class ADBSettings:
    """What the ADB agent needs; :meth:`ADBAgent.from_device` builds it from the inventory."""

    name: str
    host: str | None = None
    port: int = 5555
    serial: str | None = None
    key_file: str = "~/.android/adbkey"
    benchmark_binaries: dict[str, str] = field(default_factory=dict)
    workdir: str = "/data/local/tmp/latfarm"
    campaign_id: str = "adhoc"
    cpu_mask: str | None = None
    screen_off: bool = False
    threads: int = 1
    cooldown_s: float = 0.0
    max_temperature_c: float | None = None
    cooldown_timeout_s: float = 300.0
    cooldown_poll_s: float = 5.0
    tflite_batch_runs: int = 10
    use_xnnpack: bool = True
    connect_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    command_timeout_s: float = 900.0
    keep_remote_files: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.host else f"usb:{self.serial}"

    @property
    def remote_dir(self) -> str:
        return f"{self.workdir.rstrip('/')}/{self.campaign_id}"


@dataclass(frozen=True)
class ShellResult:
    """Combined stdout+stderr of one ``shell:`` command (ADB's v1 shell merges them) and its status."""

    output: str
    status: int


def affinity_mask(cores: Sequence[int]) -> str:
    """The hex ``taskset`` mask of a core list.

    Example:
        >>> affinity_mask([4, 5, 6, 7])
        'f0'
    """
    return format(sum(1 << core for core in set(cores)), "x")


# ---------------------------------------------------------------- connecting
def _load_signer(key_file: str) -> Any:
    """The adb-shell signer for ``key_file``; the public half is derived if ``.pub`` is missing."""
    from adb_shell.auth.keygen import encode_pubkey, get_user_info
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    path = Path(key_file).expanduser()
    if not path.is_file():
        raise ADBConfigError(
            f"adb key file {path} not found: create it with `adb keygen {path}` (or run `adb devices` once, "
            "which writes ~/.android/adbkey), accept it on the phone, or point adb.key_file in inventory.yaml at it")
    public = path.with_name(path.name + ".pub")
    try:
        pub_text = (public.read_text() if public.is_file()
                    else base64.b64encode(encode_pubkey(str(path))).decode() + get_user_info())
        return PythonRSASigner(pub_text, path.read_text())
    except (ValueError, OSError, struct.error) as error:
        raise ADBConfigError(f"adb key file {path} is not a PEM RSA private key ({error}); "
                             f"regenerate it with `adb keygen {path}`") from None


def _tcp_transport(host: str, port: int) -> Any:
    """adb-shell's TCP transport, with TCP_NODELAY, and a closed peer raising instead of reading b'' forever."""
    from adb_shell.transport.tcp_transport import TcpTransport

    class _ClosingAwareTcpTransport(TcpTransport):  # type: ignore[misc]
        def connect(self, transport_timeout_s: float | None) -> None:
            super().connect(transport_timeout_s)
            # adb-shell writes a header and its payload separately; without this, Nagle's
            # algorithm holds the payload for the peer's delayed ACK (~40 ms per command).
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
            data = super().bulk_read(numbytes, transport_timeout_s)
            if numbytes and not data:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return data

    return _ClosingAwareTcpTransport(host, port)


def connect_adb_shell(settings: ADBSettings) -> "AdbDevice":
    """Open an authenticated adb-shell connection; raise the typed error explaining a failure."""
    from adb_shell import adb_device, exceptions

    signer = _load_signer(settings.key_file)
    if settings.host:
        device = adb_device.AdbDevice(_tcp_transport(settings.host, settings.port),
                                      default_transport_timeout_s=settings.connect_timeout_s)
    elif settings.serial:
        if getattr(adb_device, "UsbTransport", None) is None:
            raise ADBConfigError(
                f"device {settings.name!r}: USB needs adb-shell's USB support (`pip install 'adb-shell[usb]'`, "
                "libusb1) and no running `adb` server holding the phone; or use adb over TCP: `adb tcpip 5555`, "
                "then set adb.host in inventory.yaml")
        device = adb_device.AdbDeviceUsb(serial=settings.serial, default_transport_timeout_s=settings.connect_timeout_s)
    else:
        raise ADBConfigError(f"device {settings.name!r}: set adb.host (adb over TCP) or adb.serial (USB)")
    offered_key: list[bool] = []
    try:
        device.connect(rsa_keys=[signer], auth_timeout_s=settings.auth_timeout_s,
                       read_timeout_s=settings.connect_timeout_s, auth_callback=lambda _: offered_key.append(True))
    except (ConnectionRefusedError, socket.gaierror) as error:
        raise DeviceNotFound(f"device {settings.name!r}: nothing answers at {settings.address} ({error}): "
                             "check that the phone is on the network and `adb tcpip 5555` was run") from None
    except (exceptions.TcpTimeoutException, exceptions.AdbTimeoutError, socket.timeout, TimeoutError) as error:
        device.close()
        if offered_key:
            raise DeviceUnauthorized(
                f"device {settings.name!r}: device unauthorized: {settings.address} did not accept the key "
                f"{settings.key_file} within {settings.auth_timeout_s:g} s; tap 'Allow USB debugging' "
                "(tick 'Always allow') on the phone") from None
        raise DeviceOffline(f"device {settings.name!r}: device offline: {settings.address} accepted the "
                            f"connection but adbd did not answer the handshake ({error}); reboot or replug it"
                            ) from None
    except exceptions.UsbDeviceNotFoundError as error:
        raise DeviceNotFound(f"device {settings.name!r}: no USB device with serial {settings.serial} ({error})"
                             ) from None
    except (OSError, exceptions.InvalidResponseError, exceptions.DeviceAuthError) as error:
        device.close()
        raise DeviceOffline(f"device {settings.name!r}: adb handshake with {settings.address} failed: {error}"
                            ) from None
    return device


# ---------------------------------------------------------------- the agent
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
        if settings.cpu_mask is not None and not _MASK.match(settings.cpu_mask):
            raise ADBConfigError(f"device {settings.name!r}: adb.big_core_mask {settings.cpu_mask!r} is not a hex "
                                 "CPU mask; use e.g. 'f0' for cores 4-7")
        self.settings = settings
        self.connector = connector
        self.sleep = sleep
        self._adb: "AdbDevice | None" = None
        self._remote: dict[tuple[Any, ...], str] = {}
        self._checked_binaries: dict[str, str] = {}
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

    # ------------------------------------------------------------ shell
    def _device(self) -> "AdbDevice":
        if self._adb is None:
            self._adb = self.connector(self.settings)
        return self._adb

    def _lost(self, what: str, error: BaseException) -> DeviceOffline:
        self._drop_connection()
        return DeviceOffline(f"device {self.settings.name!r}: adb connection to {self.settings.address} lost "
                             f"during {what} ({type(error).__name__}: {error}); the device was dropped "
                             "(unplugged, Wi-Fi, reboot); the farm retries")

    def _call(self, what: str, action: Callable[["AdbDevice"], Any]) -> Any:
        from adb_shell import exceptions

        device = self._device()
        try:
            return action(device)
        except (exceptions.TcpTimeoutException, exceptions.AdbTimeoutError) as error:
            if isinstance(error, exceptions.AdbTimeoutError) and "did not complete within" not in str(error):
                raise self._lost(what, error) from None
            self._drop_connection()  # the stream may still be open on the phone; start afresh
            raise RunFailed(f"device {self.settings.name!r}: no answer from the phone during {what} within the "
                            f"time limit ({error}): the binary hung or the link died silently") from None
        except (OSError, struct.error,
                exceptions.AdbConnectionError, exceptions.InvalidChecksumError, exceptions.InvalidCommandError,
                exceptions.InvalidResponseError) as error:
            raise self._lost(what, error) from None

    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ShellResult:
        """Run ``command`` (already quoted) in the phone's shell; return its output and exit status."""
        timeout = timeout_s or self.settings.command_timeout_s
        text = self._call(what or f"`{command[:60]}`", lambda device: device.shell(
            f"{command}; echo {RC_MARKER}$?", transport_timeout_s=timeout, read_timeout_s=timeout, timeout_s=timeout))
        body, marker, status = text.rpartition(RC_MARKER)
        if not marker or not status.strip().isdigit():
            raise RunFailed(f"device {self.settings.name!r}: `{command[:80]}` ended without an exit status "
                            "(output cut off)")
        return ShellResult(body, int(status.strip()))

    def _drop_connection(self) -> None:
        device, self._adb = self._adb, None
        if device is not None:
            try:
                device.close()
            except OSError:
                pass

    # ------------------------------------------------------------ facts
    def _read(self, command: str, parse: Callable[..., Any], default: Any) -> Any:
        """Run a read-out command and parse it; a fact the phone does not give is ``default`` (logged)."""
        result = self.shell(command)
        try:
            return parse(result.output, source=f"device {self.settings.name!r} `{command[:40]}`")
        except OutputError as error:
            logger.info("%s", error)
            return default

    def temperatures(self) -> dict[str, float]:
        """Battery and thermal-zone temperatures in °C (``battery``, ``zone:<type>``)."""
        found: dict[str, float] = {}
        battery = self._read("dumpsys battery", dumpsys_battery.parse, None)
        if battery is not None and battery.temperature_c is not None:
            found["battery"] = battery.temperature_c
        zones = self._read(thermal.ZONE_READ_COMMAND, thermal.parse_zone_readings, {})
        found.update({f"zone:{name}": value for name, value in zones.items()})
        return found

    def temperature_c(self) -> float | None:
        """The hottest sensor now (the farm reads this before and after each job)."""
        values = self.temperatures()
        return max(values.values()) if values else None

    def probe(self) -> DeviceFacts:
        """Model, Android version, CPU (from ``/proc/cpuinfo``), cpufreq, temperatures, binaries.

        Facts are informational: one the phone does not give (odd vendor output) stays empty
        rather than failing the probe; only a broken connection raises.
        """
        properties = self._read("getprop", functools.partial(getprop.parse, strict=False), {})
        cpu = self._read("cat /proc/cpuinfo", cpuinfo.parse, cpuinfo.CpuInfo([]))
        online = self._read("cat /sys/devices/system/cpu/online", cpuinfo.parse_online, [])
        cores = len(online) or cpu.cores
        freqs = self._read(governor.CPUFREQ_READ_COMMAND, governor.parse_table, {})
        meminfo = self.shell("cat /proc/meminfo").output
        available = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.MULTILINE)
        temperatures = self.temperatures()
        return DeviceFacts(
            hostname=f"{properties.get('ro.product.model', 'android')} ({self.settings.address})",
            cpu_model=cpu.model,
            cores=cores,
            governor={cpu_name: row.governor for cpu_name, row in freqs.items()},
            frequencies_khz={cpu_name: row.cur_khz for cpu_name, row in freqs.items()},
            temperatures_c=temperatures,
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
        versions: dict[str, str] = {}
        for runtime, path in self.settings.benchmark_binaries.items():
            result = self.shell(f"sha256sum {shlex.quote(path)}")
            digest = result.output.split()[0] if result.status == 0 and result.output.split() else None
            versions[runtime] = f"{Path(path).name} sha256:{digest[:12]}" if digest else f"{path} missing"
        return versions

    # ------------------------------------------------------------ preparing
    def _binary(self, runtime: str) -> str:
        if runtime in self._checked_binaries:
            return self._checked_binaries[runtime]
        name = self.settings.name
        if runtime not in _TOOL_OF_RUNTIME:
            raise ArtifactRejected(f"device {name!r}: runtime {runtime!r} cannot run on an Android phone; list "
                                   "torchscript, tflite or executorch in the device's runtimes")
        path = self.settings.benchmark_binaries.get(runtime)
        if not path:
            raise BenchmarkBinaryMissing(
                f"device {name!r}: adb.benchmark_binaries has no entry for {runtime}; add the path of "
                f"{_TOOL_OF_RUNTIME[runtime]} on the phone, e.g. /data/local/tmp/{_TOOL_OF_RUNTIME[runtime]}")
        if self.shell(f"test -x {shlex.quote(path)}").status != 0:
            raise BenchmarkBinaryMissing(
                f"device {name!r}: benchmark binary for {runtime} not found or not executable on the phone: {path}; "
                f"push it: `adb push {_TOOL_OF_RUNTIME[runtime]} {path} && adb shell chmod 755 {path}`")
        self._checked_binaries[runtime] = path
        return path

    def prepare(self, artifact: Artifact) -> None:
        """Push the artifact to ``<workdir>/<campaign>/`` and check that its binary loads it (one run)."""
        if artifact.key() in self._remote:
            return
        self._binary(artifact.runtime)
        if artifact.path is None or not Path(artifact.path).is_file():
            raise ArtifactRejected(f"device {self.settings.name!r}: artifact {artifact.arch} ({artifact.runtime}) "
                                   f"has no built file (path={artifact.path!r}); build it with farm.build first")
        local = Path(artifact.path)
        digest = artifact.sha256 or hashlib.sha256(local.read_bytes()).hexdigest()
        remote = f"{self.settings.remote_dir}/{digest[:16]}{_SUFFIX[artifact.runtime]}"
        mkdir = self.shell(f"mkdir -p {shlex.quote(self.settings.remote_dir)}")
        if mkdir.status != 0:
            raise DeviceUnavailable(f"device {self.settings.name!r}: cannot create {self.settings.remote_dir}: "
                                    f"{mkdir.output.strip()}")
        size = local.stat().st_size
        _, remote_size, _ = self._call(f"stat {remote}", lambda device: device.stat(remote))
        if remote_size != size:
            self._call(f"push {local.name}", lambda device: device.push(
                str(local), remote, st_mode=0o100644, transport_timeout_s=self.settings.command_timeout_s,
                read_timeout_s=self.settings.command_timeout_s))
            _, remote_size, _ = self._call(f"stat {remote}", lambda device: device.stat(remote))
            if remote_size != size:
                raise RunFailed(f"device {self.settings.name!r}: pushed {size} bytes to {remote}, "
                                f"the phone has {remote_size}")
        self._remote[artifact.key()] = remote
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
        waited, hottest = 0.0, self.temperature_c()
        while hottest is not None and hottest > settings.max_temperature_c and waited < settings.cooldown_timeout_s:
            self.sleep(settings.cooldown_poll_s)
            waited += settings.cooldown_poll_s
            hottest = self.temperature_c()
        timed_out = hottest is not None and hottest > settings.max_temperature_c
        self.last_run.update(cooldown_waited_s=waited, cooldown_timed_out=timed_out,
                             temperature_after_cooldown_c=hottest)
        if timed_out:
            logger.warning("device %s: still %.1f C after %.0f s of cool-down (limit %.1f C); measuring anyway",
                           settings.name, hottest, waited, settings.max_temperature_c)

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
        """Run the runtime's binary on the artifact once, pinned, and parse its output."""
        binary = self._binary(artifact.runtime)
        remote = self._remote[artifact.key()]
        model_flag = {"torchscript": "--model", "tflite": "--graph", "executorch": "--model_path"}[artifact.runtime]
        argv = [binary, f"{model_flag}={remote}", *flags]
        pin = ["taskset", self.settings.cpu_mask] if self.settings.cpu_mask else []
        command = f"cd {shlex.quote(self.settings.remote_dir)} && {shlex.join(pin + argv)}"
        tool = _TOOL_OF_RUNTIME[artifact.runtime]
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
        if self._adb is not None and self._remote and not self.settings.keep_remote_files:
            try:
                self.shell(f"rm -rf {shlex.quote(self.settings.remote_dir)}", timeout_s=self.settings.connect_timeout_s)
            except AgentError as error:
                logger.info("device %s: could not clean up %s: %s", self.settings.name, self.settings.remote_dir, error)
        self._remote.clear()
        self._drop_connection()
