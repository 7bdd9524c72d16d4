"""A predictor on disk: a directory with ``manifest.json`` and ``weights.safetensors``.

``manifest.json`` (format 1)::

    {
      "format": 1,
      "method": "layerwise",             # trainer.models.METHODS name
      "space": "nasbench201",
      "sources": ["1080ti_1", ...],      # source targets it was pre-trained on
      "targets": ["pixel2"],             # targets it was transferred to, in order
      "normalisation": {"pixel2": {"kind": "zscore", "shift": 1.2, "scale": 0.3}},
      "samples": {"sources": {"1080ti_1": 900}, "targets": {"pixel2": 20}},
      "data_snapshot": {"sources": "<sha256>", "targets": {"pixel2": "<sha256>"}},
      "metrics": {"fit": {"pixel2": {"spearman": 0.97, "n": 20}}},
      "created_at": "2026-11-23T13:40:00+00:00",
      "package_version": "0.1.0",
      "seed": 0, "hyper": {...},
      "config": {...},                   # the predictor's JSON state (Predictor.state()[1])
      "weights": {"file": "weights.safetensors", "sha256": "..."},
      "history": [{"action": "pretrain", "at": "..."}, {"action": "transfer", "target": "pixel2", "at": "..."}]
    }

Weights are the predictor's tensors (``Predictor.state()[0]``) in safetensors,
which stores raw tensors only: loading never unpickles anything. The weights'
SHA-256 is checked on load, so a truncated or edited file is reported, not
half-loaded. The manifest is checked field by field before use (a field of the
wrong type is one :class:`RegistryError` line, never an ``AttributeError``),
and ``weights.file`` must name a regular file inside the predictor's folder: a
path (``../x``, ``/etc/x``) or a symbolic link is refused. A directory is written under a temporary name and renamed into
place, replacing an older predictor of the same name only once the new one is
complete.

Example:
    >>> import tempfile
    >>> from trainer.models import get_method
    >>> predictor = get_method("flops")("nasbench201")
    >>> folder = save(predictor, Path(tempfile.mkdtemp()) / "pred", ManifestUpdate("pretrain"))
    >>> load(folder)[1]["method"]
    'flops'
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from agents.hashing import file_sha256
from farm.errors import UserError
from trainer.models import UnknownMethod, get_method
from trainer.models.base import Predictor

FORMAT = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
_REQUIRED = ("format", "method", "space", "sources", "targets", "config", "weights")


class RegistryError(UserError):
    """A predictor directory that is missing, corrupt or of an unknown format: one line, exit 2."""


def package_version() -> str:
    """The installed latfarm version (the source tree's when not installed)."""
    try:
        from importlib.metadata import version

        return version("latfarm")
    except Exception:  # noqa: BLE001 - not installed: fall back to the source tree
        from farm import __version__

        return __version__


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normalisation_of(predictor: Predictor) -> dict[str, Any]:
    """Per-target normalisation parameters from ``predictor.scalers`` (``{}`` for methods fitting in ms)."""
    scalers = getattr(predictor, "scalers", None) or {}
    return {name: scaler.to_json() for name, scaler in scalers.items()}


@dataclass
class ManifestUpdate:
    """What one pretrain / transfer step adds to a manifest."""

    action: str
    sources: Sequence[str] = ()
    target: str | None = None
    samples: Mapping[str, int] = field(default_factory=dict)
    snapshot: str | None = None
    fit_metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: Recorded in this step's history event (e.g. :data:`trainer.holdout.MARKER`).
    event: Mapping[str, Any] = field(default_factory=dict)


def save(
    predictor: Predictor,
    folder: str | os.PathLike[str],
    update: ManifestUpdate,
    previous: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``predictor`` to ``folder`` atomically and return the folder.

    ``update`` says what this step did (``pretrain`` or ``transfer``);
    ``previous`` is the manifest of the predictor it was transferred from:
    its sources, samples, snapshots, metrics and history carry over.
    """
    final = Path(folder)
    tensors, config = predictor.state()
    manifest = _manifest(predictor, config, previous, update)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        weights = staging / WEIGHTS
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(weights))
        manifest["weights"] = {"file": WEIGHTS, "sha256": file_sha256(weights)}
        _write_json(staging / MANIFEST, manifest)
        _replace_dir(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def _manifest(
    predictor: Predictor, config: Mapping[str, Any], previous: Mapping[str, Any] | None, update: ManifestUpdate
) -> dict[str, Any]:
    prior = dict(previous or {})
    samples = {"sources": dict(prior.get("samples", {}).get("sources", {})),
               "targets": dict(prior.get("samples", {}).get("targets", {}))}
    snapshots = {"sources": prior.get("data_snapshot", {}).get("sources"),
                 "targets": dict(prior.get("data_snapshot", {}).get("targets", {}))}
    metrics = {"fit": dict(prior.get("metrics", {}).get("fit", {}))}
    targets = list(prior.get("targets", []))
    sources = list(prior.get("sources", [])) or list(update.sources)
    if update.action == "pretrain":
        samples["sources"] = dict(update.samples)
        snapshots["sources"] = update.snapshot
    elif update.target is not None:
        targets = [t for t in targets if t != update.target] + [update.target]
        samples["targets"][update.target] = int(update.samples.get(update.target, 0))
        snapshots["targets"][update.target] = update.snapshot
    metrics["fit"].update({k: dict(v) for k, v in update.fit_metrics.items()})
    event: dict[str, Any] = {"action": update.action, "at": now_iso(), **update.event}
    if update.target is not None:
        event["target"] = update.target
    return {
        "format": FORMAT,
        "method": predictor.method,
        "space": predictor.space,
        "sources": sources,
        "targets": targets,
        "normalisation": normalisation_of(predictor),
        "samples": samples,
        "data_snapshot": snapshots,
        "metrics": metrics,
        "created_at": now_iso(),
        "package_version": package_version(),
        "seed": predictor.seed,
        "hyper": _jsonable(predictor.hyper),
        "config": _jsonable(config),
        "history": [*prior.get("history", []), event],
    }


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated manifest of a predictor directory; :class:`RegistryError` otherwise."""
    path = Path(folder)
    hint = "re-create it with `trainer pretrain` / `trainer transfer`"
    if not path.is_dir():
        raise RegistryError(f"{path}: no such predictor directory; pass the --out of `trainer pretrain` or `trainer transfer`")
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{manifest_path}: missing; {path} is not a predictor directory ({hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise RegistryError(f"{manifest_path}: not valid JSON ({type(error).__name__}: {error}); the predictor is "
                            f"corrupt, {hint}") from None
    except OSError as error:
        raise RegistryError(f"{manifest_path}: cannot read ({error.strerror or error}); {hint}") from None
    if not isinstance(manifest, dict):
        raise RegistryError(f"{manifest_path}: expected a JSON object; the predictor is corrupt, {hint}")
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise RegistryError(f"{manifest_path}: field {missing[0]!r} is missing; the predictor is corrupt, {hint}")
    if manifest["format"] != FORMAT:
        raise RegistryError(
            f"{manifest_path}: field 'format': {manifest['format']!r} is not supported (this trainer reads {FORMAT}); "
            "use the trainer version that wrote it or re-create the predictor"
        )
    _check_fields(manifest, manifest_path, hint)
    return manifest


#: Optional manifest fields and the JSON type each must have when present (``None`` allowed).
_OPTIONAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "normalisation": dict, "samples": dict, "data_snapshot": dict, "metrics": dict, "hyper": dict, "history": list,
    "seed": int, "created_at": str, "package_version": str,
}
#: Mappings nested in optional fields that :func:`save` reads when it carries a manifest over.
_NESTED_MAPPINGS: tuple[tuple[str, str], ...] = (
    ("samples", "sources"), ("samples", "targets"), ("data_snapshot", "targets"), ("metrics", "fit"),
)


def _check_fields(manifest: Mapping[str, Any], manifest_path: Path, hint: str) -> None:
    """Every field a reader uses has the type it expects; ``weights.file`` is a plain file name."""

    def refuse(field_name: str, what: str) -> RegistryError:
        return RegistryError(f"{manifest_path}: field {field_name!r}: {what}; the predictor is corrupt, {hint}")

    for name in ("method", "space"):
        if not isinstance(manifest[name], str) or not manifest[name]:
            raise refuse(name, f"expected a name, got {_short(manifest[name])}")
    for name in ("sources", "targets"):
        value = manifest[name]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise refuse(name, f"expected a list of target names, got {_short(value)}")
    if not isinstance(manifest["config"], dict):
        raise refuse("config", f"expected an object, got {_short(manifest['config'])}")
    weights = manifest["weights"]
    if not isinstance(weights, dict):
        raise refuse("weights", f"expected an object with file and sha256, got {_short(weights)}")
    file_name = weights.get("file", WEIGHTS)
    if not isinstance(file_name, str) or file_name in ("", ".", "..") or Path(file_name).name != file_name \
            or "\\" in file_name or Path(file_name).is_absolute():
        raise refuse("weights.file", f"{_short(file_name)} is not a file name inside the predictor's folder "
                     "(no paths: weights never load from elsewhere)")
    if not isinstance(weights.get("sha256"), str):
        raise refuse("weights.sha256", f"expected a hex digest, got {_short(weights.get('sha256'))}")
    for name, kind in _OPTIONAL_TYPES.items():
        value = manifest.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise refuse(name, f"expected {'a list' if kind is list else 'an object' if kind is dict else kind.__name__}"
                         f", got {_short(value)}")
    for outer, inner in _NESTED_MAPPINGS:
        value = (manifest.get(outer) or {}).get(inner)
        if value is not None and not isinstance(value, dict):
            raise refuse(f"{outer}.{inner}", f"expected an object, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load(folder: str | os.PathLike[str]) -> tuple[Predictor, dict[str, Any]]:
    """(predictor, manifest) from a directory written by :func:`save`.

    Raises :class:`RegistryError` naming the file and what is wrong for a
    missing directory, a missing/invalid manifest, an unknown method, weights
    whose checksum does not match or that safetensors cannot read.
    """
    path = Path(folder)
    manifest = read_manifest(path)
    hint = "re-create it with `trainer pretrain` / `trainer transfer`"
    try:
        cls = get_method(manifest["method"])
    except UnknownMethod as error:
        raise RegistryError(f"{path / MANIFEST}: field 'method': {error}") from None
    weights_info = manifest["weights"]
    weights = path / str(weights_info.get("file", WEIGHTS))
    if weights.is_symlink():
        raise RegistryError(f"{weights}: is a symbolic link; a predictor's weights must be a regular file inside its "
                            f"folder, {hint}")
    if not weights.is_file():
        raise RegistryError(f"{weights}: missing; the predictor is corrupt, {hint}")
    expected = weights_info.get("sha256")
    if expected != file_sha256(weights):
        raise RegistryError(f"{weights}: checksum does not match the manifest; the file is corrupt, {hint}")
    try:
        tensors: dict[str, torch.Tensor] = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise RegistryError(f"{weights}: cannot be read as safetensors ({error}); {hint}") from None
    try:
        predictor = cls.from_state(tensors, manifest["config"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise RegistryError(
            f"{path / MANIFEST}: field 'config' does not rebuild a {manifest['method']} predictor ({error}); {hint}"
        ) from None
    return predictor, manifest


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _replace_dir(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``; an existing ``final`` is moved aside first and removed after."""
    if not final.exists():
        os.replace(staging, final)
        return
    if not final.is_dir():
        raise RegistryError(f"{final}: exists and is not a directory; choose another --out")
    aside = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(final, aside)
    try:
        os.replace(staging, final)
    except OSError:
        os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


__all__ = ["FORMAT", "MANIFEST", "ManifestUpdate", "RegistryError", "WEIGHTS", "load", "normalisation_of", "read_manifest", "save"]
