"""What ``trainer nightly`` trains: its options, the optional ``registry.yaml``, and the source/target roles.

With no ``registry.yaml`` in the registry root, every search space of the
store is trained, and per space a target with at least ``min_source_archs``
measured ok archs (default 200) is a *source* (the base predictor pre-trains
on it), every other target is a *target* (a predictor is transferred to it).
A target that grows past the threshold becomes a source at the next run.

``registry.yaml`` (optional; every key optional)::

    method: layerwise            # the method of new base predictors (--method overrides)
    min_source_archs: 200        # the automatic threshold (--min-source-archs overrides)
    spaces:                      # spaces listed here use these roles; others stay automatic
      nasbench201:
        sources: [1080ti_1, pixel3, gold_6226]
        targets: [raspi4]        # default: every other target of the space

A bad file (not UTF-8, unknown key, wrong type, unknown space, a device the
store does not hold) is reported as one line naming the file and field: exit 2, before
anything is trained.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "registry.yaml").write_text("spaces:\\n  nasbench201:\\n    sources: [a, b]\\n")
    >>> read_registry_yaml(folder).spaces["nasbench201"].sources
    ('a', 'b')
    >>> roles({"a": 300, "b": 250, "c": 20}, None, 200)
    Roles(sources=('a', 'b'), targets=('c',))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from farm import spaces
from farm.errors import UserError
from farm.user_files import read_text
from trainer.models import get_method

CONFIG_FILE = "registry.yaml"
DEFAULT_MIN_SOURCE_ARCHS = 200


class ConfigError(UserError):
    """A bad ``registry.yaml`` or option: one line, exit 2."""


@dataclass(frozen=True)
class Roles:
    """The sources and targets of one space."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class RegistryYaml:
    """The parsed ``registry.yaml`` (all fields optional)."""

    method: str | None = None
    min_source_archs: int | None = None
    spaces: dict[str, "PartialRoles"] = field(default_factory=dict)


@dataclass(frozen=True)
class PartialRoles:
    """Roles as written: ``targets`` None means every other target."""

    sources: tuple[str, ...]
    targets: tuple[str, ...] | None


@dataclass(frozen=True)
class NightlyConfig:
    """Options of one ``trainer nightly`` run (``registry.yaml`` values already merged in)."""

    store: Path
    registry: Path
    method: str | None = None
    min_source_archs: int = DEFAULT_MIN_SOURCE_ARCHS
    source_samples: int | None = None
    seed: int = 0
    hyper: Mapping[str, Any] = field(default_factory=dict)
    use_ray: bool = False
    statuses: tuple[str, ...] = ("ok",)
    explicit: Mapping[str, PartialRoles] = field(default_factory=dict)

    @classmethod
    def build(cls, store: str | os.PathLike[str], registry: str | os.PathLike[str], *, method: str | None = None,
              min_source_archs: int | None = None, **options: Any) -> "NightlyConfig":
        """Options from the command line merged over ``<registry>/registry.yaml`` (the command line wins)."""
        written = read_registry_yaml(Path(registry))
        if written.method is not None and method is None:
            try:
                get_method(written.method)
            except UserError as error:
                raise ConfigError(f"{Path(registry) / CONFIG_FILE}: field 'method': {error}") from None
        threshold = min_source_archs if min_source_archs is not None else written.min_source_archs
        return cls(Path(store), Path(registry), method=method or written.method,
                   min_source_archs=threshold if threshold is not None else DEFAULT_MIN_SOURCE_ARCHS,
                   explicit=dict(written.spaces), **options)

    def roles(self, space: str, archs_per_target: Mapping[str, int], where: str) -> Roles:
        """Sources and targets of ``space`` given each target's count of measured archs."""
        return roles(archs_per_target, self.explicit.get(space), self.min_source_archs, where)


def roles(archs_per_target: Mapping[str, int], explicit: PartialRoles | None, threshold: int,
          where: str = CONFIG_FILE) -> Roles:
    """Explicit roles (checked against the targets that exist), else the automatic split at ``threshold``."""
    if explicit is None:
        return Roles(tuple(sorted(t for t, n in archs_per_target.items() if n >= threshold)),
                     tuple(sorted(t for t, n in archs_per_target.items() if n < threshold)))
    named = [*explicit.sources, *(explicit.targets or ())]
    unknown = [name for name in named if name not in archs_per_target]
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]!r} is not a target of the store; known: {', '.join(sorted(archs_per_target))}")
    both = sorted(set(explicit.sources) & set(explicit.targets or ()))
    if both:
        raise ConfigError(f"{where}: {both[0]!r} is both a source and a target; name it once")
    targets = explicit.targets if explicit.targets is not None else tuple(sorted(set(archs_per_target) - set(explicit.sources)))
    return Roles(tuple(explicit.sources), tuple(targets))


def read_registry_yaml(root: Path) -> RegistryYaml:
    """``<root>/registry.yaml`` validated (an empty :class:`RegistryYaml` when there is none)."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return RegistryYaml()
    try:
        text = read_text(path, hint="fix the file or remove it for automatic roles")
    except UserError as error:
        raise ConfigError(str(error)) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the file or remove it for automatic roles") from None
    data = _mapping(data, path, "the top level", {"method", "min_source_archs", "spaces"})
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise ConfigError(f"{path}: field 'method': expected a method name, got {method!r}")
    threshold = data.get("min_source_archs")
    if threshold is not None and (not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1):
        raise ConfigError(f"{path}: field 'min_source_archs': expected a positive integer, got {threshold!r}")
    parsed: dict[str, PartialRoles] = {}
    for space, entry in _mapping(data.get("spaces") or {}, path, "field 'spaces'", None).items():
        if space not in spaces.NAMES:
            raise ConfigError(f"{path}: field 'spaces': unknown search space {space!r}; known: {', '.join(spaces.NAMES)}")
        entry = _mapping(entry, path, f"field 'spaces.{space}'", {"sources", "targets"})
        if "sources" not in entry:
            raise ConfigError(f"{path}: field 'spaces.{space}.sources' is missing; list the source devices")
        targets = entry.get("targets")
        parsed[space] = PartialRoles(_names(entry["sources"], path, f"spaces.{space}.sources"),
                                     None if targets is None else _names(targets, path, f"spaces.{space}.targets"))
    return RegistryYaml(method, threshold, parsed)


def _mapping(value: Any, path: Path, what: str, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {what}: expected a mapping, got {type(value).__name__}")
    if allowed is not None:
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise ConfigError(f"{path}: {what}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return value


def _names(value: Any, path: Path, field_name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: field {field_name!r}: expected a non-empty list of target names, got {value!r}")
    return tuple(value)


__all__ = ["CONFIG_FILE", "ConfigError", "DEFAULT_MIN_SOURCE_ARCHS", "NightlyConfig", "PartialRoles", "RegistryYaml",
           "Roles", "read_registry_yaml", "roles"]
