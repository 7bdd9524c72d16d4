"""A command running on the device over an SSH channel: stdout cut into bounded lines, stderr's tail kept.

What the device prints is untrusted: a line longer than ``max_line_bytes`` is refused
(:class:`LineTooLong`) instead of being buffered without end, the stdout kept by
:meth:`RemoteProcess.wait` stops at the same bound, and only the last 64 KiB of stderr
are kept. A vanished connection raises what ``dropped`` makes (a
:class:`~agents.base.DeviceUnavailable`); a deadline passed raises :class:`DeadlinePassed`.
Both refusals are :class:`~agents.base.RunFailed` (retryable): the next try starts a fresh process.

Example (not run here: it needs a connected paramiko client):
    >>> channel = client.get_transport().open_session()  # doctest: +SKIP
    >>> channel.exec_command("echo hello")  # doctest: +SKIP
    >>> RemoteProcess(channel, client.get_transport(), time.monotonic, dropped).read_line(time.monotonic() + 5)  # doctest: +SKIP
    'hello'
"""

from __future__ import annotations

import time
from typing import Callable

import paramiko

from agents.base import DeviceUnavailable, RunFailed

__all__ = ["DEFAULT_MAX_LINE_BYTES", "DeadlinePassed", "LineTooLong", "RemoteProcess"]

#: The longest stdout line kept by default (a runner's result is a few kB; a long run's a few MB).
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_STDERR_KEPT_BYTES = 1 << 16
_CHUNK_BYTES = 1 << 16
_POLL_S = 0.02


class DeadlinePassed(RunFailed):
    """The remote command did not print a line (or exit) before the deadline."""


class LineTooLong(RunFailed):
    """The remote command printed more than ``max_line_bytes`` without a newline."""


class RemoteProcess:
    """One command on the device; see the module docstring.

    Args:
        channel: the session channel the command was started on.
        transport: its transport, watched for a dropped connection.
        clock: monotonic seconds, compared with the deadlines given to :meth:`read_line` / :meth:`wait`.
        dropped: makes the error for a vanished connection (given the low-level cause, if any).
        max_line_bytes: the longest stdout line accepted, and the most stdout :meth:`wait` keeps.
    """

    def __init__(
        self,
        channel: paramiko.Channel,
        transport: paramiko.Transport,
        clock: Callable[[], float],
        dropped: Callable[[BaseException | None], DeviceUnavailable],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.channel = channel
        self.transport = transport
        self.clock = clock
        self.dropped = dropped
        self.max_line_bytes = max_line_bytes
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_truncated = False
        self.pid: int | None = None

    def alive(self) -> bool:
        """Whether the command is still running on a live connection."""
        return self.transport.is_active() and not self.channel.closed and not self.channel.exit_status_ready()

    def send_line(self, data: bytes) -> None:
        """Write ``data`` and a newline to the command's stdin."""
        try:
            self.channel.sendall(data + b"\n")
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error

    def close_stdin(self) -> None:
        """Signal end of input to the command."""
        try:
            self.channel.shutdown_write()
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error

    def read_line(self, deadline: float) -> str | None:
        """The next stdout line (without its newline), or ``None`` once the process has exited without one.

        Raises :class:`LineTooLong` as soon as more than ``max_line_bytes`` arrive without a newline.
        """
        searched = 0
        while (end := self.stdout.find(b"\n", searched)) < 0:
            if len(self.stdout) > self.max_line_bytes:
                self._refuse_long_line()
            searched = len(self.stdout)
            if not self._pump(deadline):
                return None
        if end > self.max_line_bytes:
            self._refuse_long_line()
        line = bytes(self.stdout[:end])
        del self.stdout[: end + 1]
        return line.decode(errors="replace")

    def wait(self, deadline: float) -> int:
        """Read everything until the process exits (keeping at most ``max_line_bytes`` of stdout); its exit status."""
        while self._pump(deadline):
            if len(self.stdout) > self.max_line_bytes:
                del self.stdout[self.max_line_bytes:]
                self.stdout_truncated = True
        status = self.channel.recv_exit_status()
        self.channel.close()
        if status == -1:  # the channel closed with no exit status: the connection went away
            raise self.dropped(None)
        return status

    def stderr_tail(self, lines: int = 5) -> str:
        """The last ``lines`` lines of stderr joined with `` | ``: one line for a message."""
        return " | ".join(self.stderr.decode(errors="replace").strip().splitlines()[-lines:])

    def close(self) -> None:
        """Close the channel (the command sees its stdin end); never raises."""
        try:
            self.channel.close()
        except (paramiko.SSHException, EOFError, OSError):
            pass

    def _refuse_long_line(self) -> None:
        self.stdout.clear()  # the rest of that line would be read as the next one
        raise LineTooLong(f"the device printed a line of more than {self.max_line_bytes} bytes")

    def _pump(self, deadline: float) -> bool:
        """Move available output into the buffers; False once the process has exited and all is read."""
        channel = self.channel
        try:
            while True:
                progressed = False
                while channel.recv_ready() and len(self.stdout) <= self.max_line_bytes:
                    self.stdout += channel.recv(_CHUNK_BYTES)
                    progressed = True
                while channel.recv_stderr_ready():
                    self.stderr += channel.recv_stderr(_CHUNK_BYTES)
                    del self.stderr[: max(0, len(self.stderr) - _STDERR_KEPT_BYTES)]
                    progressed = True
                if progressed:
                    return True
                if channel.exit_status_ready() and not channel.recv_ready():
                    if channel.recv_exit_status() == -1:
                        raise self.dropped(None)
                    return False
                if not self.transport.is_active() or channel.closed:
                    raise self.dropped(None)
                if self.clock() > deadline:
                    raise DeadlinePassed("the device did not answer before the deadline")
                time.sleep(_POLL_S)
        except (paramiko.SSHException, EOFError, OSError) as error:
            raise self.dropped(error) from error
