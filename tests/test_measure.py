"""measure.py: zero-configuration run on this CPU, the JSON summary, and one-line exit-2 errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from farm.anchoring import anchor_archs
from farm.measure_command import main, read_arch_file
from farm.spaces import get
from farm.store import Store
from tests.farm.scripted_agent import local_ray

REPO = Path(__file__).resolve().parents[1]
GOOD_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    archs = tmp_path / "archs.txt"
    archs.write_text(f"# two good archs, then a bad one\n{GOOD_ARCH}\n\n{GOOD_ARCH}\n|nor_conv_3x3~0|+|bogus~0|\n")
    cases = {
        "device": (["--devices", "cpu-local,pixel42"], ["unknown device 'pixel42'", "cpu-local"]),
        "space": (["--space", "mobilenet"], ["unknown search space 'mobilenet'", "nasbench201"]),
        "archs": (["--archs", str(archs)], [f"{archs}: line 5:"]),
        "quantile": (["--sample", "1", "--quantile", "1.5"], ["quantile 1.5 is out of range", "0 <= quantile <= 1"]),
        "anchors": (["--sample", "1", "--anchors", "11"], ["--anchors 11: at most 10 anchors for nasbench201"]),
        "wait-negative": (["--sample", "1", "--wait-for-lock", "-1"], ["--wait-for-lock -1.0: must be a number of seconds >= 0"]),
        "wait-nan": (["--sample", "1", "--wait-for-lock", "nan"], ["--wait-for-lock nan: must be a number of seconds >= 0"]),
    }
    processes = {
        name: subprocess.Popen([sys.executable, "measure.py", *argv, "--store", str(tmp_path / "m")], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (argv, _) in cases.items()
    }
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        for needle in cases[name][1]:
            assert needle in err, (name, err)
    assert not (tmp_path / "m").exists()  # nothing started


def test_arch_file_reader_canonicalises_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"  {GOOD_ARCH}  \n# comment\n")
    assert read_arch_file(path, get("nasbench201")) == [GOOD_ARCH]
    path.write_text("\n# only comments\n")
    with pytest.raises(Exception, match="no arch strings"):
        read_arch_file(path, get("nasbench201"))


@pytest.fixture()
def ray_session():
    """One local Ray for both runs of the test (measure.py reuses a running Ray; alone it starts one)."""
    yield from local_ray()


@pytest.mark.timeout(300)
def test_default_inventory_measures_this_cpu_and_resumes(tmp_path: Path, capsys, monkeypatch, ray_session) -> None:
    # Zero configuration: the repository's inventory.yaml (this machine's CPU), a fast protocol.
    monkeypatch.chdir(REPO)
    store = tmp_path / "measurements"
    argv = ["--sample", "2", "--seed", "5", "--warmup", "1", "--runs", "2", "--rounds", "1",
            "--store", str(store), "--json"]
    code = main(argv)
    summary = json.loads(capsys.readouterr().out)
    device = summary["devices"][0]
    assert device["device"] == "cpu-local" and device["kind"] == "cpu"
    every = Store(store).read()
    rows = every[~every["is_anchor"]]  # the drift anchors every interleaved job adds are reported apart
    assert set(every.loc[every["is_anchor"], "arch"]) == set(anchor_archs("nasbench201"))
    assert summary["anchoring"] and summary["anchoring"][0]["anchored_jobs"] >= 1
    runtimes = set(rows["runtime"])
    assert device["requested"] == 2 * len(runtimes) and len(rows) == device["requested"]  # every key has an outcome
    torch_rows = rows[rows["runtime"] == "torch"]
    assert set(torch_rows["arch"]) == set(get("nasbench201").sample(2, seed=5))
    assert set(torch_rows["status"]) <= {"ok", "unstable"} and (torch_rows["latency_ms"] > 0).all()
    # 2 timed runs per pass; an arch over the CV limit is measured again and pools up to 2 more passes
    assert set(torch_rows["samples_ms"].map(len)) <= {2, 4, 6} and (torch_rows["runs"] == 2).all()
    assert set(torch_rows["device_kind"]) == {"cpu"}
    assert code == (1 if device["failed"] else 0)
    if "torchscript" in runtimes:
        assert summary["builds"] == 2 + 3  # torchscript models (2 archs, 3 anchors) are built as Ray tasks

    # a second run skips what is already ok
    main(argv)
    again = json.loads(capsys.readouterr().out)["devices"][0]
    assert again["skipped"] == int((rows["status"] == "ok").sum())


@pytest.mark.timeout(300)
def test_ctrl_c_says_how_many_rows_are_stored_and_that_a_rerun_resumes(tmp_path: Path, help_table_path: Path) -> None:
    """Issue 13, class 12: SIGINT to the driver (as ``kill -INT``; a terminal's Ctrl-C) mid-campaign: exit 130, one
    line naming the rows this campaign stored (equal to what the store holds), no traceback."""
    import os
    import signal
    import tempfile
    import time

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("devices:\n  - name: replay-pixel2\n    kind: replay\n    protocol: {max_ci: 10.0}\n"
                         f"    replay: {{table: {help_table_path}, device: pixel2, delay_ms: 100}}\n")
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(get("nasbench201").sample(12, seed=4)) + "\n")
    store = tmp_path / "m"
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="rc", dir="/tmp")}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, "measure.py", "--inventory", str(inventory), "--archs", str(archs), "--store", str(store),
         "--warmup", "1", "--runs", "2", "--rounds", "1", "--job-size", "2", "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As from a terminal: SIGINT at its default. A test run started in the background (`make test &`)
        # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while not Store(store).files() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None and Store(store).files(), "the campaign should be running and storing rows"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    rows = Store(store).read(columns=["campaign_id"])
    campaign = rows["campaign_id"].iloc[0]
    assert last == (f"measure.py: interrupted: {len(rows)} row(s) of campaign {campaign} are stored in {store}; "
                    "re-run the same command to resume (archs already measured are skipped)")
