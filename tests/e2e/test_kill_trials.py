"""``benchmarks/kill_trials.py`` end to end, small: one driver kill and one import kill lose and duplicate nothing.

The script runs as a subprocess, as a person would run it: ``measure.py`` on replay devices
(simulations of HELP's pixel2 and raspi4) is SIGKILLed with its process group and re-run, and
``farm import`` of 46,875 HELP rows is SIGKILLed while it writes and re-run. About 75 s on the
shared 2-core machine. Seed 0 kills the driver after 2 of its 6 jobs are stored (+0.18 s) and the
import 11% of the way through its writing, so both kills land mid-way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_one_driver_kill_and_one_import_kill_lose_and_duplicate_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/kill_trials.py", "--driver", "1", "--actor", "0", "--import", "1",
         "--archs", "6", "--seed", "0", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=380,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert [t["kind"] for t in report["trials"]] == ["driver", "import"]
    assert report["rows_lost"] == 0 and report["rows_duplicated"] == 0
    for trial in report["trials"]:
        assert trial["landed"], trial  # the kill hit a live process, not one that had already finished
        assert trial["rows_lost"] == 0 and trial["rows_duplicated"] == 0, trial
        assert trial["store_readable"] and trial["complete"], trial
        assert all(trial["checks"].values()), trial
    driver = report["trials"][0]
    assert driver["checks"]["status_says_interrupted"] and driver["checks"]["status_resumed_after_rerun"]


def test_a_negative_count_is_one_line_and_exit_2() -> None:
    done = subprocess.run([sys.executable, "benchmarks/kill_trials.py", "--driver", "-1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["kill_trials.py: error: --driver -1: must be a number of trials >= 0"]
