"""One campaign at a time per store and per local device: advisory ``flock`` locks that name their holder.

Two campaigns started together on one store would both plan before either
stored a row, and measure (and store) every arch twice; two campaigns on two
stores that list the same local CPU would measure on the same cores at once.
So a campaign holds, for its whole run (plan to final record):

* the **store lock**, ``<store>/.lock``;
* a **device lock** per device measured on this host (kind ``cpu`` or ``cuda``
  without a ``node:``), ``~/.cache/latfarm/locks/<device>.lock``.

Each is an exclusive ``fcntl.flock`` on that file, which holds one JSON line
naming the holder (pid, host, campaign id, store, start time), so whoever finds
it taken can say whom it waits for. The kernel drops a ``flock`` when its
process ends, however it ends (``kill -9`` included), so a lock left by a dead
campaign never blocks: the file stays, the lock does not. The file is never
deleted (deleting a locked file would let a second opener lock a new file).
Locks are taken store first, then devices in name order, so two campaigns
never wait for each other in a circle. On NFS, Linux maps ``flock`` to NFS
byte-range locks, so campaigns on two hosts sharing a store exclude each other too.

Example:
    >>> import tempfile
    >>> store = tempfile.mkdtemp()
    >>> with lock_campaign(store, [], "c-1", lock_dir=tempfile.mkdtemp()) as held:
    ...     try:
    ...         lock_campaign(store, [], "c-2", lock_dir=tempfile.mkdtemp())
    ...     except LockBusy as busy:
    ...         print(busy.holder.campaign_id, "holds it;", "is locked by campaign c-1" in str(busy))
    c-1 holds it; True
    >>> with lock_campaign(store, [], "c-2", lock_dir=tempfile.mkdtemp()):  # released: free again
    ...     pass
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from farm.errors import UserError

if TYPE_CHECKING:
    from farm.inventory import Device

__all__ = [
    "CampaignLocks",
    "LOCAL_KINDS",
    "LockBusy",
    "LockHolder",
    "STORE_LOCK_NAME",
    "WaitNotice",
    "default_lock_dir",
    "device_lock_path",
    "local_devices",
    "lock_campaign",
    "lock_encodings",
    "store_lock_path",
]

#: The store lock's file name inside the store folder (hidden: readers skip names starting with ".").
STORE_LOCK_NAME = ".lock"
#: The encodings table's lock (``farm encode``), apart from the store lock: proxies and measurements
#: go to different tables, so an encode run and a campaign may share a store.
ENCODE_LOCK_NAME = ".encode.lock"
#: Device kinds measured on the driver's host when the inventory names no ``node``.
LOCAL_KINDS = ("cpu", "cuda")
#: A holder file is one short JSON line; anything longer is not ours and is not read further.
_MAX_HOLDER_BYTES = 4096
_MAX_FIELD_CHARS = 200
#: How long a reader waits for a fresh holder to write its name before calling it unknown.
_HOLDER_WRITE_GRACE_S = 0.5


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: written into the lock file by the holder, read by whoever finds the lock taken.

    Example:
        >>> holder = LockHolder(pid=42, host="bench", campaign_id="c-1", store="m", started_at="2025-01-01T00:00:00Z")
        >>> holder.describe()
        'campaign c-1 (pid 42 on host bench, store m, since 2025-01-01T00:00:00Z)'
        >>> LockHolder.from_text(holder.to_text()) == holder
        True
        >>> LockHolder.from_text('{"pid": "x"}') is None
        True
    """

    pid: int
    host: str
    campaign_id: str
    store: str
    started_at: str

    @classmethod
    def now(cls, campaign_id: str, store: str | os.PathLike[str]) -> "LockHolder":
        """This process, holding a lock for ``campaign_id`` on ``store`` from now on."""
        return cls(
            pid=os.getpid(), host=socket.gethostname(), campaign_id=campaign_id, store=str(Path(store).absolute()),
            started_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def to_text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def from_text(cls, text: str) -> "LockHolder | None":
        """The holder a lock file names, or ``None`` when it is empty, garbled or not ours (it is untrusted)."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if type(pid) is not int or not 0 < pid < 2**32:
            return None
        fields = {name: data.get(name) for name in ("host", "campaign_id", "store", "started_at")}
        if not all(isinstance(value, str) for value in fields.values()):
            return None
        return cls(pid=pid, **{name: _one_line(value) for name, value in fields.items()})  # type: ignore[arg-type]

    def describe(self) -> str:
        """One phrase for a message: the campaign, its process and where it runs."""
        return f"campaign {self.campaign_id} (pid {self.pid} on host {self.host}, store {self.store}, since {self.started_at})"


@dataclass(frozen=True)
class WaitNotice:
    """What a waiting campaign is told: which lock, who holds it (``None``: unknown), how long it will still wait."""

    what: str
    path: Path
    holder: LockHolder | None
    wait_left_s: float

    def render(self) -> str:
        """One line for the operator.

        Example:
            >>> WaitNotice("store m", Path("m/.lock"), None, 59.6).render()
            'waiting up to 60 s for store m (m/.lock), locked by another process that has not said who it is'
        """
        return f"waiting up to {self.wait_left_s:.0f} s for {self.what} ({self.path}), locked by {_who(self.holder)}"


class LockBusy(UserError):
    """A lock another campaign holds (after waiting as long as allowed): one line naming the holder."""

    def __init__(self, message: str, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.holder = holder


class _FileLock:
    """An exclusive ``flock`` on one file that names its holder; ``what`` says what it guards, in messages."""

    def __init__(self, path: Path, what: str, why: str) -> None:
        self.path = path
        self.what = what
        self.why = why
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, holder: LockHolder) -> bool:
        """Take the lock without waiting and write ``holder`` into it; ``False`` when another process holds it."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as error:
            os.close(fd)
            raise UserError(
                f"{self.path}: cannot lock {self.what} ({error.strerror or error}); the file system must support "
                "flock (local disks and NFS do): put the store on one that does"
            ) from None
        if not self._is_current(fd):  # removed or replaced between open and flock: lock the file that is there now
            os.close(fd)
            return self.try_acquire(holder)
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.to_text().encode(), 0)
        return True

    def holder(self, *, grace_s: float = _HOLDER_WRITE_GRACE_S) -> LockHolder | None:
        """Who holds the lock now, as its file says (a fresh holder gets ``grace_s`` to write its name)."""
        deadline = time.monotonic() + grace_s
        while True:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                return None
            try:
                text = os.read(fd, _MAX_HOLDER_BYTES).decode("utf-8", errors="replace")
            finally:
                os.close(fd)
            holder = LockHolder.from_text(text)
            if holder is not None or time.monotonic() >= deadline:
                return holder
            time.sleep(0.05)

    def release(self) -> None:
        """Clear the holder's name, then drop the lock (the file stays; see the module docstring)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def busy_line(self, holder: LockHolder | None, waited_s: float) -> str:
        """The refusal: which lock, who holds it, why that matters, what to do."""
        state = f"is still locked after waiting {waited_s:.0f} s" if waited_s > 0 else "is locked"
        return (
            f"{self.path}: {self.what} {state} by {_who(holder)}; {self.why}: "
            "let it finish (or stop it), or pass --wait-for-lock SECONDS to wait for it"
        )

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as error:
            if error.errno == errno.ELOOP:
                problem, fix = "is a symbolic link", "remove it (latfarm creates the lock file itself)"
            elif error.errno == errno.EISDIR:
                problem, fix = "is a folder", "remove it (latfarm creates the lock file itself)"
            else:
                problem = f"cannot open the lock file of {self.what} ({error.strerror or error})"
                fix = "make it writable by this user, or remove it while no campaign runs"
            raise UserError(f"{self.path}: {problem}; {fix}") from None

    def _is_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _who(holder: LockHolder | None) -> str:
    return holder.describe() if holder is not None else "another process that has not said who it is"


def _one_line(text: str) -> str:
    """An untrusted name made safe for a one-line message: printable, bounded."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned if len(cleaned) <= _MAX_FIELD_CHARS else cleaned[:_MAX_FIELD_CHARS] + "..."


def store_lock_path(store: str | os.PathLike[str]) -> Path:
    """The store lock's file: ``<store>/.lock``."""
    return Path(store) / STORE_LOCK_NAME


def default_lock_dir() -> Path:
    """Where device locks live: ``~/.cache/latfarm/locks`` (per user; one host's cores are one user's to lock)."""
    return Path.home() / ".cache" / "latfarm" / "locks"


def device_lock_path(name: str, lock_dir: str | os.PathLike[str] | None = None) -> Path:
    """A device lock's file: ``<lock_dir>/<device>.lock`` (device names are slugs, so safe as file names)."""
    return Path(lock_dir if lock_dir is not None else default_lock_dir()) / f"{name}.lock"


def local_devices(devices: Iterable["Device"]) -> list["Device"]:
    """The devices whose cores or GPU are on the driver's host: kind cpu/cuda with no ``node`` (sorted by name)."""
    return sorted((d for d in devices if d.kind in LOCAL_KINDS and not d.node), key=lambda d: d.name)


class CampaignLocks:
    """The locks one campaign holds (store, then its local devices); release with :meth:`release` or ``with``."""

    def __init__(self, store: str | os.PathLike[str], campaign_id: str, locks: Sequence[_FileLock]) -> None:
        self.store = Path(store)
        self.campaign_id = campaign_id
        self.locks = list(locks)

    @property
    def paths(self) -> list[Path]:
        return [lock.path for lock in self.locks]

    def covers(self, store: str | os.PathLike[str], campaign_id: str) -> bool:
        """Whether these are the locks of ``campaign_id`` on ``store``, all still held."""
        same_store = Path(store).absolute() == self.store.absolute()
        return same_store and campaign_id == self.campaign_id and all(lock.held for lock in self.locks)

    def release(self) -> None:
        """Drop every lock, devices first."""
        for lock in reversed(self.locks):
            lock.release()

    def __enter__(self) -> "CampaignLocks":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.release()


def lock_campaign(
    store: str | os.PathLike[str],
    devices: Iterable["Device"],
    campaign_id: str,
    *,
    wait_s: float = 0.0,
    on_wait: Callable[[WaitNotice], None] | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    poll_s: float = 0.25,
) -> CampaignLocks:
    """Take the store lock and the local devices' locks for ``campaign_id``, waiting up to ``wait_s`` in all.

    ``wait_s`` 0 refuses at once. While a lock is taken, ``on_wait`` is told whom the campaign waits
    for (again whenever the holder changes). Raises :class:`LockBusy` naming the holder when a lock
    is still taken once the wait is over; the locks already taken are released then. The store folder
    and the lock folder are created when missing.
    """
    holder = LockHolder.now(campaign_id, store)
    deadline = time.monotonic() + max(0.0, wait_s)
    local = local_devices(devices)
    folder = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    if local:
        _private_folder(folder)
    Path(store).mkdir(parents=True, exist_ok=True)
    wanted = [_FileLock(store_lock_path(store), f"store {store}", "two campaigns on one store measure every arch twice")]
    if local:
        wanted += [
            _FileLock(device_lock_path(d.name, folder), f"device {d.name}",
                      "two campaigns on one device measure on the same cores at once")
            for d in local
        ]
    taken: list[_FileLock] = []
    try:
        for lock in wanted:
            _acquire(lock, holder, deadline=deadline, wait_s=max(0.0, wait_s), on_wait=on_wait, poll_s=poll_s)
            taken.append(lock)
    except BaseException:
        for lock in reversed(taken):
            lock.release()
        raise
    return CampaignLocks(store, campaign_id, taken)


def lock_encodings(
    store: str | os.PathLike[str],
    run_id: str,
    *,
    wait_s: float = 0.0,
    on_wait: Callable[[WaitNotice], None] | None = None,
    poll_s: float = 0.25,
) -> CampaignLocks:
    """Take ``<store>/.encode.lock`` for one ``farm encode`` run, waiting up to ``wait_s``.

    Two runs on one store would both plan before either stored a row and compute every proxy twice.
    Raises :class:`LockBusy` naming the holder, like :func:`lock_campaign`; the store folder is created.

    Example:
        >>> import tempfile
        >>> store = tempfile.mkdtemp()
        >>> with lock_encodings(store, "encode-1"):
        ...     try:
        ...         lock_encodings(store, "encode-2")
        ...     except LockBusy as busy:
        ...         print(busy.holder.campaign_id, "compute every proxy twice" in str(busy))
        encode-1 True
    """
    Path(store).mkdir(parents=True, exist_ok=True)
    lock = _FileLock(Path(store) / ENCODE_LOCK_NAME, f"the encodings table of store {store}",
                     "two encode runs on one store compute every proxy twice")
    wait_s = max(0.0, wait_s)
    _acquire(lock, LockHolder.now(run_id, store), deadline=time.monotonic() + wait_s, wait_s=wait_s,
             on_wait=on_wait, poll_s=poll_s)
    return CampaignLocks(store, run_id, [lock])


def _acquire(
    lock: _FileLock, holder: LockHolder, *, deadline: float, wait_s: float,
    on_wait: Callable[[WaitNotice], None] | None, poll_s: float,
) -> None:
    announced: Any = ()
    while not lock.try_acquire(holder):
        current = lock.holder()
        now = time.monotonic()
        if now >= deadline:
            raise LockBusy(lock.busy_line(current, wait_s), current)
        if on_wait is not None and current != announced:
            on_wait(WaitNotice(lock.what, lock.path, current, deadline - now))
            announced = current
        time.sleep(min(poll_s, max(0.0, deadline - now)))


def _private_folder(folder: Path) -> None:
    """Create the device-lock folder (0700); refuse one that is a link, someone else's, or writable by others."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as error:
        raise UserError(f"{folder}: cannot create the device lock folder ({error.strerror or error}); "
                        "make ~/.cache writable by this user") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UserError(f"{folder}: the device lock folder is not a plain folder; remove it (latfarm creates it)")
    if info.st_uid != os.getuid():
        raise UserError(f"{folder}: the device lock folder belongs to uid {info.st_uid}, not to this user; remove it")
    if info.st_mode & 0o022:
        raise UserError(f"{folder}: the device lock folder is writable by others; run: chmod 700 {folder}")
