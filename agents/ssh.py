"""The SSH agent: Jetson, Raspberry Pi or any Linux host reached with paramiko.

The agent copies :mod:`agents.runner` and the built artifacts by SFTP into a
per-campaign directory on the device (``<workdir>/<campaign_id>``), and runs
the runner there under ``taskset`` with the inventory's affinity and thread
count. A whole schedule (the interleaved protocol's rounds of bursts) runs in
one invocation, so nothing but the result crosses the network while timing.

The parts live next door: :mod:`agents.ssh_connection` (settings, host-key policy,
authentication), :mod:`agents.remote_process` (a command's bounded stdout/stderr),
:mod:`agents.ssh_files` (private workdir, atomic upload, hash-checked runner start),
:mod:`agents.ssh_cooldown` (hygiene settings and the wait until the board is cool),
:mod:`agents.runner_result` (the runner's result checked against its schema, and what
a runner that ended without one means) and :mod:`agents.ssh_facts` (its facts as
:class:`~agents.base.DeviceFacts`). This module is the agent, and re-exports their public names.

Security:

- Host keys are checked against ``known_hosts`` (:mod:`agents.ssh_connection`);
  authentication is by key file or ssh-agent only.
- Every word of a remote command goes through ``shlex.quote``: inventory
  values, paths and campaign ids never reach the remote shell unquoted; a
  campaign id must match :data:`SAFE_NAME` whole (``c1\\n`` is refused).
- The workdir must be private to the login user, uploads go to a fresh
  exclusive ``.part`` file, and the runner and every artifact are checked by
  sha256 on the device right before use.
- What the board answers is untrusted: a result line is at most
  :data:`agents.runner_result.MAX_LINE_CHARS` long and checked against the
  runner's schema; non-finite or impossible temperatures never decide the
  cool-down (:func:`agents.telemetry.hottest`).

Errors: an unreachable host or a dropped connection is
:class:`~agents.base.DeviceUnavailable` (retryable; the agent reconnects on
its next call, and retries an interrupted call once on a fresh connection),
a refused key is :class:`SSHAuthFailed` (a ``DeviceUnavailable`` that is not
retryable), a file the device cannot load is :class:`~agents.base.ArtifactRejected`,
a device that lacks what the inventory asks for is :class:`DeviceSetupError`
(permanent), and output the host cannot parse, too long or not matching the
schema, is :class:`~agents.base.RunFailed` (retryable; the runner is restarted).

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
import shlex
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
from agents.remote_process import DeadlinePassed, LineTooLong, RemoteProcess
from agents.runner_result import (
    MAX_LINE_CHARS,
    DeviceSetupError,
    MalformedResult,
    RunnerDied,
    parse_runner_line,
    runner_exit_error,
)
from agents.ssh_connection import (
    HostKeyError,
    HostKeyMismatch,
    SSHAuthFailed,
    SSHSettings,
    UnknownHostKey,
    connect,
    is_active,
)
from agents.ssh_cooldown import CooldownRecord, HygieneSettings, wait_until_cool
from agents.ssh_facts import board_tool_readings, facts_from_runner
from agents.ssh_files import PRIVATE_WORKDIR_CHECK, RUNNER_BOOT, file_sha256, upload_atomically
from agents.telemetry import from_cores, hottest

if TYPE_CHECKING:
    from farm.inventory import Device

logger = logging.getLogger(__name__)

RUNNER_SOURCE = Path(__file__).with_name("runner.py")

#: What a campaign id (a remote directory name) may be, matched against the whole id.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_T = TypeVar("_T")


@dataclass
class RunRecord:
    """What the device said around the last :meth:`SSHAgent.run`, for the measurement rows."""

    temperature_start_c: float | None = None
    temperature_end_c: float | None = None
    temperatures_dropped: tuple[str, ...] = ()
    """Zone readings left out of the two above as not finite or impossible (``zone=nan``)."""
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
        if not SAFE_NAME.fullmatch(campaign_id):
            raise ValueError(
                f"campaign id {campaign_id!r}: use letters, digits, '.', '_' and '-' only (at most 255, no newline)"
            )
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
        self._runner: RemoteProcess | None = None
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
        taskset = self._with_reconnect(lambda: self._exec("command -v taskset", self.settings.command_timeout_s))
        return facts_from_runner(result["facts"], result["runtime_versions"], taskset=taskset[0] == 0)

    def prepare(self, artifact: Artifact) -> None:
        """Upload ``artifact`` and check on the device that it loads and runs once; :class:`ArtifactRejected` if not."""
        spec = self._with_reconnect(lambda: self._upload_artifact(artifact))
        job = {"mode": "check", "artifacts": [spec], "threads": self.threads}
        try:
            result = self._with_reconnect(lambda: self._invoke(job, self.settings.check_timeout_s))
        except RunnerDied as error:
            raise ArtifactRejected(f"device {self.name!r}: {_describe(artifact)} crashed the runtime: {error.message}") from error
        (error,) = result["errors"]  # the schema checked: one entry per artifact of the job
        if error is not None:
            raise ArtifactRejected(f"device {self.name!r} rejected {_describe(artifact)}: {_said(error['message'])}")

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

        result = self._with_reconnect(attempt)  # checked against the run schema: one entry per artifact
        samples, errors = result["samples_ms"], result["errors"]
        start, end = result["temperatures_start_c"], result["temperatures_end_c"]
        self.last_run = RunRecord(
            temperature_start_c=hottest(start),
            temperature_end_c=hottest(end),
            temperatures_dropped=from_cores({}, {}, start).dropped + from_cores({}, {}, end).dropped,
            cooldown=self.last_cooldown,
            wall_s=float(result.get("wall_s", 0.0)),
            threads=int(result.get("threads", self.threads)),
            affinity=result["facts"].get("affinity"),
            runtime_versions=result["runtime_versions"],
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
                where = f"device {self.name!r}, {_describe(artifact)}, {_said(error['stage'], 40)}"
                failure = kind(f"{where}: {_said(error['message'])}")
                failure.partial_samples = [[float(v) for v in runs] for runs in samples]  # type: ignore[attr-defined]
                raise failure
        return [[float(v) for v in runs] for runs in samples]

    def close(self) -> None:
        """Remove the campaign directory on the device and disconnect. Safe to call twice."""
        if self._closed:
            return
        try:
            self._stop_runner()  # closing its stdin ends it
            if self._dir_created and self._client is not None and is_active(self._client):
                self._exec(f"rm -rf -- {shlex.quote(self.remote_dir)}", self.settings.command_timeout_s)
        except AgentError as error:
            logger.warning("device %s: could not remove %s: %s", self.name, self.remote_dir, error)
        finally:
            self._closed = True
            self._disconnect()

    # ---------------------------------------------------------------- thermal
    def temperature_c(self) -> float | None:
        """The hottest sane thermal zone of the device now; ``None`` where it exposes none that is sane.

        A zone reading NaN, -273 C or 9999 C is ignored: it never hides a hot one (the cool-down relies on this).
        """
        result = self._with_reconnect(lambda: self._invoke({"mode": "temperatures"}, self.settings.command_timeout_s))
        return hottest(result["thermal_c"])

    def cool_down(self) -> CooldownRecord:
        """Sleep ``cooldown_s``, then wait until the device is under ``max_temperature_c`` (:mod:`agents.ssh_cooldown`).

        Gives up after ``cooldown_timeout_s`` with :class:`DeviceUnavailable` (retryable: the
        farm tries the job again later); :attr:`last_cooldown` records what happened either way.
        """
        record = self.last_cooldown = CooldownRecord(limit_c=self.hygiene.max_temperature_c)
        wait_until_cool(self.hygiene, record, self._read_temperature, sleep=self._sleep, clock=self._clock, device=self.name)
        return record

    # ------------------------------------------------------------- connection
    def _connection(self) -> paramiko.SSHClient:
        if self._closed:
            raise DeviceUnavailable(f"device {self.name!r}: the agent is closed")
        if self._client is not None and is_active(self._client):
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

    def _start(self, command: str) -> RemoteProcess:
        client = self._connection()
        transport = client.get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.settings.connect_timeout_s)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self._dropped(error) from error
        return RemoteProcess(channel, transport, self._clock, self._dropped, max_line_bytes=MAX_LINE_CHARS)

    def _dropped(self, error: BaseException | None = None) -> DeviceUnavailable:
        why = f" ({type(error).__name__}: {error})" if error is not None else ""
        return DeviceUnavailable(f"device {self.name!r}: the connection to {self.settings.address} dropped{why}")

    def _sftp_put(self, local: str | os.PathLike[str], remote: str) -> None:
        """Upload to ``remote`` atomically (:func:`agents.ssh_files.upload_atomically`)."""
        upload_atomically(self._connection(), local, remote, label=f"device {self.name!r} ({self.settings.address})")

    # -------------------------------------------------------------- remote work
    def _ensure_dir(self) -> None:
        if self._dir_created:
            return
        workdir, campaign = self.remote_dir.rsplit("/", 1)
        words = [*shlex.split(self.settings.python), "-c", PRIVATE_WORKDIR_CHECK, workdir, campaign]
        status, _, err = self._exec(" ".join(shlex.quote(word) for word in words), self.settings.command_timeout_s)
        if status in (126, 127):
            raise runner_exit_error(self.name, status, err.strip(), self.settings.python, starting=True)
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
        digest = artifact.sha256 or file_sha256(artifact.path)
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

    def _runner_process(self) -> RemoteProcess:
        """The long-lived runner on the device (``runner.py --serve``), started on first use."""
        if self._runner is not None and self._runner.alive():
            return self._runner
        self._stop_runner()
        runner = self._ensure_runner()
        self._reap_stale_runners(runner)
        process = self._start(self._command(runner))
        try:
            greeting = process.read_line(self._clock() + self.settings.command_timeout_s + 60)
            if greeting is None:
                status = process.wait(self._clock() + self.settings.command_timeout_s)
                raise runner_exit_error(self.name, status, process.stderr_tail(), self.settings.python, starting=True)
            hello = parse_runner_line(greeting, device=self.name, mode="hello")
        except (DeadlinePassed, LineTooLong) as error:
            process.close()
            raise RunFailed(f"device {self.name!r}: the runner's greeting: {error.message}") from error
        except AgentError:
            process.close()
            raise
        process.pid = hello.get("pid") or None
        self._runner = process
        return process

    def _reap_stale_runners(self, runner: str) -> None:
        """Stop runners a dropped connection left behind, so they do not share the CPU with the next job.

        A PID is signalled only while its command line still names this campaign's runner.
        """
        while self._stale_runner_pids:
            pid = int(self._stale_runner_pids.pop())
            if self._signal_runner(pid, runner):
                logger.warning("device %s: stopped runner %d, left running by a dropped connection", self.name, pid)

    def _stop_runner(self, kill: bool = False) -> None:
        process, self._runner = self._runner, None
        if process is None:
            return
        if kill and process.pid and self._runner_remote is not None:
            try:
                self._signal_runner(process.pid, self._runner_remote)
            except AgentError as error:
                logger.warning("device %s: could not stop runner %s: %s", self.name, process.pid, error)
        process.close()

    def _signal_runner(self, pid: int, runner: str) -> bool:
        """SIGTERM ``pid`` only while its command line still names ``runner`` (a PID the board reported is
        untrusted, and may have been reused); whether it was signalled."""
        name = shlex.quote(Path(runner).name)
        command = f"grep -qF -- {name} /proc/{int(pid)}/cmdline 2>/dev/null && kill -TERM {int(pid)} && echo stopped; true"
        return "stopped" in self._exec(command, self.settings.command_timeout_s)[1]

    def _invoke(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``job`` to the runner; its result, checked against the schema of the job's mode.

        Raises :class:`RunFailed` (retryable) for no answer in time, a line longer than any result,
        or a result that is not JSON or does not match the schema: the runner is stopped then, so
        a retry starts a fresh, hash-checked one. :class:`RunnerDied` / :class:`DeviceSetupError`
        for a runner that ended without answering.
        """
        mode = job["mode"]
        process = self._runner_process()
        process.send_line(json.dumps(job).encode())
        try:
            line = process.read_line(self._clock() + timeout_s)
            if line is not None:
                return parse_runner_line(line, device=self.name, mode=mode, artifacts=len(job.get("artifacts", ())))
        except DeadlinePassed as error:
            self._stop_runner(kill=True)
            raise RunFailed(f"device {self.name!r}: no answer to a {mode} job within {timeout_s:.0f} s") from error
        except LineTooLong as error:
            self._stop_runner(kill=True)
            raise MalformedResult(f"device {self.name!r}: the answer to a {mode} job: {error.message}") from error
        except MalformedResult:
            self._stop_runner(kill=True)
            raise
        status = process.wait(self._clock() + self.settings.command_timeout_s)
        self._runner = None
        raise runner_exit_error(self.name, status, process.stderr_tail(), self.settings.python, mode=mode)


def _said(text: str, limit: int = 500) -> str:
    """What the device said, as part of a one-line message: newlines escaped, at most ``limit`` characters."""
    shown = text[:limit].replace("\r", "\\r").replace("\n", "\\n")
    return shown + ("..." if len(text) > limit else "")


def _describe(artifact: Artifact) -> str:
    return f"{artifact.search_space} arch {artifact.arch!r} ({artifact.runtime}, batch {artifact.batch_size}, input {artifact.input_size})"


__all__: Iterable[str] = [
    "CooldownRecord",
    "DeviceSetupError",
    "HostKeyError",
    "HostKeyMismatch",
    "HygieneSettings",
    "MalformedResult",
    "PRIVATE_WORKDIR_CHECK",
    "RUNNER_BOOT",
    "RUNNER_SOURCE",
    "RunRecord",
    "RunnerDied",
    "SAFE_NAME",
    "SSHAgent",
    "SSHAuthFailed",
    "SSHSettings",
    "UnknownHostKey",
    "board_tool_readings",
    "connect",
    "facts_from_runner",
    "parse_runner_line",
]
