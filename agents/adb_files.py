"""The campaign's files on the phone: a private folder, atomic pushes, and sha256 checks before each use.

Anyone else who can reach the phone's shell could plant or swap a file the farm is about
to run. So:

- ``adb.workdir`` is refused when it is a symlink and made mode 0700 (``chmod`` fails,
  and the workdir is refused, when the shell user does not own it); each campaign's
  folder in it is created fresh with ``mkdir -m 700`` after removing whatever was there.
- A file is pushed to an exclusive random ``.part`` name (adbd replaces, never follows,
  whatever is there) and then renamed with ``mv``; it is never reused because of its size,
  only when the phone's ``sha256sum`` of it equals the local sha256.
- :meth:`RemoteFiles.verify` hashes files on the phone right before they are used; a
  mismatch is :class:`RemoteFileMismatch` naming the file and both hashes.

Every path is ``shlex.quote``-d. ``sha256sum`` output is parsed strictly
(:func:`parse_sha256sum`): 64 lowercase hex digits, two separators, the path.

Example:
    >>> digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    >>> parse_sha256sum(f"{digest}  /data/local/tmp/a b.ptl\\n", ["/data/local/tmp/a b.ptl"])
    {'/data/local/tmp/a b.ptl': '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'}
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from pathlib import Path
from typing import Mapping, Sequence

from agents.adb_connection import ADBConnection
from agents.adb_settings import ADBConfigError
from agents.base import DeviceUnavailable, RunFailed

__all__ = ["RemoteFileMismatch", "RemoteFiles", "UnsafeWorkdir", "parse_sha256sum"]

_SHA256_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


class UnsafeWorkdir(ADBConfigError):
    """``adb.workdir`` cannot be made private to the shell user (a symlink, another owner). Permanent."""


class RemoteFileMismatch(DeviceUnavailable):
    """A file on the phone no longer has the sha256 it was checked with: replaced or damaged.

    Not retryable: the farm stops using the device until a person has looked at it.
    """

    retryable = False


def parse_sha256sum(text: str, paths: Sequence[str]) -> dict[str, str]:
    """``sha256sum PATH...`` output -> path -> hex digest, for the ``paths`` asked about that it lists.

    Lines that are not ``<64 hex>  <path>`` (error messages for missing files, anything a
    hostile phone prints) are ignored, so a missing path is simply absent from the result.
    """
    wanted = set(paths)
    digests: dict[str, str] = {}
    for line in text.splitlines():
        match = _SHA256_LINE.fullmatch(line.rstrip("\r"))
        if match and match.group(2) in wanted:
            digests.setdefault(match.group(2), match.group(1))
    return digests


class RemoteFiles:
    """Files of one campaign in its private folder on the phone (see the module docstring)."""

    def __init__(self, connection: ADBConnection) -> None:
        self.connection = connection
        self.settings = connection.settings
        self.ready = False

    @property
    def folder(self) -> str:
        """The campaign's folder on the phone."""
        return self.settings.remote_dir

    def _unsafe(self, why: str) -> UnsafeWorkdir:
        return UnsafeWorkdir(f"device {self.settings.name!r}: adb.workdir {self.settings.workdir}: {why}; remove it "
                             "on the phone or set adb.workdir to a folder of the shell user (made mode 0700)")

    def prepare_folder(self) -> None:
        """Make the workdir private (mode 0700, not a symlink) and create the campaign folder fresh, once."""
        if self.ready:
            return
        workdir = shlex.quote(self.settings.workdir.rstrip("/") or "/")
        if self.connection.shell(f"test -L {workdir}").status == 0:
            raise self._unsafe("is a symlink")
        made = self.connection.shell(f"mkdir -p {workdir} && chmod 700 {workdir}")
        if made.status != 0:
            raise self._unsafe(f"cannot be made private ({made.output.strip()[:200] or f'status {made.status}'})")
        folder, parent = shlex.quote(self.folder), shlex.quote(posixpath.dirname(self.folder) or "/")
        fresh = self.connection.shell(f"rm -rf {folder} && mkdir -p {parent} && mkdir -m 700 {folder}")
        if fresh.status != 0:
            raise self._unsafe(f"cannot create a fresh {self.folder} "
                               f"({fresh.output.strip()[:200] or f'status {fresh.status}'})")
        self.ready = True

    def hashes(self, paths: Sequence[str]) -> dict[str, str]:
        """The phone's sha256 of each of ``paths`` that exists and is readable."""
        result = self.connection.shell("sha256sum " + " ".join(shlex.quote(path) for path in paths),
                                       what=f"sha256sum of {len(paths)} file(s)")
        return parse_sha256sum(result.output, paths)

    def push(self, local: Path, digest: str, name: str) -> str:
        """Put ``local`` (whose sha256 is ``digest``) at ``<folder>/<name>``; return that path.

        A file already there is kept only when the phone hashes it to ``digest``.
        A push that arrives damaged is :class:`RunFailed` (retryable).
        """
        self.prepare_folder()
        remote = f"{self.folder}/{name}"
        if self.hashes([remote]).get(remote) == digest:
            return remote
        partial = f"{self.folder}/.{name}.{secrets.token_hex(8)}.part"
        self.connection.push(local, partial)
        moved = self.connection.shell(f"mv -f {shlex.quote(partial)} {shlex.quote(remote)}")
        if moved.status != 0:
            self.connection.shell(f"rm -f {shlex.quote(partial)}")
            raise RunFailed(f"device {self.settings.name!r}: cannot rename {partial} to {remote}: "
                            f"{moved.output.strip()[:200]}")
        arrived = self.hashes([remote]).get(remote)
        if arrived != digest:
            raise RunFailed(f"device {self.settings.name!r}: pushed {local.name} to {remote}, but the phone hashes "
                            f"it {arrived or 'not at all'}, not {digest}: the transfer was damaged; the farm retries")
        return remote

    def verify(self, expected: Mapping[str, str], *, purpose: str) -> None:
        """Hash ``expected``'s paths on the phone now; raise :class:`RemoteFileMismatch` unless all match."""
        found = self.hashes(list(expected))
        for path, digest in expected.items():
            if found.get(path) != digest:
                raise RemoteFileMismatch(
                    f"device {self.settings.name!r}: {path} on the phone has sha256 {found.get(path, 'none (missing)')}"
                    f", expected {digest}; it was replaced or damaged since it was checked; refusing {purpose}")

    def remove_folder(self) -> None:
        """Remove the campaign's folder from the phone."""
        self.connection.shell(f"rm -rf {shlex.quote(self.folder)}", timeout_s=self.settings.connect_timeout_s)
        self.ready = False
