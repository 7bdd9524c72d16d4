"""The connection to ``adbd`` on a phone: the RSA signer, the TCP transport, and bounded shell commands.

`adb-shell <https://pypi.org/project/adb-shell/>`_ speaks the ADB protocol itself, no ``adb``
server needed: over TCP (``host:5555``, after ``adb tcpip 5555``) or over USB by serial when
adb-shell's USB extra (``libusb1``) is installed. :class:`ADBConnection` turns every failure
of the link into a typed error:

- unreachable -> :class:`~agents.parsers.adb_errors.DeviceNotFound`, no answer to the
  handshake -> :class:`~agents.parsers.adb_errors.DeviceOffline`, key not accepted ->
  :class:`~agents.parsers.adb_errors.DeviceUnauthorized`, link lost mid-command ->
  :class:`DeviceOffline` (all retryable);
- a command that does not finish within its time limit, or prints more than
  :data:`MAX_SHELL_OUTPUT_BYTES` -> :class:`~agents.base.RunFailed`, after dropping the
  connection (the stream may still be open on the phone).

The phone's output is untrusted: it is read in chunks and never held beyond the bound, and
the exit status is taken only from the marker the command line itself echoes last.

Example (against the adbd simulation of the tests)::

    connection = ADBConnection(ADBSettings(name="pixel8", host="127.0.0.1", port=adbd.port, key_file=key))
    connection.shell("echo hi")  # ShellResult(output='hi\\n', status=0)
"""

from __future__ import annotations

import base64
import re
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from agents.adb_settings import ADBConfigError, ADBSettings
from agents.base import RunFailed
from agents.parsers.adb_errors import DeviceNotFound, DeviceOffline, DeviceUnauthorized

if TYPE_CHECKING:
    from adb_shell.adb_device import AdbDevice

__all__ = ["ADBConnection", "MAX_SHELL_OUTPUT_BYTES", "RC_MARKER", "ShellResult", "connect_adb_shell", "load_signer"]

RC_MARKER = "__latfarm_rc="
#: More output than any read-out or benchmark run prints (a 10 000-run torch burst is ~1 MB).
MAX_SHELL_OUTPUT_BYTES = 16 * 1024 * 1024
_STATUS = re.compile(r"[0-9]{1,3}\s*")


@dataclass(frozen=True)
class ShellResult:
    """Combined stdout+stderr of one ``shell:`` command (ADB's v1 shell merges them) and its status."""

    output: str
    status: int


def load_signer(key_file: str) -> Any:
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

    signer = load_signer(settings.key_file)
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


class _TooMuchOutput(Exception):
    """The command printed more than the bound; the stream is abandoned with the connection."""


class ADBConnection:
    """One phone's adb link, opened on first use and reopened after a drop.

    ``connector`` opens the link (:func:`connect_adb_shell`; injectable). ``clock`` bounds
    a command's total time.
    """

    def __init__(
        self,
        settings: ADBSettings,
        connector: Callable[[ADBSettings], "AdbDevice"] = connect_adb_shell,
        *,
        max_output_bytes: int = MAX_SHELL_OUTPUT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.connector = connector
        self.max_output_bytes = max_output_bytes
        self.clock = clock
        self._adb: "AdbDevice | None" = None

    @property
    def connected(self) -> bool:
        """Whether a link is open now (nothing is opened to answer)."""
        return self._adb is not None

    def device(self) -> "AdbDevice":
        """The open adb-shell device, connecting first if needed."""
        if self._adb is None:
            self._adb = self.connector(self.settings)
        return self._adb

    def _lost(self, what: str, error: BaseException) -> DeviceOffline:
        self.close()
        return DeviceOffline(f"device {self.settings.name!r}: adb connection to {self.settings.address} lost "
                             f"during {what} ({type(error).__name__}: {error}); the device was dropped "
                             "(unplugged, Wi-Fi, reboot); the farm retries")

    def _hung(self, what: str, why: str) -> RunFailed:
        self.close()  # the stream may still be open on the phone; start afresh
        return RunFailed(f"device {self.settings.name!r}: no answer from the phone during {what} within the "
                         f"time limit ({why}): the binary hung or the link died silently")

    def call(self, what: str, action: Callable[["AdbDevice"], Any]) -> Any:
        """``action(device)``, every failure of the link as a typed error naming ``what``."""
        from adb_shell import exceptions

        device = self.device()
        try:
            return action(device)
        except _TooMuchOutput as error:
            self.close()
            raise RunFailed(f"device {self.settings.name!r}: {what} printed more than "
                            f"{self.max_output_bytes} bytes ({error}); refusing the rest") from None
        except (exceptions.TcpTimeoutException, exceptions.AdbTimeoutError, TimeoutError) as error:
            if isinstance(error, exceptions.AdbTimeoutError) and "did not complete within" not in str(error):
                raise self._lost(what, error) from None
            raise self._hung(what, str(error)) from None
        except (OSError, struct.error,
                exceptions.AdbConnectionError, exceptions.InvalidChecksumError, exceptions.InvalidCommandError,
                exceptions.InvalidResponseError) as error:
            raise self._lost(what, error) from None

    def shell(self, command: str, *, timeout_s: float | None = None, what: str | None = None) -> ShellResult:
        """Run ``command`` (already quoted) in the phone's shell; return its output and exit status.

        The output is read in chunks: past ``timeout_s`` (default ``command_timeout_s``) or
        :attr:`max_output_bytes` the command is abandoned with :class:`RunFailed`.
        """
        timeout = timeout_s or self.settings.command_timeout_s
        label = what or f"`{command[:60]}`"

        def bounded(device: "AdbDevice") -> bytes:
            deadline = self.clock() + timeout
            received = bytearray()
            for chunk in device.streaming_shell(f"{command}; echo {RC_MARKER}$?", transport_timeout_s=timeout,
                                                read_timeout_s=timeout, decode=False):
                received += chunk
                if len(received) > self.max_output_bytes:
                    raise _TooMuchOutput(f"{len(received)} bytes so far")
                if self.clock() > deadline:
                    raise TimeoutError(f"the command did not complete within {timeout:g} s")
            return bytes(received)

        text = self.call(label, bounded).decode("utf-8", "replace")
        body, marker, status = text.rpartition(RC_MARKER)
        if not marker or not _STATUS.fullmatch(status):
            raise RunFailed(f"device {self.settings.name!r}: `{command[:80]}` ended without an exit status "
                            "(output cut off)")
        return ShellResult(body, int(status))

    def push(self, local: Path, remote: str, *, mode: int = 0o600) -> None:
        """Copy ``local`` to ``remote`` with the sync service (adbd replaces a file or link there, never follows it)."""
        timeout = self.settings.command_timeout_s
        self.call(f"push {local.name}", lambda device: device.push(
            str(local), remote, st_mode=0o100000 | mode, transport_timeout_s=timeout, read_timeout_s=timeout))

    def close(self) -> None:
        """Drop the link (a later command reconnects). Safe to call twice."""
        device, self._adb = self._adb, None
        if device is not None:
            try:
                device.close()
            except OSError:
                pass
