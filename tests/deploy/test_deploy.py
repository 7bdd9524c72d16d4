"""deploy/: the crontab line runs as written, the systemd units verify, the Ray job command parses.

The crontab's command is run for real (``bash -c``) on a store imported from the HELP table, with
only its install prefix (/srv/latfarm) and interpreter replaced by the test's.
"""

from __future__ import annotations

import configparser
import itertools
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from farm import spaces
from farm.importer import import_table
from trainer.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PREFIX = "/srv/latfarm"


def crontab_entry() -> tuple[list[str], str]:
    lines = [line for line in (DEPLOY / "crontab").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    return fields[:5], fields[5]


def nightly_argv(command: str) -> list[str]:
    """The words after ``python -m trainer`` of a shell command, up to its redirections."""
    words = shlex.split(command.split("&&")[-1])
    tail = words[words.index("-m") + 2:]
    return list(itertools.takewhile(lambda word: not word.startswith((">", "2>")), tail))


def test_the_crontab_schedule_is_valid_and_its_command_runs_as_written(tmp_path, help_table_path):
    schedule, command = crontab_entry()
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for value, (low, high) in zip(schedule, ranges):
        assert value == "*" or low <= int(value) <= high, schedule
    archs = spaces.get("nasbench201").sample(240, seed=3)
    table = pd.read_parquet(help_table_path, filters=[("search_space", "=", "nasbench201"),
                                                      ("device", "in", ["1080ti_1", "pixel3", "raspi4"])])
    table = table[table["arch"].isin(archs)]
    table = pd.concat([table[table["device"] != "raspi4"], table[table["device"] == "raspi4"].head(30)])
    table.to_parquet(tmp_path / "slice.parquet")
    import_table(tmp_path / "slice.parquet", tmp_path / "measurements")
    (tmp_path / "logs").mkdir()
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "registry.yaml").write_text("method: layerwise\n")  # keep the test fast
    local = command.replace(".venv/bin/python", shlex.quote(sys.executable)).replace(PREFIX, str(tmp_path))
    done = subprocess.run(["bash", "-c", local], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (tmp_path / "logs" / "nightly.log").read_text()
    summary = json.loads((tmp_path / "logs" / "nightly.json").read_text())
    assert summary["ok"] and summary["spaces"]["nasbench201"]["targets"]["raspi4"]["action"] == "promoted"
    assert "nightly: done" in (tmp_path / "logs" / "nightly.log").read_text()


def test_the_systemd_units_verify_and_run_the_crontab_command():
    service = configparser.ConfigParser(interpolation=None, strict=False)
    service.read(DEPLOY / "latfarm-nightly.service")
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(DEPLOY / "latfarm-nightly.timer")
    assert service["Service"]["Type"] == "oneshot" and service["Service"]["WorkingDirectory"] == PREFIX
    assert "3" in service["Service"]["SuccessExitStatus"].split(), "a run refused by the lock is not a failure"
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "latfarm-nightly.service" and timer["Install"]["WantedBy"] == "timers.target"
    exec_start = service["Service"]["ExecStart"]
    assert nightly_argv(exec_start) == nightly_argv(crontab_entry()[1]), "cron and systemd run the same command"
    assert build_parser().parse_args(nightly_argv(exec_start)).json


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart exists: point it at this interpreter, keep everything else.
    text = (DEPLOY / "latfarm-nightly.service").read_text().replace(f"{PREFIX}/.venv/bin/python", sys.executable)
    (tmp_path / "latfarm-nightly.service").write_text(text.replace(PREFIX, str(tmp_path)))
    shutil.copy(DEPLOY / "latfarm-nightly.timer", tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "latfarm-nightly.service"),
                           str(tmp_path / "latfarm-nightly.timer")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_ray_job_example_is_valid_shell_and_its_command_parses():
    script = DEPLOY / "ray-job.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    line = next(l for l in script.read_text().splitlines() if l.startswith("exec ray job submit"))
    submit, _, command = line.partition(" -- ")
    assert "--working-dir" in submit
    argv = shlex.split(command.replace('"$store"', "S").replace('"$registry"', "R"))
    assert argv[:3] == ["python", "-m", "trainer"]
    args = build_parser().parse_args(argv[3:])
    assert args.ray and args.json and str(args.store) == "S"
    ray_help = subprocess.run([str(Path(sys.executable).with_name("ray")), "job", "submit", "--help"],
                              capture_output=True, text=True, timeout=120)
    assert "--working-dir" in ray_help.stdout, "the installed Ray's job CLI takes the options the example uses"
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode != 0 and "usage: ray-job.sh STORE REGISTRY" in usage.stderr
