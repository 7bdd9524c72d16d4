#!/usr/bin/env python3
"""kill -9 trials: SIGKILL campaigns, device actors and imports mid-way, re-run, count rows lost and duplicated.

Every trial uses the real commands in subprocesses, each with its own store and its own Ray temp
dir (``RAY_TMPDIR``), so nothing of another campaign on this host is touched (``farm status`` and
``farm check`` run in this process, through :func:`farm.cli.main`):

* **driver** (``--driver N``, default 5): ``measure.py`` on replay devices (simulations of pixel2 and
  raspi4 from ``data/help_latency.parquet``, slowed down with the inventory's ``delay_ms``; ``--cpu``
  adds this machine's CPU). The kill moment is drawn from ``--seed``: after ``k`` jobs have been
  reported stored (``k`` uniform from 0 to the campaign's jobs less two per device, so the campaign is
  mid-way), plus a uniform 0-1.5 s; ``k = 0`` counts from the moment the campaign record appears. Then SIGKILL to the driver's process group,
  SIGKILL to the Ray processes of its temp dir (:func:`farm.ray_stop.cluster_processes`: the daemons
  naming the temp dir and every process below them), ``farm status`` must list the campaign as
  interrupted (unless the kill came after its end record, while Ray shut down: then as finished),
  ``farm check`` must find no damaged file, and the same command is run again to its end, after which
  ``farm status`` must no longer list the campaign as unfinished.
* **actor** (``--actor M``, default 2): the same campaign; after ``k`` stored jobs (``1 <= k <=`` the
  campaign's jobs less two per device, so every actor still has work) plus a uniform 0-1 s, SIGKILL one
  (seeded choice) Ray worker process hosting a device actor. It is found with
  ``/proc``, not ``ray.util.state`` (the campaign's Ray has token authentication and is private to the
  campaign's driver): among the processes of the campaign's temp dir, those whose title is
  ``ray::DeviceWorker`` (idle) or ``ray::DeviceWorker.<method>`` (busy); Ray names the same process in
  ``<temp>/ray/session_latest/logs/worker-*-<pid>.out`` with ``:actor_name:DeviceWorker``. The
  campaign must recover on its own (a replacement actor, the job retried); if it does not finish
  with exit 0, the command is re-run.
* **import** (``--import K``, default 3): ``farm import`` of the NB201 rows of three HELP devices
  (46,875 rows) into a fresh store; once the import's first (temporary) part file appears in the store,
  it is killed after a uniform fraction of the time a reference import took from that moment to its
  last committed part file; then the import is re-run.

Each kill is SIGSTOP to the process group, a look at the store (the files and ids the kill leaves),
then SIGKILL, so the look neither delays the kill nor misses a file written meanwhile.

What is counted after each trial's re-run:

* **rows lost**: rows of the part files present just before the kill (by ``measurement_id``) that the
  store no longer holds, and rows the killed run reported stored (its per-job progress lines, which
  are printed once the rows are durable) that are not in the store: the larger of the two (each is a
  lower bound of the loss); for imports also reference rows missing;
* **rows duplicated**: ``ok`` rows beyond the first per resume key (``farm.store.RESUME_KEY``) among the
  requested archs (anchors, measured by every job on purpose, are left out), plus repeated
  ``measurement_id`` values;
* **store readable**: every part file passes :func:`farm.store.part_file_problem` after the kill and at
  the end, and ``farm check --store`` reports no problem (a young ``.tmp-`` leftover of the kill is
  "left alone" by design and counted, not a problem);
* **complete**: every requested (device, arch) is ``ok`` exactly once (imports: exactly the reference rows).

    python benchmarks/kill_trials.py                       # 5 driver, 2 actor, 3 import kills
    python benchmarks/kill_trials.py --driver 1 --actor 0 --import 1 --json
    python benchmarks/kill_trials.py --keep                # keep the trial folders (stores, logs)

Exit status 0 when every trial lost and duplicated nothing and every check held, 1 otherwise,
2 for bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.anchoring import DEFAULT_ANCHORS, anchor_archs  # noqa: E402
from farm.cli import main as farm_main  # noqa: E402
from farm.errors import UserError, exit_on_user_error  # noqa: E402
from farm.ray_stop import cluster_processes  # noqa: E402
from farm.spaces import get  # noqa: E402
from farm.store import RESUME_KEY, TEMPORARY_PREFIX, Store, part_file_problem  # noqa: E402
from farm.summary import RECORDS_DIR  # noqa: E402

HELP_TABLE = REPO / "data" / "help_latency.parquet"
SPACE = "nasbench201"
#: HELP devices replayed (simulated) by the campaign trials, and imported by the import trials.
REPLAY_DEVICES: tuple[str, ...] = ("pixel2", "raspi4")
IMPORT_DEVICES: tuple[str, ...] = ("pixel2", "raspi4", "samsung_a50")
#: The Ray process title of a device actor's worker (``farm.actors.DeviceActor`` wraps ``DeviceWorker``).
ACTOR_TITLE = "ray::DeviceWorker"
#: A job's progress line (``farm.campaign_progress``), printed once that job's rows are durable.
PROGRESS_LINE = re.compile(
    r"^campaign (?P<campaign>\S+): \d+/\d+ archs \(ok (?P<ok>\d+), failed (?P<failed>\d+)"
    r"(?:, not measured \d+)?\): (?P<device>\S+) job (?P<job>\S+), "
)
#: Protocol overrides that keep a trial short: the trials are about resume, not about latency.
PROTOCOL_ARGS: tuple[str, ...] = ("--warmup", "1", "--runs", "2", "--rounds", "1")
CAMPAIGN_TIMEOUT_S = 300.0
POLL_S = 0.05
#: An import writes its three part files within a fraction of a second: watch it closely.
IMPORT_POLL_S = 0.002


@dataclass
class Trial:
    """One kill and what the store looked like once its work was re-run to the end."""

    kind: str
    index: int
    #: The SIGKILL hit a live process (False: it had finished before the drawn moment).
    landed: bool = False
    #: When the kill came, in words (the drawn moment and what was stored by then).
    moment: str = ""
    rows_at_kill: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    store_readable: bool = False
    complete: bool = False
    #: Other checks, by name: True when it held (``farm status`` said interrupted, the re-run exited 0, ...).
    checks: dict[str, bool] = field(default_factory=dict)
    #: Actor kills: the campaign finished with exit 0 by itself (a replacement actor); False: a re-run completed it.
    recovered_in_run: bool | None = None
    leftover_ray_processes: int = 0
    young_leftovers: int = 0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Nothing lost, nothing duplicated, readable, complete, and every check held."""
        return (not self.rows_lost and not self.rows_duplicated and self.store_readable and self.complete
                and all(self.checks.values()))


@dataclass(frozen=True)
class KindTotals:
    """The table row of one kind of kill."""

    kind: str
    trials: int
    landed: int
    rows_lost: int
    rows_duplicated: int
    store_readable: int
    complete: int
    checks_failed: int
    wall_s: float

    @classmethod
    def of(cls, kind: str, trials: Sequence[Trial]) -> "KindTotals":
        """Sum ``trials`` of one ``kind``.

        Example:
            >>> KindTotals.of("driver", [Trial("driver", 1, landed=True, store_readable=True, wall_s=2.0)]).landed
            1
        """
        return cls(kind, len(trials), sum(t.landed for t in trials), sum(t.rows_lost for t in trials),
                   sum(t.rows_duplicated for t in trials), sum(t.store_readable for t in trials),
                   sum(t.complete for t in trials), sum(not ok for t in trials for ok in t.checks.values()),
                   sum(t.wall_s for t in trials))


# --------------------------------------------------------------------------- processes
def start(command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (so its whole group can be killed), output to ``log``.{out,err}."""
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(list(command), cwd=REPO, env=env, stdout=out, stderr=err, start_new_session=True)


def freeze_group(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP ``process``'s group: the store is then what the kill will leave, and can be read before it comes."""
    try:
        os.killpg(process.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass


def kill_group(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL ``process`` and its process group; True when it was still running."""
    alive = process.poll() is None
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)
    return alive


def kill_ray_of(temp_dir: Path) -> int:
    """SIGKILL the Ray processes of ``temp_dir`` (and those below them) and wait for them; how many there were."""
    pids = cluster_processes(str(temp_dir))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster_processes(str(temp_dir)):
        time.sleep(0.2)
    return len(pids)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes] | None, timeout_s: float,
               poll_s: float = POLL_S) -> bool:
    """Poll ``condition`` every ``poll_s`` until it holds (True), ``process`` ends or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return condition()
        time.sleep(poll_s)
    return False


def farm_cli(*args: str) -> tuple[int, Any]:
    """Run ``farm ARGS --json`` (:func:`farm.cli.main`, in this process: a fresh interpreter would cost seconds
    of imports per call); (exit code, the parsed JSON, or the output when it is not JSON)."""
    output, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
        try:
            code = farm_main([*args, "--json"])
        except SystemExit as exit_:  # bad input: exit 2 with one line on stderr
            code = exit_.code if isinstance(exit_.code, int) else 1
    try:
        return code, json.loads(output.getvalue())
    except json.JSONDecodeError:
        return code, (errors.getvalue() or output.getvalue()).strip()[-500:]


def actor_processes(temp_dir: Path) -> list[tuple[int, str]]:
    """(pid, title) of the Ray workers of ``temp_dir`` that host a device actor, by pid."""
    found = []
    for pid in cluster_processes(str(temp_dir)):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").strip()
        except OSError:
            continue
        if title == ACTOR_TITLE or title.startswith(ACTOR_TITLE + "."):
            found.append((pid, title))
    return sorted(found)


# --------------------------------------------------------------------------- store evidence
def snapshot(store: Path) -> dict[str, set[str]]:
    """The committed part files of ``store`` and their measurement ids (a file that cannot be read maps to ``{"?"}``).

    Example:
        >>> snapshot(Path(tempfile.mkdtemp()))
        {}
    """
    files: dict[str, set[str]] = {}
    for path in Store(store).files():
        try:
            files[str(path)] = set(pq.read_table(path, columns=["measurement_id"]).column(0).to_pylist())
        except Exception:  # noqa: BLE001 - any unreadable file is what this counts; pyarrow raises several types
            files[str(path)] = {"?"}
    return files


def readable(store: Path) -> tuple[bool, int, str]:
    """Whether every part file is usable and ``farm check`` finds no problem; (ok, young leftovers, why not)."""
    for path in Store(store).files():
        problem = part_file_problem(path)
        if problem is not None:
            return False, 0, f"{path.relative_to(store)}: {problem}"
    if not store.is_dir():
        return True, 0, ""
    code, report = farm_cli("check", "--store", str(store))
    if not isinstance(report, dict):
        return False, 0, f"farm check exit {code}: {report}"
    if report["problems"]:
        first = report["problems"][0]
        return False, len(report["left_alone"]), f"farm check: {first['kind']} {first['path']}: {first['detail']}"
    return code == 0, len(report["left_alone"]), "" if code == 0 else f"farm check exit {code}"


def reported_stored(stderr_text: str) -> dict[tuple[str, str], int]:
    """Rows each job's progress line reported stored, by (campaign, job id): the change in ok + failed.

    Example:
        >>> text = ("campaign c1: 2/8 archs (ok 2, failed 0): d job d-00000, 00:01 elapsed, ETA 00:03\\n"
        ...         "campaign c1: 5/8 archs (ok 4, failed 1): e job e-00000, 00:02 elapsed, ETA 00:01\\n")
        >>> reported_stored(text)
        {('c1', 'd-00000'): 2, ('c1', 'e-00000'): 3}
    """
    reported: dict[tuple[str, str], int] = {}
    previous: dict[str, int] = {}
    for line in stderr_text.splitlines():
        match = PROGRESS_LINE.match(line)
        if match is None:
            continue
        campaign = match["campaign"]
        total = int(match["ok"]) + int(match["failed"])
        key = (campaign, match["job"])
        reported[key] = reported.get(key, 0) + total - previous.get(campaign, 0)
        previous[campaign] = total
    return reported


def progress_lines(path: Path) -> int:
    """How many job progress lines the log at ``path`` holds so far."""
    try:
        return sum(1 for line in path.read_text(errors="replace").splitlines() if PROGRESS_LINE.match(line))
    except OSError:
        return 0


def duplicates(rows: pd.DataFrame, archs: set[str]) -> int:
    """``ok`` rows beyond the first per resume key among ``archs``, plus repeated measurement ids.

    Example:
        >>> keys = {c: ["x"] * 3 for c in RESUME_KEY}
        >>> rows = pd.DataFrame({**keys, "status": ["ok"] * 3, "measurement_id": ["1", "2", "2"]})
        >>> duplicates(rows, {"x"})
        3
    """
    ok = rows[(rows["status"] == "ok") & rows["arch"].isin(archs)]
    per_key = ok.groupby(list(RESUME_KEY)).size()
    return int((per_key - 1).sum()) + int(len(rows) - rows["measurement_id"].nunique())


def missing_rows(before: dict[str, set[str]], after_ids: set[str]) -> int:
    """Rows of the files seen before the kill that the store no longer holds (an unreadable file counts 1)."""
    return sum(len(ids - after_ids) for ids in before.values())


# --------------------------------------------------------------------------- campaign trials
@dataclass(frozen=True)
class CampaignSetup:
    """What every driver and actor trial measures: the inventory, the archs and the command's options."""

    inventory: Path
    arch_file: Path
    archs: tuple[str, ...]
    devices: tuple[str, ...]
    job_size: int

    @property
    def jobs(self) -> int:
        """Jobs of a full campaign (per device, the archs in jobs of ``job_size``)."""
        return len(self.devices) * math.ceil(len(self.archs) / self.job_size)

    def command(self, store: Path) -> list[str]:
        """The ``measure.py`` command line (progress lines on stderr, one per stored job)."""
        return [sys.executable, "measure.py", "--inventory", str(self.inventory), "--archs", str(self.arch_file),
                "--store", str(store), *PROTOCOL_ARGS, "--job-size", str(self.job_size)]


def campaign_setup(root: Path, archs: int, seed: int, delay_ms: float, job_size: int, cpu: bool) -> CampaignSetup:
    """Write the inventory (replay simulations, optionally this CPU) and ``archs`` sampled NB201 archs (no anchors)."""
    anchors = set(anchor_archs(SPACE, DEFAULT_ANCHORS))
    chosen = [a for a in get(SPACE).sample(archs + len(anchors), seed=seed) if a not in anchors][:archs]
    arch_file = root / "archs.txt"
    arch_file.write_text("\n".join(chosen) + "\n")
    lines = ["devices:"]
    names = []
    if cpu:
        names.append("cpu-local")
        lines += ["  - name: cpu-local", "    kind: cpu", "    runtimes: [torch]",
                  "    protocol: {max_ci: 10.0}    # never 'unstable' on a shared CPU: the trials are about resume"]
    for device in REPLAY_DEVICES:
        names.append(f"replay-{device}")
        lines += [f"  - name: replay-{device}", "    kind: replay", "    protocol: {max_ci: 10.0}",
                  f"    replay: {{table: {HELP_TABLE}, device: {device}, delay_ms: {delay_ms:g}}}"]
    inventory = root / "inventory.yaml"
    inventory.write_text("\n".join(lines) + "\n")
    return CampaignSetup(inventory, arch_file, tuple(chosen), tuple(names), job_size)


def campaign_env(ray_temp: Path) -> dict[str, str]:
    """The environment of a trial's commands: its own Ray temp dir, never a cluster of the caller's."""
    ray_temp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_TMPDIR": str(ray_temp)}
    env.pop("RAY_ADDRESS", None)
    return env


def running_record(store: Path) -> str | None:
    """The id of the campaign whose record exists (written once the campaign has planned), if any."""
    records = [p for p in (store / RECORDS_DIR).glob("*.json") if not p.name.startswith(TEMPORARY_PREFIX)]
    return records[0].stem if records else None


def record_status(store: Path, campaign_id: str | None) -> str | None:
    """The status in the campaign's record (``running`` until its end is recorded), None without a record."""
    if campaign_id is None:
        return None
    try:
        return str(json.loads((store / RECORDS_DIR / f"{campaign_id}.json").read_text()).get("status"))
    except (OSError, ValueError, AttributeError):
        return None


def check_campaign_store(trial: Trial, setup: CampaignSetup, store: Path, before: dict[str, set[str]],
                         reported: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Fill ``trial``'s counts from the store after the re-run; return its rows."""
    rows = Store(store).read(columns=[*RESUME_KEY, "measurement_id", "campaign_id", "job_id", "status"])
    archs = set(setup.archs)
    ids = set(rows["measurement_id"])
    lost_files = missing_rows(before, ids)
    requested = rows[rows["arch"].isin(archs)]
    present = requested.groupby(["campaign_id", "job_id"]).size().to_dict()
    lost_reported = sum(max(0, count - present.get(key, 0)) for key, count in reported.items())
    trial.rows_lost = max(lost_files, lost_reported)
    if lost_files or lost_reported:
        trial.notes.append(f"lost: {lost_files} rows of files present at the kill, {lost_reported} reported stored")
    trial.rows_duplicated = duplicates(rows, archs)
    ok = requested[requested["status"] == "ok"]
    pairs = set(zip(ok["device"], ok["arch"]))
    wanted = {(device, arch) for device in setup.devices for arch in setup.archs}
    trial.complete = pairs == wanted
    if not trial.complete:
        trial.notes.append(f"{len(wanted - pairs)} requested (device, arch) not measured ok")
    return rows


def finish_readable(trial: Trial, store: Path) -> None:
    """Set ``store_readable`` from the final store, keeping a failure seen right after the kill."""
    ok, young, why = readable(store)
    trial.young_leftovers = max(trial.young_leftovers, young)
    if not ok:
        trial.notes.append(f"after the re-run: {why}")
    trial.store_readable = trial.store_readable and ok


def driver_trial(setup: CampaignSetup, folder: Path, rng: random.Random, index: int) -> Trial:
    """Kill ``measure.py`` with its process group at a drawn moment, clean up its Ray, check, re-run, count."""
    trial = Trial("driver", index)
    store, ray_temp = folder / "m", folder / "r"
    env = campaign_env(ray_temp)
    # while every device still has a job queued behind the one it runs: the campaign is mid-way
    jobs_before_kill = rng.randint(0, max(0, setup.jobs - 2 * len(setup.devices)))
    delay_s = rng.uniform(0.0, 1.5)
    started = time.monotonic()
    first = start(setup.command(store), env, folder / "killed")
    try:
        if not wait_until(lambda: running_record(store) is not None, first, CAMPAIGN_TIMEOUT_S):
            trial.notes.append("the campaign never wrote its record")
        wait_until(lambda: progress_lines(folder / "killed.err") >= jobs_before_kill, first, CAMPAIGN_TIMEOUT_S)
        time.sleep(delay_s)
        trial.landed = first.poll() is None
        freeze_group(first)
        before = snapshot(store)
        kill_group(first)
    finally:
        if first.poll() is None:
            kill_group(first)
        trial.leftover_ray_processes = kill_ray_of(ray_temp)
    trial.rows_at_kill = sum(len(ids) for ids in before.values())
    trial.moment = f"{jobs_before_kill} jobs stored + {delay_s:.2f} s"
    killed_id = running_record(store)
    reported = reported_stored((folder / "killed.err").read_text(errors="replace"))
    trial.store_readable, trial.young_leftovers, why = readable(store)
    if why:
        trial.notes.append(f"after the kill: {why}")
    state = record_status(store, killed_id)
    if state != "running":  # the kill came after the campaign's end record, while Ray shut down
        trial.moment += f", campaign record {state or 'not written'} at the kill"
    if trial.landed and state == "running":
        code, status = farm_cli("status", "--store", str(store))
        unfinished = {c["campaign_id"]: c["state"] for c in status.get("unfinished_campaigns", [])} \
            if isinstance(status, dict) else {}
        trial.checks["status_says_interrupted"] = unfinished.get(killed_id) == "interrupted"
    second = subprocess.run(setup.command(store), cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=CAMPAIGN_TIMEOUT_S)
    (folder / "rerun.err").write_text(second.stderr)
    trial.leftover_ray_processes += kill_ray_of(ray_temp)
    trial.checks["rerun_exit_0"] = second.returncode == 0
    if second.returncode:
        trial.notes.append(f"re-run exit {second.returncode}: {second.stderr.strip().splitlines()[-1:]}")
    if trial.landed and killed_id:
        code, status = farm_cli("status", "--store", str(store))
        listed = {c["campaign_id"] for c in status.get("unfinished_campaigns", [])} if isinstance(status, dict) else {killed_id}
        trial.checks["status_resumed_after_rerun"] = killed_id not in listed
    check_campaign_store(trial, setup, store, before, reported)
    finish_readable(trial, store)
    trial.wall_s = time.monotonic() - started
    return trial


def actor_trial(setup: CampaignSetup, folder: Path, rng: random.Random, index: int) -> Trial:
    """SIGKILL the Ray worker of one device actor mid-campaign; the campaign (or a re-run) must complete."""
    trial = Trial("actor", index)
    store, ray_temp = folder / "m", folder / "r"
    env = campaign_env(ray_temp)
    # while every device still has a job queued behind the one it runs (its actor is alive and busy)
    jobs_before_kill = rng.randint(1, max(1, setup.jobs - 2 * len(setup.devices)))
    delay_s = rng.uniform(0.0, 1.0)
    started = time.monotonic()
    run = start(setup.command(store), env, folder / "campaign")
    before: dict[str, set[str]] = {}
    try:
        wait_until(lambda: progress_lines(folder / "campaign.err") >= jobs_before_kill, run, CAMPAIGN_TIMEOUT_S)
        time.sleep(delay_s)
        actors = actor_processes(ray_temp)
        before = snapshot(store)
        if actors and run.poll() is None:
            pid, title = rng.choice(actors)
            os.kill(pid, signal.SIGKILL)
            trial.landed = True
            trial.moment = f"{jobs_before_kill} jobs stored + {delay_s:.2f} s, pid {pid} ({title}) of {len(actors)} actors"
        else:
            trial.moment = f"no device actor to kill after {jobs_before_kill} jobs (campaign ended?)"
        run.wait(timeout=CAMPAIGN_TIMEOUT_S)
    finally:
        if run.poll() is None:
            kill_group(run)
        trial.leftover_ray_processes = kill_ray_of(ray_temp)
    trial.rows_at_kill = sum(len(ids) for ids in before.values())
    reported = reported_stored((folder / "campaign.err").read_text(errors="replace"))
    campaign_id = running_record(store)
    record = json.loads((store / RECORDS_DIR / f"{campaign_id}.json").read_text()) if campaign_id else {}
    errors = [e for device in record.get("devices", []) for e in device.get("errors", [])]
    trial.checks["campaign_saw_actor_death"] = any("actor died" in e for e in errors) or not trial.landed
    trial.recovered_in_run = run.returncode == 0
    trial.store_readable, trial.young_leftovers, why = readable(store)
    if why:
        trial.notes.append(f"after the campaign: {why}")
    if run.returncode != 0:
        trial.notes.append(f"campaign exit {run.returncode}; re-run")
        again = subprocess.run(setup.command(store), cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=CAMPAIGN_TIMEOUT_S)
        trial.leftover_ray_processes += kill_ray_of(ray_temp)
        trial.checks["rerun_exit_0"] = again.returncode == 0
    check_campaign_store(trial, setup, store, before, reported)
    finish_readable(trial, store)
    trial.wall_s = time.monotonic() - started
    return trial


# --------------------------------------------------------------------------- import trials
@dataclass(frozen=True)
class ImportReference:
    """The table imported, the ids an uninterrupted import stores, and the seconds from its first part file
    (begun) to its last (committed)."""

    table: Path
    ids: frozenset[str]
    write_s: float


def import_command(table: Path, store: Path) -> list[str]:
    """``farm import TABLE --store STORE`` as a command line (``python -m farm.cli``)."""
    return [sys.executable, "-m", "farm.cli", "import", str(table), "--store", str(store)]


def data_file_in(store: Path) -> bool:
    """Whether a file (a temporary part file included) is in a partition folder of ``store``.

    The import's lock file (``.merge.lock``) comes first and is not data: a kill before the first
    part file is begun finds nothing written, so the kill window starts at that file.
    """
    return any(files for partition in store.glob("search_space=*") for _, _, files in os.walk(partition))


def import_reference(root: Path) -> ImportReference:
    """Write the import table (NB201 rows of :data:`IMPORT_DEVICES`) and import it once, uninterrupted."""
    frame = pq.read_table(HELP_TABLE, filters=[("search_space", "==", SPACE),
                                                ("device", "in", list(IMPORT_DEVICES))]).to_pandas()
    table = root / "import.parquet"
    frame.to_parquet(table)
    store = root / "import-reference"
    process = start(import_command(table, store), dict(os.environ), root / "import-reference")
    wait_until(lambda: data_file_in(store), process, CAMPAIGN_TIMEOUT_S, IMPORT_POLL_S)
    first_file = time.monotonic()
    wait_until(lambda: len(Store(store).files()) >= len(IMPORT_DEVICES), process, CAMPAIGN_TIMEOUT_S, IMPORT_POLL_S)
    write_s = time.monotonic() - first_file
    process.wait(timeout=CAMPAIGN_TIMEOUT_S)
    if process.returncode:
        raise RuntimeError(f"the reference import failed (exit {process.returncode}): see {root / 'import-reference.err'}")
    ids = frozenset(Store(store).read(columns=["measurement_id"])["measurement_id"])
    if len(ids) != len(frame):
        raise RuntimeError(f"the reference import stored {len(ids)} distinct rows of {len(frame)}")
    return ImportReference(table, ids, write_s)


def import_trial(reference: ImportReference, folder: Path, rng: random.Random, index: int) -> Trial:
    """Kill ``farm import`` while it writes, re-run it, compare the store with the reference import."""
    trial = Trial("import", index)
    store = folder / "s"
    fraction = rng.uniform(0.0, 1.0)
    started = time.monotonic()
    process = start(import_command(reference.table, store), dict(os.environ), folder / "killed")
    try:
        wait_until(lambda: data_file_in(store), process, CAMPAIGN_TIMEOUT_S, IMPORT_POLL_S)
        time.sleep(fraction * reference.write_s)
        trial.landed = process.poll() is None
        freeze_group(process)
        before = snapshot(store)
        kill_group(process)
    finally:
        if process.poll() is None:
            kill_group(process)
    trial.rows_at_kill = sum(len(ids) for ids in before.values())
    trial.moment = (f"{fraction:.0%} of the reference import's writing ({reference.write_s:.2f} s from its first "
                    f"part file to its last) after the first part file, {len(before)} of {len(IMPORT_DEVICES)} committed")
    trial.store_readable, trial.young_leftovers, why = readable(store)
    if why:
        trial.notes.append(f"after the kill: {why}")
    again = subprocess.run(import_command(reference.table, store), cwd=REPO, capture_output=True, text=True,
                           timeout=CAMPAIGN_TIMEOUT_S)
    trial.checks["rerun_exit_0"] = again.returncode == 0
    rows = Store(store).read(columns=[*RESUME_KEY, "measurement_id", "status"])
    ids = set(rows["measurement_id"])
    trial.rows_lost = max(len(reference.ids - ids), missing_rows(before, ids))
    trial.rows_duplicated = int(len(rows) - rows["measurement_id"].nunique()) + int(
        (rows.groupby(list(RESUME_KEY)).size() - 1).sum())
    trial.complete = ids == set(reference.ids) and len(rows) == len(reference.ids)
    if ids - reference.ids:
        trial.notes.append(f"{len(ids - reference.ids)} rows that the reference import does not have")
    finish_readable(trial, store)
    trial.wall_s = time.monotonic() - started
    return trial


# --------------------------------------------------------------------------- report
def table_lines(totals: Sequence[KindTotals], wall_s: float) -> list[str]:
    """The printed table: one row per kind of kill.

    Example:
        >>> print(table_lines([KindTotals("import", 3, 3, 0, 0, 3, 3, 0, 40.0)], 41.0)[1])
        import        3       3          0               0      3/3      3/3       0      40.0
    """
    lines = [f"{'kind':<8} {'trials':>6} {'landed':>7} {'rows lost':>10} {'rows duplicated':>15} "
             f"{'readable':>8} {'complete':>8} {'checks':>7} {'wall s':>9}"]
    for row in totals:
        lines.append(f"{row.kind:<8} {row.trials:>6} {row.landed:>7} {row.rows_lost:>10} {row.rows_duplicated:>15} "
                     f"{f'{row.store_readable}/{row.trials}':>8} {f'{row.complete}/{row.trials}':>8} "
                     f"{row.checks_failed:>7} {row.wall_s:>9.1f}")
    lines.append(f"total wall time {wall_s:.1f} s ('checks': failed checks; 'landed': kills that hit a live process)")
    return lines


def trial_line(trial: Trial) -> str:
    """One progress line per trial, on stderr."""
    verdict = "ok" if trial.passed else "FAILED"
    failed = [name for name, ok in trial.checks.items() if not ok]
    return (f"{trial.kind} {trial.index}: {verdict}, killed {'mid-way' if trial.landed else 'too late'} "
            f"({trial.moment}), {trial.rows_at_kill} rows at the kill, lost {trial.rows_lost}, "
            f"duplicated {trial.rows_duplicated}, {trial.wall_s:.1f} s"
            + ("" if trial.recovered_in_run is None else
               "; the campaign recovered by itself" if trial.recovered_in_run else "; a re-run completed it")
            + (f"; failed checks: {', '.join(failed)}" if failed else "")
            + (f"; {'; '.join(trial.notes)}" if trial.notes else ""))


def non_negative(option: str, value: int) -> int:
    """``value`` when it is a count of trials, else :class:`UserError` naming ``option``."""
    if value < 0:
        raise UserError(f"{option} {value}: must be a number of trials >= 0")
    return value


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    """Run the trials, print the table (or JSON); 0 when nothing was lost or duplicated and every check held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", type=int, default=5, metavar="N", help="driver kills (default 5)")
    parser.add_argument("--actor", type=int, default=2, metavar="M", help="device actor kills (default 2)")
    parser.add_argument("--import", dest="imports", type=int, default=3, metavar="K", help="farm import kills (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="draws the archs and every kill moment (default 0)")
    parser.add_argument("--archs", type=int, default=8, help="NB201 archs per campaign and device (default 8)")
    parser.add_argument("--delay-ms", type=float, default=100.0,
                        help="sleep per simulated run of the replay devices (default 100)")
    parser.add_argument("--job-size", type=int, default=2, help="archs per job (default 2: many jobs to kill between)")
    parser.add_argument("--cpu", action="store_true", help="also measure on this machine's CPU (takes its device lock)")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders (stores, logs) and print where")
    parser.add_argument("--json", action="store_true", help="print the table and every trial as JSON")
    args = parser.parse_args(argv)
    for option, value in (("--driver", args.driver), ("--actor", args.actor), ("--import", args.imports)):
        non_negative(option, value)
    if args.archs < 1 or args.job_size < 1:
        raise UserError(f"--archs {args.archs} / --job-size {args.job_size}: must be >= 1")
    if not math.isfinite(args.delay_ms) or args.delay_ms < 0:
        raise UserError(f"--delay-ms {args.delay_ms}: must be a number of milliseconds >= 0")

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="kt", dir="/tmp"))  # short: Ray's socket paths must stay under 108 bytes
    trials: list[Trial] = []
    try:
        setup = campaign_setup(root, args.archs, args.seed, args.delay_ms, args.job_size, args.cpu)
        plans: list[tuple[str, int]] = ([("driver", i) for i in range(1, args.driver + 1)]
                                        + [("actor", i) for i in range(1, args.actor + 1)]
                                        + [("import", i) for i in range(1, args.imports + 1)])
        reference = import_reference(root) if args.imports else None
        for kind, index in plans:
            folder = root / f"{kind[0]}{index}"
            folder.mkdir()
            rng = random.Random(f"{args.seed}-{kind}-{index}")  # one kind's draws do not depend on the others' counts
            if kind == "driver":
                trial = driver_trial(setup, folder, rng, index)
            elif kind == "actor":
                trial = actor_trial(setup, folder, rng, index)
            else:
                assert reference is not None
                trial = import_trial(reference, folder, rng, index)
            trials.append(trial)
            print(trial_line(trial), file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"trial folders kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    wall_s = time.monotonic() - started
    totals = [KindTotals.of(kind, [t for t in trials if t.kind == kind]) for kind in ("driver", "actor", "import")
              if any(t.kind == kind for t in trials)]
    if args.json:
        json.dump({"seed": args.seed, "archs": args.archs, "wall_s": wall_s,
                   "totals": [asdict(t) for t in totals],
                   "rows_lost": sum(t.rows_lost for t in trials),
                   "rows_duplicated": sum(t.rows_duplicated for t in trials),
                   "trials": [{**asdict(t), "passed": t.passed} for t in trials]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(table_lines(totals, wall_s)))
    return 0 if all(t.passed for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
