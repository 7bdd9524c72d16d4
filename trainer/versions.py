"""The versioned predictor registry: ``<root>/<space>/<target>/v<N>/`` plus a ``current`` pointer.

Layout::

    registry/
      nasbench201/
        _pretrained/              # BASE: the space's pre-trained (source) predictor
          v1/ v2/                 # each a predictor directory (trainer.registry) + version.json
          current -> v2           # relative symlink, replaced atomically
          history.jsonl           # append-only: add, promote, rollback, refuse (with reasons)
        pixel2/
          v1/ v2/ v3/  current -> v3  history.jsonl

- :meth:`PredictorRegistry.add` moves a complete predictor directory into the
  next ``v<N>`` (staged as a dot-directory, then one ``rename``), with a
  ``version.json`` beside the manifest (metrics on the held-out slice, note,
  time). It refuses a predictor whose manifest does not record that it
  excluded the held-out slice (:func:`trainer.holdout.unmarked_reason`).
  A new version is not current until :meth:`~PredictorRegistry.promote`.
- ``current`` is a symlink ``current -> vN`` switched by creating a temporary
  symlink and ``os.replace``-ing it over ``current``, then fsyncing the
  folder: after a crash at any point a reader sees the old or the new
  pointer, never a missing or half-written one, and ``trainer predict
  --predictor registry/S/T/current`` works directly.
- Every add / promote / rollback / refusal appends one JSON line to
  ``history.jsonl`` (fsynced); readers skip a torn last line.
- Mutations hold ``<root>/.registry.lock`` (:class:`trainer.lock.FileLock`)
  so concurrent writers (``trainer nightly``, ``farm add-device``) never pick
  the same version number.

Example:
    >>> import tempfile
    >>> from trainer import holdout, registry
    >>> from trainer.models import get_method
    >>> work = Path(tempfile.mkdtemp())
    >>> folder = registry.save(get_method("flops")("nasbench201"), work / "p",
    ...                        registry.ManifestUpdate("pretrain", event=holdout.MARKER))
    >>> store = PredictorRegistry(work / "registry")
    >>> version = store.add("nasbench201", BASE, folder, note="first")
    >>> store.promote("nasbench201", BASE, version.number, reason="first version")
    >>> store.current("nasbench201", BASE).number, store.entries()
    (1, [('nasbench201', '_pretrained')])
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from farm import atomic
from farm.errors import UserError
from trainer import holdout, registry
from trainer.lock import FileLock

#: The target name under which a space's pre-trained (source) predictor is versioned.
BASE = "_pretrained"
CURRENT = "current"
HISTORY = "history.jsonl"
VERSION_FILE = "version.json"
LOCK_FILE = ".registry.lock"
#: How long a mutation waits for another writer's registry lock.
LOCK_WAIT_S = 60.0
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:+=-]*$")


class VersionError(UserError):
    """A registry request that cannot be met (unknown target or version, a predictor it refuses): one line, exit 2."""


@dataclass(frozen=True)
class Version:
    """One registered predictor of a (space, target)."""

    number: int
    path: Path
    created_at: str
    summary: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def name(self) -> str:
        """``v<N>``"""
        return f"v{self.number}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"version": self.number, "name": self.name, "path": str(self.path), "created_at": self.created_at,
                "summary": self.summary, "metrics": self.metrics, "note": self.note}


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a safe single path component (letters, digits, ``_ . : + = -``); :class:`VersionError` else."""
    if not _NAME.fullmatch(name):
        raise VersionError(f"{kind} {name!r}: not a valid name (letters, digits and _ . : + = - only, not starting with . or -)")
    return name


def manifest_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a manifest ``registry list`` shows: method, sources, targets, samples, seed."""
    return {"method": manifest.get("method"), "space": manifest.get("space"), "sources": manifest.get("sources", []),
            "targets": manifest.get("targets", []), "samples": manifest.get("samples", {}),
            "seed": manifest.get("seed"), "package_version": manifest.get("package_version")}


class PredictorRegistry:
    """Versioned predictors with an atomically switched ``current`` per (space, target)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ reading
    def folder(self, space: str, target: str) -> Path:
        """``<root>/<space>/<target>`` (names checked)."""
        return self.root / check_name("space", space) / check_name("target", target)

    def entries(self) -> list[tuple[str, str]]:
        """(space, target) pairs with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        pairs = []
        for space_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for target_dir in sorted(p for p in space_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if any(_VERSION_DIR.match(p.name) for p in target_dir.iterdir()):
                    pairs.append((space_dir.name, target_dir.name))
        return pairs

    def versions(self, space: str, target: str) -> list[Version]:
        """All versions of (space, target), oldest first (empty when none)."""
        folder = self.folder(space, target)
        if not folder.is_dir():
            return []
        numbered = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _VERSION_DIR.match(p.name)) and p.is_dir())
        return [self._version(number, path) for number, path in numbered]

    def version(self, space: str, target: str, number: int) -> Version:
        """Version ``number``; :class:`VersionError` naming the existing ones otherwise."""
        path = self.folder(space, target) / f"v{number}"
        if not path.is_dir():
            known = ", ".join(v.name for v in self.versions(space, target)) or "none"
            raise VersionError(f"{path}: no version v{number} of {space}/{target}; versions: {known}")
        return self._version(number, path)

    def current(self, space: str, target: str) -> Version | None:
        """The promoted version, or ``None`` before the first promotion."""
        pointer = self.folder(space, target) / CURRENT
        if not pointer.is_symlink():
            return None
        match = _VERSION_DIR.match(os.readlink(pointer))
        if not match:
            raise VersionError(f"{pointer}: points to {os.readlink(pointer)!r}, not a v<N> folder; "
                               f"fix it with `trainer registry rollback {target} --to vN`")
        return self.version(space, target, int(match.group(1)))

    def history(self, space: str, target: str) -> list[dict[str, Any]]:
        """The events of ``history.jsonl``, oldest first (a torn last line is skipped)."""
        path = self.folder(space, target) / HISTORY
        if not path.is_file():
            return []
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    # ------------------------------------------------------------------ writing
    def add(self, space: str, target: str, predictor_dir: Path, *, metrics: Mapping[str, Any] | None = None,
            note: str = "") -> Version:
        """Move the complete predictor directory ``predictor_dir`` into ``v<N+1>`` (not promoted).

        Raises :class:`VersionError` when it is not a loadable predictor of
        ``space``, or its manifest does not record excluding the held-out slice.
        """
        source = Path(predictor_dir)
        manifest = registry.load(source)[1]  # a full load: checksum verified before anything moves
        if manifest["space"] != space:
            raise VersionError(f"{source}: a predictor of space {manifest['space']!r}, not {space!r}")
        reason = holdout.unmarked_reason(manifest)
        if reason is not None:
            raise VersionError(f"{source}: refused: {reason}; train it with `trainer nightly` (or farm add-device), "
                               "which drop the held-out archs")
        folder = self.folder(space, target)
        folder.mkdir(parents=True, exist_ok=True)
        with self._locked():
            number = max((v.number for v in self.versions(space, target)), default=0) + 1
            staging = folder / f".incoming-{uuid.uuid4().hex[:8]}"
            _move_dir(source, staging)
            record = {"version": number, "created_at": registry.now_iso(), "metrics": dict(metrics or {}),
                      "note": note, "from": str(source)}
            write_json_atomic(staging / VERSION_FILE, record)
            os.replace(staging, folder / f"v{number}")
            _fsync_dir(folder)
            self.record(space, target, {"action": "add", "version": number, "note": note, "metrics": dict(metrics or {})})
        return self.version(space, target, number)

    def promote(self, space: str, target: str, number: int, *, reason: str) -> None:
        """Make ``v<number>`` current (atomic switch) and log why; the version must load (checksum)."""
        self._switch(space, target, number, {"action": "promote", "reason": reason})

    def rollback(self, space: str, target: str, to: int | None = None) -> Version:
        """Make an earlier version current: ``to``, or the newest older version that was ever current.

        Raises :class:`VersionError` when there is no current version or no earlier promoted one.
        """
        now = self.current(space, target)
        if now is None:
            raise VersionError(f"{self.folder(space, target)}: nothing is current yet, so there is nothing to roll back")
        if to is None:
            promoted = {int(e["version"]) for e in self.history(space, target)
                        if e.get("action") in ("promote", "rollback") and isinstance(e.get("version"), int)}
            earlier = sorted(n for n in promoted if n < now.number and (self.folder(space, target) / f"v{n}").is_dir())
            if not earlier:
                raise VersionError(f"{space}/{target}: no version older than {now.name} was ever current; "
                                   "pass --to vN to choose one")
            to = earlier[-1]
        if to == now.number:
            raise VersionError(f"{space}/{target}: v{to} is already current")
        self._switch(space, target, to, {"action": "rollback", "reason": f"rollback from {now.name}"})
        return self.version(space, target, to)

    def record(self, space: str, target: str, event: Mapping[str, Any]) -> None:
        """Append one event (``at``, ``pid``, ``host`` added) to ``history.jsonl`` and fsync it."""
        folder = self.folder(space, target)
        folder.mkdir(parents=True, exist_ok=True)
        append_jsonl(folder / HISTORY, {"at": registry.now_iso(), **event, "pid": os.getpid(), "host": socket.gethostname()})

    # ------------------------------------------------------------------ internals
    def _switch(self, space: str, target: str, number: int, event: dict[str, Any]) -> None:
        folder = self.folder(space, target)
        with self._locked():
            registry.load(self.version(space, target, number).path)  # never point at a corrupt version
            before = self.current(space, target)
            temporary = folder / f".{CURRENT}.tmp-{uuid.uuid4().hex[:8]}"
            os.symlink(f"v{number}", temporary)
            os.replace(temporary, folder / CURRENT)
            _fsync_dir(folder)
            self.record(space, target, {**event, "version": number, "previous": before.number if before else None})

    def _version(self, number: int, path: Path) -> Version:
        record = _read_json(path / VERSION_FILE)
        manifest = registry.read_manifest(path)
        return Version(number, path, str(record.get("created_at") or manifest.get("created_at", "")),
                       manifest_summary(manifest), dict(record.get("metrics") or {}), str(record.get("note") or ""))

    def _locked(self) -> FileLock:
        return FileLock(self.root / LOCK_FILE, wait_s=LOCK_WAIT_S)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` as JSON (:func:`farm.atomic.write_json_atomic`, indented as the registry's)."""
    atomic.write_json_atomic(data, path, indent=2)


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line (``O_APPEND``, one ``write``, fsync): never rewrites earlier lines."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record, default=str) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_dir(source: Path, destination: Path) -> None:
    """Rename (same file system) or copy then remove (across file systems)."""
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.copytree(source, destination)
        shutil.rmtree(source)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["BASE", "CURRENT", "HISTORY", "PredictorRegistry", "Version", "VersionError", "check_name", "manifest_summary",
           "append_jsonl", "write_json_atomic"]
