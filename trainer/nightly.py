"""``trainer nightly``: re-train what new measurements changed, promote only what is better.

One run, per search space of the store:

1. roles: sources and targets (:mod:`trainer.nightly_config`: automatic at
   ``min_source_archs`` measured archs, or ``registry.yaml``);
2. the base (``<registry>/<space>/_pretrained``): re-pre-trained when the
   sources' trainable rows, the source list or the method changed since the
   last successful run (:mod:`trainer.watermark`), or when there is none;
3. every target with new trainable rows, with no current predictor, or whose
   current one was transferred from an older base, gets a candidate
   transferred from the current base;
4. each candidate is registered (:class:`trainer.versions.PredictorRegistry`)
   and promoted only by the policy of :mod:`trainer.promotion` (held-out
   Spearman against the current one); a refusal is logged with its reason in
   the target's ``history.jsonl`` and in the run's summary.

Every training step drops the held-out archs (:mod:`trainer.holdout`) from
the rows it learns from, sources included, and records so in the manifest.

Safety: the run holds ``<registry>/nightly.lock`` (a second run refuses,
naming the holder); ``current`` only ever changes by an atomic symlink
switch, so a crash or ``kill -9`` at any point leaves the previous current
predictor in place and loadable; the watermark is written only after a run
in which nothing failed. Every run, failed or not, appends its summary to
``<registry>/nightly.jsonl``.

``use_ray`` fans the per-target transfers out as Ray tasks on the cluster at
``RAY_ADDRESS`` (``ray job submit`` sets it), else on a local Ray; the
registry root must then be on a file system every node sees.

Example (in code; the command line is ``trainer nightly --store DIR --registry DIR``)::

    from trainer.nightly import run
    from trainer.nightly_config import NightlyConfig
    result = run(NightlyConfig.build("measurements", "registry", method="layerwise"))
    result.ok, result.summary["spaces"]["nasbench201"]["targets"]["pixel2"]["action"]
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd

from farm.errors import UserError
from farm.store import Store
from trainer import holdout, registry, workflow
from trainer.data import DataError, TargetKey, TargetTable, store_spaces
from trainer.lock import FileLock
from trainer.models import default_method, get_method
from trainer.nightly_config import CONFIG_FILE, NightlyConfig, Roles
from trainer.promotion import combined, register
from trainer.versions import BASE, PredictorRegistry, Version, append_jsonl
from trainer.watermark import SpaceRows, Watermark, fingerprint_json, read_space

LOCK_FILE = "nightly.lock"
RUNS_FILE = "nightly.jsonl"
WORK_DIR = ".nightly-work"

Say = Callable[[str], None]


class NightlyFailed(Exception):
    """A run that could not finish: ``str()`` is the one-line reason, ``summary`` what it did before."""

    def __init__(self, reason: str, summary: Mapping[str, Any]) -> None:
        super().__init__(reason)
        self.summary = summary


@dataclass(frozen=True)
class TransferJob:
    """Everything one target's candidate needs; picklable, so it can run as a Ray task."""

    space: str
    target: str
    key: TargetKey
    base_dir: str
    samples: pd.Series
    held_out: pd.Series
    current_dir: str | None
    out_dir: str
    hyper: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """A transferred candidate saved at ``folder`` with its and the current predictor's held-out scores."""

    target: str
    folder: str | None
    rows: int
    seconds: float
    score: dict[str, Any] = field(default_factory=dict)
    current_score: dict[str, Any] | None = None
    error: str | None = None
    detail: str = ""


def build_candidate(job: TransferJob) -> Candidate:
    """Transfer the base to ``job.target`` on its trainable rows, save it, score it and the current one.

    Never raises: a failure comes back as ``Candidate.error`` (one line) and ``detail`` (the traceback).
    """
    started = time.perf_counter()
    try:
        predictor, manifest = registry.load(job.base_dir)
        table = TargetTable(job.space, job.samples.to_frame(job.target), {job.target: job.key}, job.base_dir)
        result = workflow.transfer(predictor, table, job.target, manifest=manifest, hyper=job.hyper, progress=False)
        folder = workflow.save(_excluding_held_out(result), job.out_dir)
        score = holdout.score(result.predictor, job.target, job.held_out)
        current_score = None
        if job.current_dir is not None:
            current_score = _score_saved(job.current_dir, [job.target], {job.target: job.held_out})[job.target]
        return Candidate(job.target, str(folder), len(job.samples), time.perf_counter() - started, score, current_score)
    except Exception as error:  # noqa: BLE001 - reported per target; the run goes on and fails at the end
        return Candidate(job.target, None, len(job.samples), time.perf_counter() - started,
                         error=f"{type(error).__name__}: {error}", detail=traceback.format_exc())


def run(config: NightlyConfig, say: Say | None = None) -> "NightlyResult":
    """One nightly run (see the module docstring); raises :class:`trainer.lock.LockHeld` if another runs,
    :class:`farm.errors.UserError` for bad input, :class:`NightlyFailed` when a step failed."""
    say = say or _stderr
    root = config.registry
    root.mkdir(parents=True, exist_ok=True)
    if not config.store.is_dir():
        raise DataError(f"{config.store}: no such store directory; pass --store DIR of a farm store")
    spaces = store_spaces(config.store)
    if not spaces:
        raise DataError(f"{config.store}: the store is empty; import or measure rows first")
    with FileLock(root / LOCK_FILE):
        return _locked_run(config, spaces, say)


@dataclass
class NightlyResult:
    """The run's summary (``ok``, per space the base and per-target steps, timings)."""

    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.summary.get("ok"))

    def lines(self) -> list[str]:
        """A human summary: one line per step."""
        out = []
        for space, entry in self.summary["spaces"].items():
            out.extend(f"{space}/{name}: {_line(step)}" for name, step in _steps(entry).items())
        out.append(f"{'ok' if self.ok else 'FAILED'} in {self.summary['wall_s']:.1f} s; runs log: {self.summary['runs_log']}")
        return out


def _locked_run(config: NightlyConfig, spaces: Sequence[str], say: Say) -> NightlyResult:
    root = config.registry
    work = root / WORK_DIR
    shutil.rmtree(work, ignore_errors=True)  # a killed run's half-saved candidates: never registered
    work.mkdir()
    started = time.perf_counter()
    summary: dict[str, Any] = {
        "ok": False, "run_id": uuid.uuid4().hex[:12], "started_at": registry.now_iso(), "host": socket.gethostname(),
        "pid": os.getpid(), "store": str(config.store), "registry": str(root), "ray": config.use_ray,
        "spaces": {}, "failures": [], "runs_log": str(root / RUNS_FILE),
    }
    mark = Watermark.read(root)
    new_mark = Watermark(dict(mark.spaces))
    try:
        # Every space's data and roles first: bad input (registry.yaml) stops the run before anything trains.
        plans = {space: _plan(config, space) for space in spaces}
        for space, (rows, roles) in plans.items():
            summary["spaces"][space], space_mark = _space(config, space, rows, roles, mark, work, summary["run_id"], say)
            if space_mark is not None:
                new_mark.spaces[space] = space_mark
        failures = [f"{space}/{name}: {step['reason']}" for space, entry in summary["spaces"].items()
                    for name, step in _steps(entry).items() if step.get("action") == "failed"]
        summary["failures"] = failures
        summary["ok"] = not failures
        if failures:
            summary["error"] = f"{len(failures)} step(s) failed, first {failures[0]}; the watermark is unchanged"
        else:
            new_mark.write(root)
    except UserError as error:
        summary["error"] = str(error)
        raise
    except Exception as error:
        summary["error"] = f"{type(error).__name__}: {error}"
        summary["traceback"] = traceback.format_exc()
        raise NightlyFailed(summary["error"], summary) from error
    finally:
        summary["finished_at"] = registry.now_iso()
        summary["wall_s"] = round(time.perf_counter() - started, 3)
        append_jsonl(root / RUNS_FILE, summary)
        shutil.rmtree(work, ignore_errors=True)
    if not summary["ok"]:
        raise NightlyFailed(summary["error"], summary)
    say(f"done in {summary['wall_s']:.1f} s")
    return NightlyResult(summary)


def _plan(config: NightlyConfig, space: str) -> tuple[SpaceRows, Roles]:
    """A space's rows and its sources/targets (:class:`UserError` for roles the store cannot meet)."""
    rows = read_space(Store(config.store), space, config.statuses)
    return rows, config.roles(space, rows.archs_per_target(), str(config.registry / CONFIG_FILE))


def _space(config: NightlyConfig, space: str, rows: SpaceRows, roles: Roles, mark: Watermark, work: Path, run_id: str,
           say: Say) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Base and target steps of one space: (its summary, its new watermark entry or None)."""
    counts = rows.archs_per_target()
    entry: dict[str, Any] = {"sources": list(roles.sources), "targets": {}}
    reg = PredictorRegistry(config.registry)
    if not roles.sources:
        reason = (f"no source: no target has >= {config.min_source_archs} measured archs "
                  f"(most: {max(counts.values(), default=0)}); lower --min-source-archs or name sources in registry.yaml")
        entry["base"] = {"action": "skipped", "reason": reason}
        say(f"{space}: skipped: {reason}")
        return entry, None
    say(f"{space}: {len(roles.sources)} source(s), {len(roles.targets)} target(s)")
    base_step, base = _base(config, space, rows, roles, mark, reg, work, run_id, say)
    entry["base"] = base_step
    say(f"{space}/{BASE}: {_line(base_step)}")
    if base is None:
        return entry, None
    method = str(base.summary["method"])
    needed = get_method(method).min_target_samples
    jobs = []
    for target in roles.targets:
        samples = rows.trainable.latencies[target].dropna()
        current = reg.current(space, target)
        why = _why_transfer(space, target, rows, mark, current, base)
        if len(samples) < needed:
            entry["targets"][target] = {"action": "skipped", "rows": len(samples),
                                        "reason": f"{len(samples)} trainable rows; {method} needs {needed}"}
        elif why is None:
            entry["targets"][target] = {"action": "unchanged", "version": current.number if current else None,
                                        "reason": "no new rows since the last successful run"}
        else:
            jobs.append(TransferJob(space, target, rows.table.keys[target], str(base.path), samples,
                                    rows.held_out(target), str(current.path) if current else None,
                                    str(work / space / target), dict(config.hyper)))
            entry["targets"][target] = {"action": "pending", "reason": why}
        if entry["targets"][target]["action"] != "pending":
            say(f"{space}/{target}: {_line(entry['targets'][target])}")
    for candidate in _candidates(jobs, config.use_ray):
        step = _register(reg, space, candidate, base, run_id, entry["targets"][candidate.target]["reason"])
        entry["targets"][candidate.target] = step
        say(f"{space}/{candidate.target}: {_line(step)}")
    space_mark = {"method": method, "sources": list(roles.sources), "base_version": base.number,
                  "targets": {name: fingerprint_json(fp) for name, fp in rows.fingerprints.items()}}
    return entry, space_mark


def _base(config: NightlyConfig, space: str, rows: SpaceRows, roles: Roles, mark: Watermark,
          reg: PredictorRegistry, work: Path, run_id: str, say: Say) -> tuple[dict[str, Any], Version | None]:
    """Re-pre-train the base when its inputs changed: (step summary, the base to transfer from)."""
    current = reg.current(space, BASE)
    method = config.method or (str(current.summary["method"]) if current else default_method())
    why = "no base predictor yet" if current is None else mark.sources_changed(space, method, rows, roles.sources)
    if why is None:
        return {"action": "unchanged", "version": current.number, "reason": "sources unchanged since the last run"}, current
    started = time.perf_counter()
    try:
        result = workflow.pretrain(rows.trainable, roles.sources, method=method, source_samples=config.source_samples,
                                   cap_source_samples=True, seed=config.seed, hyper=config.hyper, progress=True,
                                   say=say)
        folder = workflow.save(_excluding_held_out(result), work / space / BASE)
        held = {s: rows.held_out(s) for s in result.predictor.targets() if s in roles.sources}
        score = combined({s: holdout.score(result.predictor, s, values) for s, values in held.items()})
        current_score = combined(_score_saved(str(current.path), list(held), held)) if current else None
    except Exception as error:  # noqa: BLE001 - the space fails, the run goes on with other spaces
        step = {"action": "failed", "reason": f"pretrain: {type(error).__name__}: {error}", "detail": traceback.format_exc()}
        return step, current
    candidate = Candidate(BASE, str(folder), sum(result.archs_per_source.values()), time.perf_counter() - started,
                          score, current_score)
    step = _register(reg, space, candidate, None, run_id, why)
    return step, reg.current(space, BASE)


def _why_transfer(space: str, target: str, rows: SpaceRows, mark: Watermark, current: Version | None,
                  base: Version) -> str | None:
    if current is None:
        return "no current predictor"
    if current.metrics.get("base_version") != base.number:
        return f"base changed (v{current.metrics.get('base_version')} -> v{base.number})"
    before = mark.target(space, target)
    now = rows.fingerprints[target]
    if before != now:
        grown = now.rows - before.rows if before else now.rows
        return f"{grown:+d} trainable rows since the last successful run ({now.rows} now)"
    return None


def _register(reg: PredictorRegistry, space: str, candidate: Candidate, base: Version | None, run_id: str,
              why: str) -> dict[str, Any]:
    """Add a candidate, then promote it or log why not; the step's summary."""
    name = candidate.target
    step: dict[str, Any] = {"rows": candidate.rows, "seconds": round(candidate.seconds, 3), "trigger": why}
    if candidate.error is not None or candidate.folder is None:
        return {**step, "action": "failed", "reason": candidate.error, "detail": candidate.detail}
    current = reg.current(space, name)
    version, decision = register(reg, space, name, Path(candidate.folder), score=candidate.score,
                                 current_score=candidate.current_score, rows=candidate.rows,
                                 base_version=base.number if base is not None else None,
                                 note=f"nightly {run_id}: {why}")
    step.update(version=version.number, held_out=candidate.score, current=current.number if current else None,
                current_held_out=candidate.current_score, reason=decision.reason)
    return {**step, "action": "promoted" if decision.promote else "refused"}


def _candidates(jobs: Sequence[TransferJob], use_ray: bool) -> Iterator[Candidate]:
    """Run the jobs here, one after another, or as Ray tasks (yielded as they finish)."""
    if not use_ray:
        for job in jobs:
            yield build_candidate(job)
        return
    if not jobs:
        return
    import ray

    started_here = _connect_ray(ray)
    try:
        task = ray.remote(build_candidate)
        pending = [task.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


def _connect_ray(ray: Any) -> bool:
    """Join the cluster at ``RAY_ADDRESS`` (or the running one), else start a local Ray; True if started here."""
    if ray.is_initialized():
        return False
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level="WARNING")
        return False
    ray.init(include_dashboard=False, logging_level="WARNING")
    return True


def _score_saved(folder: str, targets: Sequence[str], held: Mapping[str, pd.Series]) -> dict[str, dict[str, Any]]:
    """Held-out scores of the predictor saved at ``folder`` (a failed load scores as missing, with the reason)."""
    try:
        predictor, _ = registry.load(folder)
    except registry.RegistryError as error:
        return {t: {"n": 0, "spearman": None, "reason": f"current predictor does not load: {error}"} for t in targets}
    known = set(predictor.targets())
    return {t: holdout.score(predictor, t, held[t]) if t in known
            else {"n": 0, "spearman": None, "reason": f"current predictor does not know {t}"} for t in targets}


def _excluding_held_out(result: Any) -> Any:
    """The workflow result with the held-out marker in the manifest event it will save."""
    return dataclasses.replace(result, update=dataclasses.replace(result.update, event=holdout.MARKER))


def _steps(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A space summary's steps by name: the base first, then the targets."""
    return {BASE: entry.get("base", {}), **entry.get("targets", {})}


def _line(step: Mapping[str, Any]) -> str:
    version = f" v{step['version']}" if step.get("version") else ""
    return f"{step.get('action')}{version}: {step.get('reason', '')}"


def _stderr(line: str) -> None:
    print(f"nightly: {line}", file=sys.stderr, flush=True)


__all__ = ["Candidate", "LOCK_FILE", "NightlyFailed", "NightlyResult", "RUNS_FILE", "TransferJob", "build_candidate", "run"]
