"""A protocol-level adbd *simulation*: the peer the ADB agent tests talk to (no Android here).

What is real and what is simulated:

- **Real**: the ADB transport on a TCP socket on 127.0.0.1 (24-byte headers with
  checksum and magic; CNXN, AUTH, OPEN, OKAY, WRTE, CLSE), the RSA authentication
  (adbd's token is signed by the client with its private key and verified here against
  the client's Android-format public key with PKCS#1 v1.5 / SHA-1, exactly as adbd does),
  the sync service (SEND/DATA/DONE, STAT, RECV, QUIT) writing real files, and POSIX word
  splitting of the shell commands (so an unquoted argument would change what runs).
- **Simulated**: the phone. Shell commands run in a *sandbox*: ``/data/local/tmp`` maps
  to a temp dir, a tiny allowlist of shell built-ins and Android tools is interpreted in
  Python (``echo cat cd mkdir rm mv chmod ls test sha256sum getprop dumpsys taskset input
  sleep``, with the options the agents use: ``mkdir -p -m``, ``mv -f``, ``test -L``), and
  nothing else ever runs on the host. Pushes behave as adbd's do: a file or symlink at the
  target is unlinked, never followed, and the new file is created exclusively. The device facts are real published
  outputs from ``tests/fixtures/android`` (a composite phone: cpuinfo of a Mi 8,
  getprop of a Pixel 8, cpufreq rows of a Pixel 6, battery of a Pixel C with the
  temperature taken from the simulated state, thermal zone names of an Xperia).
- **Stand-in benchmark binaries**: files in the sandbox whose first line is
  ``#!latfarm-simulation stand-in: TOOL``. "Executing" one calls a Python function that
  prints that tool's real output format (taken from the fixtures: ``speed_benchmark_torch``
  with ``--report_pep``, TFLite ``benchmark_model`` v2.20 with ``INFO:`` prefixes,
  percentiles and scientific notation, ExecuTorch ``executor_runner``). The model file
  is checked by its identifier only (zip with ``bytecode.pkl`` for ``.ptl``, ``TFL3``
  for ``.tflite``, ``ET`` for ``.pte``); it is never executed. Latencies are a function
  of the model's bytes (:func:`model_latency_us`) with ±1 % per-run jitter, and every
  printed figure is logged in :attr:`ADBDaemonSimulation.invocations`, so tests can check
  parsing end to end against what the "device" printed.

Scenarios: ``offline`` (accepts TCP, never answers CNXN), unauthorized (the client's key
is not in ``authorized_keys`` and nobody taps "Allow"), a missing binary (mksh's
``inaccessible or not found``, status 127), a rejected model (the tools' failure
output), a device dropped mid-run (``drop_on_invocation``: all sockets closed, the port
closed).

Example (see ``tests/agents/test_adb.py``)::

    with ADBDaemonSimulation(sandbox, fixtures_dir, authorized_keys=[pub]) as adbd:
        AdbDeviceTcp("127.0.0.1", adbd.port).connect(rsa_keys=[signer])
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import random
import shlex
import socket
import stat
import struct
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from agents.parsers.governor import CPUFREQ_READ_COMMAND
from agents.parsers.thermal import ZONE_READ_COMMAND

__all__ = [
    "ADBDaemonSimulation",
    "SimulatedPhone",
    "StandInRun",
    "install_stand_in",
    "model_latency_us",
    "stand_in_artifact_bytes",
]

# ---------------------------------------------------------------- ADB wire format
VERSION = 0x01000000
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
_HEADER = struct.Struct("<6I")
#: Android's RSAPublicKey struct: modulus size in words, n0inv, modulus (LE), rr (LE), exponent.
_ANDROID_PUBKEY = struct.Struct("<II256s256sI")

SANDBOX_ROOT = "/data/local/tmp"
STAND_IN_MARKER = b"#!latfarm-simulation stand-in: "


def _wire(command: bytes) -> int:
    return struct.unpack("<I", command)[0]


def _command(wire: int) -> bytes:
    return struct.pack("<I", wire)


class _Dropped(Exception):
    """The simulated device goes away: every socket is closed."""


class ProtocolViolation(Exception):
    """The client sent something adbd would refuse (bad magic, checksum, unknown command)."""


def android_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """Decode ``adbkey.pub`` (base64 of Android's RSAPublicKey struct, then `` user@host``)."""
    raw = text.decode() if isinstance(text, bytes) else text
    blob = base64.b64decode(raw.strip("\0").split()[0])
    words, _n0inv, modulus, _rr, exponent = _ANDROID_PUBKEY.unpack(blob)
    if words != 64:
        raise ValueError(f"public key modulus is {words} words, adbd expects 64 (RSA-2048)")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


# ---------------------------------------------------------------- the simulated phone
def model_latency_us(model: bytes) -> float:
    """The simulated latency of a model in microseconds: 2-32 ms, a function of its bytes."""
    digest = hashlib.sha256(model).digest()
    return 2000.0 + int.from_bytes(digest[:4], "big") % 30000


def stand_in_artifact_bytes(runtime: str, payload: bytes) -> bytes:
    """A header-only file the stand-ins accept as ``.tflite`` / ``.pte`` (never a runnable model)."""
    identifier = {"tflite": b"TFL3", "executorch": b"ET12"}[runtime]
    return b"\x1c\x00\x00\x00" + identifier + payload


def _model_problem(tool: str, data: bytes | None) -> str | None:
    """Why the stand-in ``tool`` refuses ``data`` (``None`` = it accepts it)."""
    if data is None:
        return "missing"
    if tool == "speed_benchmark_torch":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if not any(name.endswith("bytecode.pkl") for name in archive.namelist()):
                    return "no bytecode.pkl"
        except zipfile.BadZipFile:
            return "not a zip"
        return None
    if tool == "benchmark_model":
        return None if data[4:8] == b"TFL3" else "identifier"
    return None if data[4:6] == b"ET" else "identifier"


@dataclass
class StandInRun:
    """One stand-in invocation: what was asked and which per-run microseconds were printed."""

    tool: str
    argv: list[str]
    model_path: str
    cpu_mask: str | None
    variant: str = ""
    printed_us: list[float] = field(default_factory=list)


@dataclass
class SimulatedPhone:
    """The state the simulated shell reports; device texts come from ``fixtures`` (see module doc).

    ``cooling_per_read_tenths`` lowers the battery temperature on every ``dumpsys battery``
    so cool-down waits can be tested without waiting.
    """

    fixtures: Path
    battery_tenths: int = 275
    zone_millidegrees: int = 41000
    cooling_per_read_tenths: int = 0
    screen_on: bool = True
    zone_raw: dict[int, str] = field(default_factory=dict)
    online_cpus: str = "0-7\n"
    """What ``/sys/devices/system/cpu/online`` says (a hostile phone may claim ``0-20000000``)."""
    """Zone number -> the raw ``temp`` text to report instead (``nan``, ``95000``): broken or hot sensors."""

    def text(self, name: str) -> str:
        return (self.fixtures / "android" / name).read_text()

    def battery(self) -> str:
        lines = self.text("dumpsys_battery_pixel_c_dragon_2016.txt").splitlines()
        rendered = [f"  temperature: {self.battery_tenths}" if line.strip().startswith("temperature:") else line
                    for line in lines]
        self.battery_tenths -= self.cooling_per_read_tenths
        return "\n".join(rendered) + "\n"

    def zones(self) -> str:
        names = self.text("thermal_zone_types_xperia_xz_premium_msm8998_truncated.txt").split()
        return "".join(f"{i}\t{name}\t{self.zone_raw.get(i, self.zone_millidegrees + 500 * (i % 3))}\n"
                       for i, name in enumerate(names))

    def cpufreq(self) -> str:
        rows = [line for line in self.text("scaling_governor_pixel6_iree_script_table.txt").splitlines()
                if line.startswith("cpu") and line.split()[0] != "cpu"]
        return "\n".join(" ".join(row.split()) for row in rows[:8]) + "\n"


# ---------------------------------------------------------------- stand-in binaries
def install_stand_in(sandbox: Path, device_path: str, tool: str, variant: str = "") -> Path:
    """Put a stand-in for ``tool`` at ``device_path`` (under /data/local/tmp), executable.

    ``variant="no_pep"`` makes ``speed_benchmark_torch`` print no ``PyTorchObserver`` lines
    (a build without the observer), leaving only its summary line.
    """
    if tool not in _STAND_INS:
        raise ValueError(f"no stand-in for {tool!r}; known: {sorted(_STAND_INS)}")
    host = _host_path(sandbox, device_path)
    if host is None:
        raise ValueError(f"{device_path} is outside {SANDBOX_ROOT}")
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(STAND_IN_MARKER + f"{tool} {variant}".strip().encode() + b"\n")
    host.chmod(0o755)
    return host


def _flags(argv: list[str]) -> dict[str, str]:
    """``--name=value`` and ``--name value`` -> {name: value}."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word.startswith("--"):
            name, equals, value = word[2:].partition("=")
            if not equals and index + 1 < len(argv) and not argv[index + 1].startswith("--"):
                value, index = argv[index + 1], index + 1
            flags[name] = value
        index += 1
    return flags


def _jittered(base_us: float, seed: str, count: int) -> list[float]:
    rng = random.Random(seed)
    return [round(base_us * rng.uniform(0.99, 1.01)) for _ in range(count)]


def _speed_benchmark_torch(run: StandInRun, model: bytes | None, seed: str) -> tuple[str, int]:
    flags = _flags(run.argv)
    problem = _model_problem("speed_benchmark_torch", model)
    if problem is not None:
        reason = ("open file failed because of errno 2 on fopen: No such file or directory, file path: "
                  f"{flags.get('model')}") if problem == "missing" else \
            "PytorchStreamReader failed reading zip archive: failed finding central directory"
        return (f"terminate called after throwing an instance of 'c10::Error'\n  what():  {reason}\nAborted \n", 134)
    iterations = int(flags.get("iter", "10"))
    values = _jittered(model_latency_us(model or b""), seed, iterations)
    run.printed_us = [float(v) for v in values]
    lines = ["Starting benchmark.", "Running warmup runs.", "Main runs."]
    if flags.get("report_pep") in ("true", "1") and run.variant != "no_pep":
        lines += [f'PyTorchObserver {{"type": "NET", "unit": "us", "metric": "latency", "value": "{v}"}}'
                  for v in values]
    mean = sum(values) / len(values)
    lines.append(f"Main run finished. Microseconds per iter: {mean:g}. Iters per second: {1e6 / mean:g}")
    return "\n".join(lines) + "\n", 0


def _benchmark_model(run: StandInRun, model: bytes | None, seed: str) -> tuple[str, int]:
    flags = _flags(run.argv)
    graph = flags.get("graph", "")
    head = ["INFO: STARTING!", "INFO: Log parameter values verbosely: [0]",
            f"INFO: Num threads: [{flags.get('num_threads', '1')}]", f"INFO: Graph: [{graph}]",
            "INFO: Signature to run: []", f"INFO: Use xnnpack: [{1 if flags.get('use_xnnpack') == 'true' else 0}]"]
    problem = _model_problem("benchmark_model", model)
    if problem is not None:
        error = "ERROR: Could not open '{0}'." if problem == "missing" else \
            "ERROR: The model is not a valid Flatbuffer buffer"
        return "\n".join(head + [error.format(graph), f"ERROR: Failed to mmap model {graph}",
                                 "ERROR: Benchmarking failed."]) + "\n", 1
    runs, warmups = int(flags.get("num_runs", "50")), int(flags.get("warmup_runs", "1"))
    base = model_latency_us(model or b"")
    values = _jittered(base, seed, warmups + runs)
    warm, timed = values[:warmups] or [values[0]], values[warmups:]
    run.printed_us = [float(v) for v in timed]
    ordered = sorted(timed)
    avg = sum(timed) / len(timed)
    std = int((sum((v - avg) ** 2 for v in timed) / len(timed)) ** 0.5)
    median = ordered[len(ordered) // 2]
    lines = head + [
        f"INFO: Loaded model {graph}", "INFO: The input model file size (MB): 0.012",
        "INFO: Initialized session in 3.21ms.",
        "INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if "
        "exceeding 150 seconds.",
        f"INFO: count={len(warm)} curr={warm[-1]} p5={warm[0]} median={warm[0]} p95={warm[0]}", "",
        f"INFO: Running benchmark for at least {runs} iterations and at least 1 seconds but terminate if "
        "exceeding 150 seconds.",
        f"INFO: count={runs} first={timed[0]} curr={timed[-1]} min={ordered[0]} max={ordered[-1]} avg={avg:g} "
        f"std={std} p5={ordered[int(0.05 * (runs - 1))]} median={median} p95={ordered[int(0.95 * (runs - 1))]}", "",
        f"INFO: Inference timings in us: Init: 3210, First inference: {warm[0]}, "
        f"Warmup (avg): {sum(warm) / len(warm):g}, Inference (avg): {avg:g}",
        "INFO: Memory footprint delta from the start of the tool (MB): init=1.5 overall=3.25",
    ]
    return "\n".join(lines) + "\n", 0


def _executor_runner(run: StandInRun, model: bytes | None, seed: str) -> tuple[str, int]:
    flags = _flags(run.argv)
    problem = _model_problem("executor_runner", model)
    if problem is not None:
        return ("E 00:00:00.000912 executorch:executor_runner.cpp:134] Program loading failed @ "
                "0x7ffd2c1e5a40: 0x23\nAborted \n", 134)
    executions = int(flags.get("num_executions", "1"))
    values = _jittered(model_latency_us(model or b""), seed, executions)
    run.printed_us = [float(v) for v in values]
    total_ms = sum(values) / 1000.0
    return (f"I 00:00:00.004885 executorch:executor_runner.cpp:73] Model file {flags.get('model_path')} is loaded.\n"
            "I 00:00:00.007490 executorch:executor_runner.cpp:162] Inputs prepared.\n"
            f"I 00:00:00.043703 executorch:executor_runner.cpp:379] Model executed successfully {executions} "
            f"time(s) in {total_ms:.6f} ms.\n"
            "I 00:00:00.043720 executorch:executor_runner.cpp:383] 1 outputs:\n"), 0


_STAND_INS: dict[str, tuple[Callable[[StandInRun, bytes | None, str], tuple[str, int]], str]] = {
    "speed_benchmark_torch": (_speed_benchmark_torch, "model"),
    "benchmark_model": (_benchmark_model, "graph"),
    "executor_runner": (_executor_runner, "model_path"),
}


def _host_path(sandbox: Path, device_path: str) -> Path | None:
    """The sandbox file for a device path under /data/local/tmp, or ``None`` outside it."""
    normal = posixpath.normpath(device_path)
    if normal != SANDBOX_ROOT and not normal.startswith(SANDBOX_ROOT + "/"):
        return None
    return sandbox / normal[len(SANDBOX_ROOT):].lstrip("/")


# ---------------------------------------------------------------- the sandboxed shell
@dataclass
class _Result:
    out: bytes = b""
    err: bytes = b""
    rc: int = 0


class _Shell:
    """Interprets one ``shell:`` command line against the sandbox and the phone state."""

    def __init__(self, daemon: "ADBDaemonSimulation") -> None:
        self.daemon = daemon
        self.cwd = "/"
        self.mask: str | None = None

    def run(self, line: str) -> tuple[bytes, int]:
        # The agents' compound read-outs (for loops, $(...)) are answered from the phone state,
        # like the shell would; whatever follows them on the line runs normally.
        canned = {ZONE_READ_COMMAND: self.daemon.phone.zones, CPUFREQ_READ_COMMAND: self.daemon.phone.cpufreq}
        for snippet, produce in canned.items():
            if line == snippet or line.startswith(snippet + ";"):
                output, rc = self._run_simple(line[len(snippet) + 1:], 0)
                return produce().encode() + output, rc
        return self._run_simple(line, 0)

    def _run_simple(self, line: str, rc: int) -> tuple[bytes, int]:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as error:
            return f"/system/bin/sh: syntax error: {error}\n".encode(), 2
        output = bytearray()
        operator = ";"
        for words, redirects, next_operator in self._split(tokens):
            if words == ["|"]:
                return b"/system/bin/sh: pipes are not supported by this simulation\n", 2
            if (operator == "&&" and rc != 0) or (operator == "||" and rc == 0):
                operator = next_operator
                continue
            result = self._execute([w.replace("$?", str(rc)) for w in words])
            rc = result.rc
            if "1>/dev/null" not in redirects:
                output += result.out
            if "2>/dev/null" not in redirects:
                output += result.err
            operator = next_operator
        return bytes(output), rc

    @staticmethod
    def _split(tokens: list[str]) -> list[tuple[list[str], set[str], str]]:
        commands: list[tuple[list[str], set[str], str]] = []
        words: list[str] = []
        redirects: set[str] = set()
        index = 0
        while index < len(tokens):
            token = tokens[index]
            if token in (";", "&&", "||", "|"):
                if token == "|":
                    return [(["|"], set(), ";")]
                commands.append((words, redirects, token))
                words, redirects = [], set()
            elif token in (">", ">&", ">>"):
                fd = words.pop() if words and words[-1] in ("1", "2") else "1"
                target = tokens[index + 1] if index + 1 < len(tokens) else ""
                redirects.add(f"{fd}>{'&' if token == '>&' else ''}{target}")
                index += 1
            else:
                words.append(token)
            index += 1
        if words:
            commands.append((words, redirects, ";"))
        return commands

    # ------------------------------------------------------------ commands
    def _execute(self, words: list[str]) -> _Result:
        if not words:
            return _Result()
        name, args = words[0], words[1:]
        builtin = getattr(self, f"_cmd_{name.replace('[', 'bracket')}", None)
        if builtin is not None and "/" not in name:
            try:
                return builtin(args)
            except (OSError, ValueError) as error:  # what toybox would print, not a dropped connection
                return _Result(err=f"{name}: {error.strerror if isinstance(error, OSError) else error}\n".encode(),
                               rc=1)
        if "/" in name:
            return self._exec_file(self._absolute(name), args)
        return _Result(err=f"/system/bin/sh: {name}: inaccessible or not found\n".encode(), rc=127)

    def _absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, path))

    def _sandbox(self, path: str) -> Path | None:
        return _host_path(self.daemon.sandbox, self._absolute(path))

    def _read(self, path: str) -> bytes | None:
        virtual = {
            "/proc/cpuinfo": lambda: self.daemon.phone.text("proc_cpuinfo_xiaomi_mi8_sd845_tabs_truncated.txt"),
            "/sys/devices/system/cpu/online": lambda: self.daemon.phone.online_cpus,
            "/proc/meminfo": lambda: "MemTotal:        5772440 kB\nMemFree:          301508 kB\n"
                                     "MemAvailable:    2212380 kB\n",
        }
        absolute = self._absolute(path)
        if absolute in virtual:
            return virtual[absolute]().encode()
        host = self._sandbox(path)
        return host.read_bytes() if host is not None and host.is_file() else None

    def _cmd_echo(self, args: list[str]) -> _Result:
        newline = not (args and args[0] == "-n")
        return _Result(out=(" ".join(args[0 if newline else 1:]) + ("\n" if newline else "")).encode())

    def _cmd_true(self, args: list[str]) -> _Result:
        return _Result()

    def _cmd_false(self, args: list[str]) -> _Result:
        return _Result(rc=1)

    def _cmd_cd(self, args: list[str]) -> _Result:
        target = self._absolute(args[0] if args else "/")
        host = _host_path(self.daemon.sandbox, target)
        if target != "/" and (host is None or not host.is_dir()):
            return _Result(err=f"/system/bin/sh: cd: {target}: No such file or directory\n".encode(), rc=2)
        self.cwd = target
        return _Result()

    def _per_file(self, command: str, args: list[str], render: Callable[[str, bytes], bytes]) -> _Result:
        result = _Result()
        for path in args:
            data = self._read(path)
            if data is None:
                result.err += f"{command}: {path}: No such file or directory\n".encode()
                result.rc = 1
            else:
                result.out += render(path, data)
        return result

    def _cmd_cat(self, args: list[str]) -> _Result:
        return self._per_file("cat", args, lambda path, data: data)

    def _cmd_sha256sum(self, args: list[str]) -> _Result:
        return self._per_file("sha256sum", args,
                              lambda path, data: f"{hashlib.sha256(data).hexdigest()}  {path}\n".encode())

    def _writable(self, command: str, path: str) -> Path | _Result:
        host = self._sandbox(path)
        if host is None:
            return _Result(err=f"{command}: '{path}': Permission denied\n".encode(), rc=1)
        return host

    def _cmd_mkdir(self, args: list[str]) -> _Result:
        parents, mode, paths = False, 0o777, []
        words = iter(args)
        for word in words:
            if word == "-p":
                parents = True
            elif word == "-m":
                mode = int(next(words, "x"), 8)
            else:
                paths.append(word)
        for path in paths:
            host = self._writable("mkdir", path)
            if isinstance(host, _Result):
                return host
            if host.is_symlink() or (host.exists() and not (parents and host.is_dir())):
                return _Result(err=f"mkdir: '{path}': File exists\n".encode(), rc=1)
            host.mkdir(parents=parents, exist_ok=parents)
            if mode != 0o777:
                host.chmod(mode)
        return _Result()

    def _cmd_mv(self, args: list[str]) -> _Result:
        paths = [a for a in args if a != "-f"]
        if len(paths) != 2:
            return _Result(err=b"mv: needs 2 arguments\n", rc=1)
        source, target = (self._writable("mv", path) for path in paths)
        for host in (source, target):
            if isinstance(host, _Result):
                return host
        assert isinstance(source, Path) and isinstance(target, Path)
        if not (source.exists() or source.is_symlink()):
            return _Result(err=f"mv: '{paths[0]}': No such file or directory\n".encode(), rc=1)
        if target.is_dir() and not target.is_symlink():  # like mv(1): into the directory
            target = target / source.name
        os.replace(source, target)  # rename(2): a link at the target is replaced, never followed
        return _Result()

    def _cmd_rm(self, args: list[str]) -> _Result:
        import shutil

        for path in (a for a in args if not a.startswith("-")):
            host = self._writable("rm", path)
            if isinstance(host, _Result):
                return host
            if host == self.daemon.sandbox:
                return _Result(err=f"rm: '{path}': Permission denied\n".encode(), rc=1)
            if host.is_symlink():
                host.unlink()
            elif host.is_dir():
                shutil.rmtree(host)
            elif host.exists():
                host.unlink()
            elif "-f" not in args and "-rf" not in args:
                return _Result(err=f"rm: {path}: No such file or directory\n".encode(), rc=1)
        return _Result()

    def _cmd_chmod(self, args: list[str]) -> _Result:
        host = self._writable("chmod", args[-1]) if len(args) == 2 else _Result(rc=1)
        if isinstance(host, _Result):
            return host
        if not host.exists():
            return _Result(err=f"chmod: {args[-1]}: No such file or directory\n".encode(), rc=1)
        host.chmod(int(args[0], 8))
        return _Result()

    def _cmd_ls(self, args: list[str]) -> _Result:
        result = _Result()
        for path in (a for a in args if not a.startswith("-")):
            host = self._sandbox(path)
            if host is None or not host.exists():
                result.err += f"ls: {path}: No such file or directory\n".encode()
                result.rc = 1
            else:
                names = sorted(p.name for p in host.iterdir()) if host.is_dir() else [path]
                result.out += "".join(f"{n}\n" for n in names).encode()
        return result

    def _cmd_test(self, args: list[str]) -> _Result:
        if len(args) != 2:
            return _Result(rc=2)
        host = self._sandbox(args[1])
        checks = {"-e": lambda p: p.exists(), "-f": lambda p: p.is_file(), "-d": lambda p: p.is_dir(),
                  "-L": lambda p: p.is_symlink(), "-h": lambda p: p.is_symlink(),
                  "-x": lambda p: p.exists() and os.access(p, os.X_OK)}
        ok = host is not None and args[0] in checks and checks[args[0]](host)
        return _Result(rc=0 if ok else 1)

    def _cmd_bracket(self, args: list[str]) -> _Result:
        return self._cmd_test(args[:-1] if args and args[-1] == "]" else args)

    def _cmd_getprop(self, args: list[str]) -> _Result:
        listing = self.daemon.phone.text("getprop_grep_ro_product_pixel8_truncated.txt")
        listing += "[ro.build.version.sdk]: [34]\n[ro.build.version.release]: [14]\n"
        if not args:
            return _Result(out=listing.encode())
        values = dict(line[1:-1].split("]: [", 1) for line in listing.splitlines() if line.startswith("["))
        return _Result(out=(values.get(args[0], "") + "\n").encode())

    def _cmd_dumpsys(self, args: list[str]) -> _Result:
        phone = self.daemon.phone
        services = {"battery": phone.battery,
                    "thermalservice": lambda: phone.text("dumpsys_thermalservice_samsung_a52_android12_truncated.txt")}
        if not args or args[0] not in services:
            return _Result(out=f"Can't find service: {args[0] if args else ''}\n".encode())
        return _Result(out=services[args[0]]().encode())

    def _cmd_input(self, args: list[str]) -> _Result:
        if args[:1] == ["keyevent"] and len(args) == 2:
            if args[1] in ("KEYCODE_SLEEP", "223"):
                self.daemon.phone.screen_on = False
            elif args[1] in ("KEYCODE_WAKEUP", "224"):
                self.daemon.phone.screen_on = True
            return _Result()
        return _Result(err=b"Usage: input [<source>] <command> [<arg>...]\n", rc=1)

    def _cmd_sleep(self, args: list[str]) -> _Result:
        time.sleep(min(float(args[0]) if args else 0.0, 0.2))
        return _Result()

    def _cmd_taskset(self, args: list[str]) -> _Result:
        if len(args) < 2:
            return _Result(err=b"taskset: Need 1 argument\n", rc=1)
        try:
            int(args[0], 16)
        except ValueError:
            return _Result(err=f"taskset: bad mask '{args[0]}'\n".encode(), rc=1)
        self.mask = args[0]
        return self._execute(args[1:])

    def _exec_file(self, path: str, args: list[str]) -> _Result:
        host = _host_path(self.daemon.sandbox, path)
        if host is None or not host.is_file():
            return _Result(err=f"/system/bin/sh: {path}: inaccessible or not found\n".encode(), rc=127)
        if not os.access(host, os.X_OK):
            return _Result(err=f"/system/bin/sh: {path}: can't execute: Permission denied\n".encode(), rc=126)
        head = host.read_bytes()[:200]
        if not head.startswith(STAND_IN_MARKER):
            # Never run a host program: only stand-ins "execute" in this simulation.
            return _Result(err=f"/system/bin/sh: {path}: can't execute: Exec format error\n".encode(), rc=126)
        tool = head[len(STAND_IN_MARKER):].split(b"\n")[0].decode()
        return self.daemon.run_stand_in(tool, args, self)


# ---------------------------------------------------------------- the daemon
class ADBDaemonSimulation:
    """The simulated adbd: a TCP server on 127.0.0.1 (see the module docstring).

    ``authorized_keys``: contents of the ``adbkey.pub`` files adbd accepts.
    ``accept_new_keys``: a key offered with AUTH RSAPUBLICKEY is accepted (as if the user
    tapped "Allow"); otherwise it is recorded in :attr:`offered_keys` and never answered.
    ``offline``: the TCP port accepts but the daemon never answers CNXN.
    ``drop_on_invocation``: the N-th stand-in invocation (1-based) drops the device.
    ``hang_on_invocation``: the N-th stand-in invocation stays silent for ``hang_s`` seconds.
    """

    def __init__(
        self,
        sandbox: Path,
        fixtures: Path,
        *,
        authorized_keys: list[str] | None = None,
        accept_new_keys: bool = False,
        offline: bool = False,
        drop_on_invocation: int | None = None,
        hang_on_invocation: int | None = None,
        hang_s: float = 2.0,
        phone: SimulatedPhone | None = None,
    ) -> None:
        self.sandbox = Path(sandbox)
        self.sandbox.mkdir(parents=True, exist_ok=True)
        self.phone = phone or SimulatedPhone(fixtures)
        self.authorized = [android_public_key(key) for key in (authorized_keys or [])]
        self.accept_new_keys = accept_new_keys
        self.offline = offline
        self.drop_on_invocation = drop_on_invocation
        self.hang_on_invocation, self.hang_s = hang_on_invocation, hang_s
        self.commands: list[str] = []
        self.invocations: list[StandInRun] = []
        self.offered_keys: list[str] = []
        self.pushed: list[str] = []
        self.dropped = False
        self.port = 0
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "ADBDaemonSimulation":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self._listener, self.port = listener, listener.getsockname()[1]
        thread = threading.Thread(target=self._accept_loop, name="adbd-simulation", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Close the port and every connection (also what a dropped device looks like)."""
        with self._lock:
            listener, self._listener = self._listener, None
            clients, self._clients = self._clients, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the other thread
            except OSError:
                pass
            listener.close()
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    def __enter__(self) -> "ADBDaemonSimulation":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while True:
            listener = self._listener
            if listener is None:
                return
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.append(client)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    # ------------------------------------------------------------ transport
    @staticmethod
    def _send(sock: socket.socket, command: bytes, arg0: int, arg1: int, data: bytes = b"") -> None:
        wire = _wire(command)
        sock.sendall(_HEADER.pack(wire, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, wire ^ 0xFFFFFFFF) + data)

    @staticmethod
    def _recv_exact(sock: socket.socket, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionResetError("client closed the connection")
            data += chunk
        return bytes(data)

    def _recv(self, sock: socket.socket) -> tuple[bytes, int, int, bytes]:
        wire, arg0, arg1, length, checksum, magic = _HEADER.unpack(self._recv_exact(sock, _HEADER.size))
        command = _command(wire)
        if magic != wire ^ 0xFFFFFFFF or command not in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"WRTE", b"CLSE"):
            raise ProtocolViolation(f"bad header: command {command!r} magic {magic:#x}")
        data = self._recv_exact(sock, length) if length else b""
        if sum(data) & 0xFFFFFFFF != checksum:
            raise ProtocolViolation("data checksum mismatch")
        return command, arg0, arg1, data

    def _serve(self, sock: socket.socket) -> None:
        authorized = False
        token = os.urandom(20)
        streams: dict[int, _SyncSession] = {}
        next_id = 1
        try:
            while True:
                command, arg0, arg1, data = self._recv(sock)
                if command == b"CNXN":
                    if self.offline:
                        continue
                    token = os.urandom(20)
                    self._send(sock, b"AUTH", AUTH_TOKEN, 0, token)
                elif command == b"AUTH":
                    authorized = self._authenticate(sock, arg0, data, token)
                    if not authorized and arg0 == AUTH_SIGNATURE:
                        token = os.urandom(20)
                        self._send(sock, b"AUTH", AUTH_TOKEN, 0, token)
                elif not authorized:
                    raise ProtocolViolation(f"{command!r} before authentication")
                elif command == b"OPEN":
                    local, remote = arg0, next_id
                    next_id += 1
                    service = data.rstrip(b"\0").decode()
                    if service.startswith("shell:"):
                        self._shell(sock, remote, local, service[len("shell:"):])
                    elif service == "sync:":
                        streams[remote] = _SyncSession(self, local)
                        self._send(sock, b"OKAY", remote, local)
                    else:
                        self._send(sock, b"CLSE", 0, local)
                elif command == b"WRTE" and arg1 in streams:
                    session = streams[arg1]
                    self._send(sock, b"OKAY", arg1, arg0)
                    for reply in session.feed(data):
                        self._send(sock, b"WRTE", arg1, arg0, reply)
                    if session.quit:
                        del streams[arg1]
                        self._send(sock, b"CLSE", arg1, arg0)
                elif command == b"CLSE" and arg1 in streams:
                    del streams[arg1]
                    self._send(sock, b"CLSE", arg1, arg0)
        except (ConnectionResetError, BrokenPipeError, OSError, ProtocolViolation, _Dropped):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _authenticate(self, sock: socket.socket, kind: int, data: bytes, token: bytes) -> bool:
        if kind == AUTH_SIGNATURE:
            for key in self.authorized:
                try:
                    key.verify(data, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
                except InvalidSignature:
                    continue
                self._send(sock, b"CNXN", VERSION, MAX_PAYLOAD, self._banner())
                return True
            return False
        if kind == AUTH_RSAPUBLICKEY:
            offered = data.rstrip(b"\0").decode()
            self.offered_keys.append(offered)
            if self.accept_new_keys:
                self.authorized.append(android_public_key(offered))
                self._send(sock, b"CNXN", VERSION, MAX_PAYLOAD, self._banner())
                return True
        return False

    @staticmethod
    def _banner() -> bytes:
        return b"device::ro.product.name=shiba;ro.product.model=Pixel 8;ro.product.device=shiba;features=cmd\0"

    def _shell(self, sock: socket.socket, remote: int, local: int, line: str) -> None:
        self.commands.append(line)
        self._send(sock, b"OKAY", remote, local)
        output, _ = _Shell(self).run(line)
        for start in range(0, len(output), 4096):
            self._send(sock, b"WRTE", remote, local, output[start:start + 4096])
        self._send(sock, b"CLSE", remote, local)

    # ------------------------------------------------------------ stand-ins
    def run_stand_in(self, marker: str, argv: list[str], shell: _Shell) -> _Result:
        tool, _, variant = marker.partition(" ")
        function, model_flag = _STAND_INS[tool]
        model_path = _flags(argv).get(model_flag, "")
        run = StandInRun(tool, list(argv), model_path, shell.mask, variant)
        with self._lock:
            self.invocations.append(run)
            count = len(self.invocations)
        if self.drop_on_invocation is not None and count >= self.drop_on_invocation:
            self.dropped = True
            self.stop()
            raise _Dropped(f"device dropped during invocation {count}")
        if count == self.hang_on_invocation:
            time.sleep(self.hang_s)
        model = shell._read(model_path) if model_path else None
        text, rc = function(run, model, f"{tool}:{model_path}:{count}")
        return _Result(out=text.encode(), rc=rc)


class _SyncSession:
    """The sync service of one stream: SEND/DATA/DONE (push), STAT, RECV (pull), QUIT."""

    def __init__(self, daemon: ADBDaemonSimulation, local_id: int) -> None:
        self.daemon = daemon
        self.local_id = local_id
        self.buffer = bytearray()
        self.sending: tuple[str, int, bytearray] | None = None
        self.quit = False

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        replies: list[bytes] = []
        while len(self.buffer) >= 8:
            request, length = bytes(self.buffer[:4]), struct.unpack("<I", self.buffer[4:8])[0]
            has_payload = request in (b"SEND", b"DATA", b"STAT", b"RECV", b"LIST")
            if has_payload and len(self.buffer) < 8 + length:
                break
            payload = bytes(self.buffer[8:8 + length]) if has_payload else b""
            del self.buffer[:8 + (length if has_payload else 0)]
            replies.extend(self._handle(request, length, payload))
        return replies

    def _handle(self, request: bytes, length: int, payload: bytes) -> list[bytes]:
        if request == b"SEND":
            path, _, mode = payload.decode().rpartition(",")
            self.sending = (path, int(mode), bytearray())
            return []
        if request == b"DATA" and self.sending is not None:
            self.sending[2].extend(payload)
            return []
        if request == b"DONE" and self.sending is not None:
            path, mode, content = self.sending
            self.sending = None
            host = _host_path(self.daemon.sandbox, path)
            if host is None:
                message = f"couldn't create file: Permission denied: {path}".encode()
                return [b"FAIL" + struct.pack("<I", len(message)) + message]
            host.parent.mkdir(parents=True, exist_ok=True)
            if host.is_symlink() or host.is_file():
                host.unlink()  # adbd unlinks a regular file or link at the target; it never follows it
            descriptor = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 stat.S_IMODE(mode) or 0o644)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(bytes(content))
            self.daemon.pushed.append(path)
            return [b"OKAY" + struct.pack("<I", 0)]
        if request == b"STAT":
            host = _host_path(self.daemon.sandbox, payload.decode())
            if host is None or not host.exists():
                return [b"STAT" + struct.pack("<3I", 0, 0, 0)]
            info = host.stat()
            return [b"STAT" + struct.pack("<3I", info.st_mode, info.st_size, int(info.st_mtime))]
        if request == b"RECV":
            host = _host_path(self.daemon.sandbox, payload.decode())
            if host is None or not host.is_file():
                message = b"No such file or directory"
                return [b"FAIL" + struct.pack("<I", len(message)) + message]
            content = host.read_bytes()
            chunks = [b"DATA" + struct.pack("<I", len(content[i:i + 65536])) + content[i:i + 65536]
                      for i in range(0, len(content), 65536)]
            return chunks + [b"DONE" + struct.pack("<I", 0)]
        if request == b"LIST":
            return [b"DONE" + struct.pack("<4I", 0, 0, 0, 0)]
        if request == b"QUIT":
            self.quit = True
            return []
        message = f"unknown sync request {request!r}".encode()
        return [b"FAIL" + struct.pack("<I", len(message)) + message]
