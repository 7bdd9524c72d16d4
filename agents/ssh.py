"""The SSH agent: Jetson, Raspberry Pi or any Linux host reached with paramiko.

The agent copies :mod:`agents.runner` and the built artifacts by SFTP into a
per-campaign directory on the device (``<workdir>/<campaign_id>``), and runs
the runner there under ``taskset`` with the inventory's affinity and thread
count. A whole schedule (the interleaved protocol's rounds of bursts) runs in
one invocation, so nothing but the result crosses the network while timing.

Security:

- Host keys are checked against ``known_hosts``. An unknown host is refused
  (:class:`UnknownHostKey`) unless the inventory sets ``trust_on_first_use``,
  and then its key is appended to ``known_hosts``; a changed key is always
  refused (:class:`HostKeyMismatch`). Both are permanent errors.
- Authentication is by key file or ssh-agent only; no password is ever sent.
- Every word of a remote command goes through ``shlex.quote``: inventory
  values, paths and campaign ids never reach the remote shell unquoted.

Errors: an unreachable host or a dropped connection is
:class:`~agents.base.DeviceUnavailable` (retryable; the agent reconnects on
its next call, and retries an interrupted call once on a fresh connection),
a refused key is :class:`SSHAuthFailed` (a ``DeviceUnavailable`` that is not
retryable: retrying a wrong key only trips fail2ban), a file the device
cannot load is :class:`~agents.base.ArtifactRejected`, and output the host
cannot parse is :class:`~agents.base.RunFailed`.

Example (not run here: it needs a reachable host):
    >>> settings = SSHSettings(host="pi4.lab", user="bench", key_file="~/.ssh/latfarm")  # doctest: +SKIP
    >>> with SSHAgent(settings, campaign_id="c1") as agent:  # doctest: +SKIP
    ...     print(agent.probe().cpu_model)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeVar

import paramiko

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

if TYPE_CHECKING:
    from farm.inventory import Device

logger = logging.getLogger(__name__)

RUNNER_SOURCE = Path(__file__).with_name("runner.py")

#: Run by the device's python before anything is uploaded: the workdir must be a private folder of the login user
#: (not a symlink, owned by them, not group/other-writable), else anyone on a shared board could plant files in it.
PRIVATE_WORKDIR_CHECK = """\
import os, stat, sys
workdir, campaign = sys.argv[1], sys.argv[2]
os.umask(0o077)
os.makedirs(workdir, mode=0o700, exist_ok=True)
info = os.lstat(workdir)
fix = "; remove it or set ssh.workdir to a private folder of the login user (mode 0700)"
if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
    sys.exit("workdir " + workdir + " is a symlink or not a directory" + fix)
if info.st_uid != os.getuid():
    sys.exit("workdir " + workdir + " is owned by uid " + str(info.st_uid) + ", not the login user" + fix)
if info.st_mode & 0o022:
    sys.exit("workdir " + workdir + " is group- or other-writable (mode " + oct(info.st_mode & 0o777) + ")" + fix)
os.makedirs(os.path.join(workdir, campaign, "artifacts"), mode=0o700, exist_ok=True)
"""

#: Starts the runner only if its bytes hash to the expected sha256, and runs exactly the bytes it hashed.
RUNNER_BOOT = """\
import hashlib, sys
path, expected = sys.argv[1], sys.argv[2]
with open(path, "rb") as handle:
    source = handle.read()
if hashlib.sha256(source).hexdigest() != expected:
    sys.exit("latfarm: " + path + " does not match its sha256; refusing to run it")
sys.argv = [path] + sys.argv[3:]
namespace = sys.modules["__main__"].__dict__
namespace["__file__"] = path
exec(compile(source, path, "exec"), namespace)
"""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_POLL_S = 0.02
_T = TypeVar("_T")


class HostKeyError(AgentError):
    """The device's host key cannot be trusted. Permanent: a person must look at it."""

    retryable = False


class HostKeyMismatch(HostKeyError):
    """The device presented a different host key than ``known_hosts`` holds (re-imaged, or an impostor)."""


class UnknownHostKey(HostKeyError):
    """The device is not in ``known_hosts`` and the inventory does not opt into trust-on-first-use."""


class SSHAuthFailed(DeviceUnavailable):
    """The device refused the key. Not retryable: the inventory or authorized_keys must change."""

    retryable = False


class DeviceSetupError(AgentError):
    """The device lacks something the inventory asks for (its ``python``, ``taskset``). Permanent."""

    retryable = False


@dataclass(frozen=True)
class SSHSettings:
    """How to reach the device; mirrors the inventory's ``ssh:`` block plus timeouts.

    ``python`` is the interpreter on the device (a path or a command; split with
    ``shlex.split`` and every word quoted). ``workdir`` holds one directory per campaign
    (``~/`` at its start means the login directory). ``check_timeout_s`` bounds loading
    and running a model once in :meth:`SSHAgent.prepare` (the first one also imports the runtime).
    """

    host: str
    user: str
    port: int = 22
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    trust_on_first_use: bool = False
    python: str = "python3"
    workdir: str = "~/.cache/latfarm"
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0
    check_timeout_s: float = 300.0
    run_timeout_s: float = 3600.0
    keepalive_s: int = 15
    reconnect_attempts: int = 1

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class HygieneSettings:
    """CPU pinning and thermal cool-down; mirrors the inventory's ``hygiene:`` block."""

    affinity: tuple[int, ...] | None = None
    cooldown_s: float = 0.0
    max_temperature_c: float | None = None
    cooldown_timeout_s: float = 300.0
    poll_s: float = 5.0


@dataclass
class CooldownRecord:
    """What the last cool-down did: temperatures before and after, time waited, whether it gave up."""

    waited_s: float = 0.0
    start_c: float | None = None
    end_c: float | None = None
    limit_c: float | None = None
    timed_out: bool = False


@dataclass
class RunRecord:
    """What the device said around the last :meth:`SSHAgent.run`, for the measurement rows."""

    temperature_start_c: float | None = None
    temperature_end_c: float | None = None
    cooldown: CooldownRecord = field(default_factory=CooldownRecord)
    wall_s: float = 0.0
    threads: int = 1
    affinity: list[int] | None = None
    runtime_versions: dict[str, str] = field(default_factory=dict)


class SSHAgent(Agent):
    """A Linux board over SSH; see the module docstring.

    Args:
        settings: how to reach it.
        campaign_id: names the remote directory (``<workdir>/<campaign_id>``), removed on :meth:`close`.
        threads: inference threads (``torch.set_num_threads`` / TFLite ``num_threads``, and ``OMP_NUM_THREADS``).
        hygiene: affinity mask for ``taskset`` and the cool-down rule.
        name: the inventory name, used in messages.
        cuda_index: run TorchScript models on this GPU of the device (a Jetson), timed with synchronisation.
        temperature_reader: injectable; defaults to reading the device's thermal zones through the runner.
        sleep, clock: injectable for tests of the cool-down loop.
    """

    def __init__(
        self,
        settings: SSHSettings,
        *,
        campaign_id: str,
        threads: int = 1,
        hygiene: HygieneSettings | None = None,
        name: str | None = None,
        cuda_index: int | None = None,
        temperature_reader: Callable[[], float | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _SAFE_NAME.match(campaign_id):
            raise ValueError(f"campaign id {campaign_id!r}: use letters, digits, '.', '_' and '-' only")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.settings = settings
        self.campaign_id = campaign_id
        self.threads = threads
        self.hygiene = hygiene or HygieneSettings()
        self.name = name or settings.host
        self.cuda_index = cuda_index
        # "~/x" means x in the login directory, where both SFTP and the remote shell start (no expansion needed).
        workdir = settings.workdir[2:] if settings.workdir.startswith("~/") else settings.workdir
        self.remote_dir = f"{workdir.rstrip('/') or '.'}/{campaign_id}"
        self.last_run = RunRecord()
        self.last_cooldown = CooldownRecord()
        self._read_temperature = temperature_reader or self.temperature_c
        self._sleep = sleep
        self._clock = clock
        self._client: paramiko.SSHClient | None = None
        self._remote_paths: dict[str, str] = {}  # artifact sha256 -> remote path
        self._runner_remote: str | None = None
        self._runner_sha256 = ""
        self._runner: _RemoteProcess | None = None
        self._stale_runner_pids: list[int] = []
        self._dir_created = False
        self._closed = False

    @classmethod
    def from_device(cls, device: "Device", *, campaign_id: str) -> "SSHAgent":
        """The agent for an inventory device of kind ``ssh``."""
        if device.ssh is None:
            raise ValueError(f"device {device.name!r} has kind {device.kind!r} and no ssh: block")
        given = device.ssh.model_dump()
        settings = SSHSettings(**{f.name: given[f.name] for f in fields(SSHSettings) if f.name in given})
        hygiene = device.hygiene
        return cls(
            settings,
            campaign_id=campaign_id,
            threads=device.threads,
            hygiene=HygieneSettings(
                affinity=tuple(hygiene.affinity) if hygiene.affinity else None,
                cooldown_s=hygiene.cooldown_s,
                max_temperature_c=hygiene.max_temperature_c,
                cooldown_timeout_s=hygiene.cooldown_timeout_s,
            ),
            name=device.name,
            cuda_index=device.cuda.index if device.cuda is not None else None,
        )

    # ------------------------------------------------------------------ Agent
    def probe(self) -> DeviceFacts:
        """CPU model, cores, governors, frequencies, temperatures, memory and runtime versions of the device."""
        result = self._with_reconnect(lambda: self._invoke({"mode": "probe"}, self.settings.command_timeout_s))
        facts = result.get("facts", {})
        taskset = self._with_reconnect(lambda: self._exec("command -v taskset", self.settings.command_timeout_s))
        return facts_from_runner(facts, result.get("runtime_versions", {}), taskset=taskset[0] == 0)

    def prepare(self, artifact: Artifact) -> None:
        """Upload ``artifact`` and check on the device that it loads and runs once; :class:`ArtifactRejected` if not."""
        spec = self._with_reconnect(lambda: self._upload_artifact(artifact))
        job = {"mode": "check", "artifacts": [spec], "threads": self.threads}
        try:
            result = self._with_reconnect(lambda: self._invoke(job, self.settings.check_timeout_s))
        except RunnerDied as error:
            raise ArtifactRejected(f"device {self.name!r}: {_describe(artifact)} crashed the runtime: {error.message}") from error
        error = result["errors"][0]
        if error is not None:
            raise ArtifactRejected(f"device {self.name!r} rejected {_describe(artifact)}: {error['message']}")

    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        """Run the whole ``schedule`` in one runner invocation on the device; per-artifact timed runs in ms."""
        self.cool_down()

        def attempt() -> dict[str, Any]:
            specs = [self._upload_artifact(artifact) for artifact in artifacts]
            job = {
                "mode": "run",
                "artifacts": specs,
                "schedule": [[burst.index, burst.warmup, burst.runs] for burst in schedule],
                "threads": self.threads,
            }
            return self._invoke(job, self.settings.run_timeout_s)

        result = self._with_reconnect(attempt)
        samples = result.get("samples_ms")
        errors = result.get("errors")
        if not isinstance(samples, list) or len(samples) != len(artifacts) or not isinstance(errors, list):
            raise RunFailed(f"device {self.name!r}: the runner returned {len(samples or [])} sample lists for {len(artifacts)} artifacts")
        self.last_run = RunRecord(
            temperature_start_c=_hottest(result.get("temperatures_start_c")),
            temperature_end_c=_hottest(result.get("temperatures_end_c")),
            cooldown=self.last_cooldown,
            wall_s=float(result.get("wall_s", 0.0)),
            threads=int(result.get("threads", self.threads)),
            affinity=result.get("facts", {}).get("affinity"),
            runtime_versions=result.get("runtime_versions", {}),
        )
        pinned = self.last_run.affinity
        if self.hygiene.affinity and pinned is not None and set(pinned) != set(self.hygiene.affinity):
            logger.warning(
                "device %s: hygiene.affinity asks for cores %s but the runner ran on %s (cores the device lacks?)",
                self.name, list(self.hygiene.affinity), pinned,
            )
        for artifact, error in zip(artifacts, errors):
            if error is not None:
                kind = ArtifactRejected if error.get("kind") == "rejected" else RunFailed
                failure = kind(f"device {self.name!r}, {_describe(artifact)}, {error.get('stage')}: {error.get('message')}")
                failure.partial_samples = [[float(v) for v in runs] for runs in samples]  # type: ignore[attr-defined]
                raise failure
        return [[float(v) for v in runs] for runs in samples]

    def close(self) -> None:
        """Remove the campaign directory on the device and disconnect. Safe to call twice."""
        if self._closed:
            return
        try:
            self._stop_runner()  # closing its stdin ends it
            if self._dir_created and self._client is not None and _is_active(self._client):
                self._exec(f"rm -rf -- {shlex.quote(self.remote_dir)}", self.settings.command_timeout_s)
        except AgentError as error:
            logger.warning("device %s: could not remove %s: %s", self.name, self.remote_dir, error)
        finally:
            self._closed = True
            self._disconnect()

    # ---------------------------------------------------------------- thermal
    def temperature_c(self) -> float | None:
        """The hottest thermal zone of the device now, or ``None`` where it exposes none."""
        result = self._with_reconnect(lambda: self._invoke({"mode": "temperatures"}, self.settings.command_timeout_s))
        return _hottest(result.get("thermal_c"))

    def cool_down(self) -> CooldownRecord:
        """Sleep ``cooldown_s``, then wait until the device is under ``max_temperature_c``.

        Gives up after ``cooldown_timeout_s`` with :class:`DeviceUnavailable` (retryable: the
        farm tries the job again later); :attr:`last_cooldown` records what happened either way.
        """
        hygiene = self.hygiene
        record = CooldownRecord(limit_c=hygiene.max_temperature_c)
        self.last_cooldown = record
        if hygiene.cooldown_s > 0:
            self._sleep(hygiene.cooldown_s)
        if hygiene.max_temperature_c is None:
            return record
        started = self._clock()
        temperature = record.start_c = record.end_c = self._read_temperature()
        while temperature is not None and temperature >= hygiene.max_temperature_c:
            if self._clock() - started >= hygiene.cooldown_timeout_s:
                record.timed_out = True
                record.waited_s = self._clock() - started
                raise DeviceUnavailable(
                    f"device {self.name!r}: still {temperature:.1f} C after {record.waited_s:.0f} s of cool-down "
                    f"(hygiene.max_temperature_c {hygiene.max_temperature_c}); raise cooldown_timeout_s or improve cooling"
                )
            self._sleep(hygiene.poll_s)
            temperature = record.end_c = self._read_temperature()
        record.waited_s = self._clock() - started
        return record

    # ------------------------------------------------------------- connection
    def _connection(self) -> paramiko.SSHClient:
        if self._closed:
            raise DeviceUnavailable(f"device {self.name!r}: the agent is closed")
        if self._client is not None and _is_active(self._client):
            return self._client
        self._disconnect()
        self._client = connect(self.settings, name=self.name)
        return self._client

    def _disconnect(self) -> None:
        if self._runner is not None and self._runner.pid:
            self._stale_runner_pids.append(self._runner.pid)  # it may outlive the connection, still timing
        self._stop_runner()
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _with_reconnect(self, operation: Callable[[], _T]) -> _T:
        """Run ``operation``; after a dropped connection, reconnect and try again (``reconnect_attempts`` times)."""
        attempts = self.settings.reconnect_attempts
        while True:
            try:
                return operation()
            except DeviceUnavailable as error:
                if attempts <= 0 or not error.retryable or self._closed:
                    raise
                attempts -= 1
                logger.warning("device %s: %s; reconnecting", self.name, error.message)
                self._disconnect()

    def _exec(self, command: str, timeout_s: float) -> tuple[int, str, str]:
        """Run ``command`` (already quoted) on the device; (exit status, stdout, stderr)."""
        process = self._start(command)
        process.close_stdin()
        status = process.wait(self._clock() + timeout_s)
        return status, process.stdout.decode(errors="replace"), process.stderr_tail()

    def _start(self, command: str) -> "_RemoteProcess":
        client = self._connection()
        transport = client.get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.settings.connect_timeout_s)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self._dropped(error) from error
        return _RemoteProcess(channel, transport, self._clock, self._dropped)

    def _dropped(self, error: BaseException | None = None) -> DeviceUnavailable:
        why = f" ({type(error).__name__}: {error})" if error is not None else ""
        return DeviceUnavailable(f"device {self.name!r}: the connection to {self.settings.address} dropped{why}")

    def _sftp_put(self, local: str | os.PathLike[str], remote: str) -> None:
        """Upload to ``remote`` atomically: a fresh ``.part`` file created exclusively (never a planted path or
        symlink), then renamed. Never reused by size: what runs is checked by sha256 on the device."""
        client = self._connection()
        try:
            with client.open_sftp() as sftp:
                partial = f"{remote}.{secrets.token_hex(8)}.part"
                with open(local, "rb") as source, sftp.open(partial, "wxb") as target:
                    target.chmod(0o600)
                    target.set_pipelined(True)
                    shutil.copyfileobj(source, target, 1 << 15)
                if sftp.stat(partial).st_size != os.path.getsize(local):
                    raise OSError(f"{partial} is short after upload")
                sftp.posix_rename(partial, remote)
        except (paramiko.SSHException, EOFError, OSError) as error:
            if isinstance(error, (FileNotFoundError, PermissionError)) and _is_active(client):
                raise DeviceSetupError(
                    f"device {self.name!r}: cannot write {remote} ({error}); check ssh.workdir and its permissions"
                ) from error
            raise DeviceUnavailable(
                f"device {self.name!r}: upload to {self.settings.address} failed ({type(error).__name__}: {error})"
            ) from error

    # -------------------------------------------------------------- remote work
    def _ensure_dir(self) -> None:
        if self._dir_created:
            return
        workdir, campaign = self.remote_dir.rsplit("/", 1)
        words = [*shlex.split(self.settings.python), "-c", PRIVATE_WORKDIR_CHECK, workdir, campaign]
        status, _, err = self._exec(" ".join(shlex.quote(word) for word in words), self.settings.command_timeout_s)
        if status in (126, 127):
            raise _runner_exit_error(self.name, status, err.strip(), self.settings.python, starting=True)
        if status != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise DeviceSetupError(f"device {self.name!r}: cannot use {self.remote_dir}: {last}; check ssh.workdir and ssh.python")
        self._dir_created = True

    def _ensure_runner(self) -> str:
        self._ensure_dir()
        if self._runner_remote is None:
            self._runner_sha256 = hashlib.sha256(RUNNER_SOURCE.read_bytes()).hexdigest()
            remote = f"{self.remote_dir}/runner-{self._runner_sha256[:16]}.py"
            self._sftp_put(RUNNER_SOURCE, remote)
            self._runner_remote = remote
        return self._runner_remote

    def _upload_artifact(self, artifact: Artifact) -> dict[str, Any]:
        """Put the artifact's file on the device (once per content hash); the runner's spec for it."""
        if not artifact.path:
            raise ArtifactRejected(
                f"{_describe(artifact)} has no built file; SSH devices run torchscript, tflite or executorch builds"
            )
        if not os.path.isfile(artifact.path):
            raise ArtifactRejected(f"{_describe(artifact)}: the built file {artifact.path} does not exist on the build host")
        self._ensure_dir()
        digest = artifact.sha256 or _sha256(artifact.path)
        remote = self._remote_paths.get(digest)
        if remote is None:
            remote = f"{self.remote_dir}/artifacts/{digest}{Path(artifact.path).suffix}"
            self._sftp_put(artifact.path, remote)
            self._remote_paths[digest] = remote
        return {
            "path": remote,
            "runtime": artifact.runtime,
            "input_shape": [artifact.batch_size, 3, artifact.input_size, artifact.input_size],
            "device": f"cuda:{self.cuda_index}" if self.cuda_index is not None and artifact.runtime == "torchscript" else "cpu",
            "sha256": digest,
        }

    def _command(self, runner: str) -> str:
        """``cd DIR && env OMP_NUM_THREADS=N [taskset -c CORES] PYTHON -c BOOT RUNNER SHA256 --serve``, every word
        quoted; ``BOOT`` (:data:`RUNNER_BOOT`) hashes the runner and runs it only if it is the one uploaded."""
        words = ["env", f"OMP_NUM_THREADS={self.threads}"]
        if self.hygiene.affinity:
            words += ["taskset", "-c", ",".join(str(int(core)) for core in self.hygiene.affinity)]
        words += shlex.split(self.settings.python) + ["-c", RUNNER_BOOT, runner, self._runner_sha256, "--serve"]
        return f"cd {shlex.quote(self.remote_dir)} && " + " ".join(shlex.quote(word) for word in words)

    def _runner_process(self) -> "_RemoteProcess":
        """The long-lived runner on the device (``runner.py --serve``), started on first use."""
        if self._runner is not None and self._runner.alive():
            return self._runner
        self._stop_runner()
        runner = self._ensure_runner()
        self._reap_stale_runners(runner)
        process = self._start(self._command(runner))
        greeting = process.read_line(self._clock() + self.settings.command_timeout_s + 60)
        if greeting is None:
            status = process.wait(self._clock() + self.settings.command_timeout_s)
            raise _runner_exit_error(self.name, status, process.stderr_tail(), self.settings.python, starting=True)
        hello = parse_result_line(greeting, device=self.name)
        process.pid = int(hello.get("pid", 0)) or None
        self._runner = process
        return process

    def _reap_stale_runners(self, runner: str) -> None:
        """Stop runners a dropped connection left behind, so they do not share the CPU with the next job.

        A PID is signalled only while its command line still names this campaign's runner.
        """
        name = shlex.quote(Path(runner).name)
        while self._stale_runner_pids:
            pid = int(self._stale_runner_pids.pop())
            command = f"grep -qF -- {name} /proc/{pid}/cmdline 2>/dev/null && kill -TERM {pid} && echo stopped; true"
            if "stopped" in self._exec(command, self.settings.command_timeout_s)[1]:
                logger.warning("device %s: stopped runner %d, left running by a dropped connection", self.name, pid)

    def _stop_runner(self, kill: bool = False) -> None:
        process, self._runner = self._runner, None
        if process is None:
            return
        if kill and process.pid:
            try:
                self._exec(f"kill -TERM {int(process.pid)}", self.settings.command_timeout_s)
            except AgentError as error:
                logger.warning("device %s: could not stop runner %s: %s", self.name, process.pid, error)
        process.close()

    def _invoke(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``job`` to the runner; its JSON result (``RunFailed`` / ``DeviceSetupError`` otherwise)."""
        process = self._runner_process()
        process.send_line(json.dumps(job).encode())
        try:
            line = process.read_line(self._clock() + timeout_s)
        except RunFailed as error:
            self._stop_runner(kill=True)
            raise RunFailed(f"device {self.name!r}: no answer to a {job.get('mode')} job within {timeout_s:.0f} s") from error
        if line is None:
            status = process.wait(self._clock() + self.settings.command_timeout_s)
            self._runner = None
            raise _runner_exit_error(self.name, status, process.stderr_tail(), self.settings.python, mode=job.get("mode"))
        return parse_result_line(line, device=self.name)


class RunnerDied(RunFailed):
    """The runner process ended mid-job (a runtime crashed it: segfault, abort, out of memory)."""


class _RemoteProcess:
    """A command running on the device: stdout cut into lines, the tail of stderr kept for messages.

    A vanished connection raises what ``dropped`` makes (:class:`DeviceUnavailable`); a
    deadline passed raises :class:`RunFailed`.
    """

    def __init__(
        self,
        channel: paramiko.Channel,
        transport: paramiko.Transport,
        clock: Callable[[], float],
        dropped: Callable[[BaseException | None], DeviceUnavailable],
    ) -> None:
        self.channel = channel
        self.transport = transport
        self.clock = clock
        self.dropped = dropped
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.pid: int | None = None

    def alive(self) -> bool:
        return self.transport.is_active() and not self.channel.closed and not self.channel.exit_status_ready()

    def send_line(self, data: bytes) -> None:
        try:
            self.channel.sendall(data + b"\n")
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error

    def close_stdin(self) -> None:
        try:
            self.channel.shutdown_write()
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error

    def read_line(self, deadline: float) -> str | None:
        """The next stdout line, or ``None`` once the process has exited without one."""
        while b"\n" not in self.stdout:
            if not self._pump(deadline):
                break
        if b"\n" not in self.stdout:
            return None
        line, _, rest = bytes(self.stdout).partition(b"\n")
        self.stdout = bytearray(rest)
        return line.decode(errors="replace")

    def wait(self, deadline: float) -> int:
        """Read everything until the process exits; its exit status."""
        while self._pump(deadline):
            pass
        status = self.channel.recv_exit_status()
        self.channel.close()
        if status == -1:  # the channel closed with no exit status: the connection went away
            raise self.dropped(None)
        return status

    def stderr_tail(self, lines: int = 5) -> str:
        return " | ".join(self.stderr.decode(errors="replace").strip().splitlines()[-lines:])

    def close(self) -> None:
        try:
            self.channel.close()
        except (paramiko.SSHException, EOFError, OSError):
            pass

    def _pump(self, deadline: float) -> bool:
        """Move available output into the buffers; False once the process has exited and all is read."""
        channel = self.channel
        try:
            while True:
                progressed = False
                while channel.recv_ready():
                    self.stdout += channel.recv(1 << 16)
                    progressed = True
                while channel.recv_stderr_ready():
                    self.stderr += channel.recv_stderr(1 << 16)
                    del self.stderr[: max(0, len(self.stderr) - (1 << 16))]
                    progressed = True
                if progressed:
                    return True
                if channel.exit_status_ready():
                    if channel.recv_exit_status() == -1:
                        raise self.dropped(None)
                    return False
                if not self.transport.is_active() or channel.closed:
                    raise self.dropped(None)
                if self.clock() > deadline:
                    raise RunFailed("the device did not answer before the deadline")
                time.sleep(_POLL_S)
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error


# ---------------------------------------------------------------------------- connecting


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(
            f"host {hostname} ({key.get_name()} {key.fingerprint}) is not in {self.known_hosts}; check the fingerprint "
            f"on the device, then add it (ssh-keyscan -p PORT HOST >> {self.known_hosts}) or set ssh.trust_on_first_use"
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host once and append its key to ``known_hosts`` (a changed key is still refused)."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.known_hosts, "a", encoding="utf-8") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        logger.warning("trust on first use: recorded %s %s in %s", hostname, key.fingerprint, self.known_hosts)


def connect(settings: SSHSettings, *, name: str = "") -> paramiko.SSHClient:
    """An authenticated, host-key-verified client; typed :class:`AgentError` subclasses on failure."""
    label = f"device {name or settings.host!r} ({settings.address})"
    known_hosts = Path(settings.known_hosts).expanduser()
    client = paramiko.SSHClient()
    if known_hosts.is_file():
        try:
            client.load_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as error:
            raise HostKeyError(f"{label}: cannot read ssh.known_hosts {known_hosts}: {error}") from error
    policy = _TrustOnFirstUse(known_hosts) if settings.trust_on_first_use else _RefuseUnknown(known_hosts)
    client.set_missing_host_key_policy(policy)
    key_file = str(Path(settings.key_file).expanduser()) if settings.key_file else None
    if key_file and not os.path.isfile(key_file):
        raise SSHAuthFailed(f"{label}: ssh.key_file {key_file} does not exist; fix the path or omit it to use ssh-agent")
    try:
        client.connect(
            settings.host,
            port=settings.port,
            username=settings.user,
            key_filename=key_file,
            allow_agent=key_file is None,
            look_for_keys=False,
            timeout=settings.connect_timeout_s,
            banner_timeout=settings.connect_timeout_s,
            auth_timeout=settings.connect_timeout_s,
        )
    except HostKeyError as error:
        client.close()
        error.message = f"{label}: {error.message}"
        error.args = (error.message,)
        raise
    except paramiko.BadHostKeyException as error:
        client.close()
        raise HostKeyMismatch(
            f"{label}: host key mismatch: the device offers {error.key.get_name()} {error.key.fingerprint} but "
            f"{known_hosts} records {error.expected_key.fingerprint}; if the device was re-imaged, verify and replace "
            "its known_hosts line, otherwise do not connect"
        ) from error
    except paramiko.PasswordRequiredException as error:
        client.close()
        raise SSHAuthFailed(f"{label}: ssh.key_file {key_file} is encrypted; load it into ssh-agent and omit key_file") from error
    except paramiko.AuthenticationException as error:
        client.close()
        how = f"key {key_file}" if key_file else "the keys in ssh-agent"
        raise SSHAuthFailed(f"{label}: authentication failed with {how}; add its public key to the device's authorized_keys") from error
    except TimeoutError as error:  # socket.timeout is an alias
        client.close()
        raise DeviceUnavailable(f"{label}: no answer within {settings.connect_timeout_s:.0f} s") from error
    except (paramiko.SSHException, EOFError, OSError) as error:
        client.close()
        raise DeviceUnavailable(f"{label}: unreachable ({type(error).__name__}: {error})") from error
    transport = client.get_transport()
    if transport is not None and settings.keepalive_s > 0:
        transport.set_keepalive(settings.keepalive_s)
    return client


# ---------------------------------------------------------------------------- parsing


def parse_result_line(line: str, *, device: str) -> dict[str, Any]:
    """One JSON result line of the runner; :class:`RunFailed` where it is not one or says the job failed."""
    try:
        result = json.loads(line)
    except json.JSONDecodeError as error:
        raise RunFailed(f"device {device!r}: the runner's output is not JSON ({error}): {line[:200]!r}") from error
    if not isinstance(result, dict) or "ok" not in result:
        raise RunFailed(f"device {device!r}: the runner's output is not a result object: {line[:200]!r}")
    if not result["ok"]:
        raise RunFailed(f"device {device!r}: the runner failed: {result.get('error', 'no reason given')}")
    return result


def _runner_exit_error(
    device: str, status: int, stderr: str, python: str, *, starting: bool = False, mode: str | None = None
) -> AgentError:
    """The error for a runner that ended without answering."""
    tail = stderr or "no output"
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


def facts_from_runner(facts: dict[str, Any], versions: dict[str, str], *, taskset: bool | None = None) -> DeviceFacts:
    """:class:`DeviceFacts` from the runner's ``facts`` object; raw board-tool output kept in ``extra``."""
    cpufreq = facts.get("cpufreq", {})
    extra: dict[str, Any] = {
        key: facts.get(key) for key in ("board", "machine", "kernel", "online_cores", "affinity", "load_average", "python")
    }
    extra["tools"] = facts.get("tools", {})
    if taskset is not None:
        extra["taskset"] = taskset
    temperatures = dict(facts.get("thermal_c", {}))
    extra.update(board_tool_readings(extra["tools"], temperatures, source=f"{facts.get('hostname') or 'device'} output"))
    return DeviceFacts(
        hostname=facts.get("hostname", ""),
        cpu_model=facts.get("cpu_model", ""),
        cores=len(facts.get("online_cores", [])),
        governor={core: entry["governor"] for core, entry in cpufreq.items() if entry.get("governor")},
        frequencies_khz={
            core: int(entry["cur_freq"]) for core, entry in cpufreq.items() if str(entry.get("cur_freq") or "").isdigit()
        },
        temperatures_c=temperatures,
        free_memory_mb=facts.get("free_memory_mb"),
        runtime_versions=dict(versions),
        extra=extra,
    )


def board_tool_readings(tools: dict[str, Any], temperatures_c: dict[str, float], *, source: str) -> dict[str, Any]:
    """Parse the raw ``vcgencmd`` (Pi) and ``nvpmodel -q`` (Jetson) output the runner captured.

    Returns ``throttled`` (the decoded bit field and its conditions) and ``power_mode``
    ({name, mode_id}); adds the SoC temperature from ``vcgencmd measure_temp`` to
    ``temperatures_c``. Output that does not parse is kept in ``tool_errors``, never fatal.
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


def _hottest(zones: Any) -> float | None:
    return max(zones.values()) if isinstance(zones, dict) and zones else None


def _is_active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


def _describe(artifact: Artifact) -> str:
    return f"{artifact.search_space} arch {artifact.arch!r} ({artifact.runtime}, batch {artifact.batch_size}, input {artifact.input_size})"


def _sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


__all__: Iterable[str] = [
    "CooldownRecord",
    "DeviceSetupError",
    "HostKeyError",
    "HostKeyMismatch",
    "HygieneSettings",
    "RunRecord",
    "SSHAgent",
    "SSHAuthFailed",
    "SSHSettings",
    "UnknownHostKey",
    "connect",
    "board_tool_readings",
    "facts_from_runner",
    "RunnerDied",
    "parse_result_line",
]
