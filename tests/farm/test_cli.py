"""The ``farm`` console script: status (text and JSON), devices, the import hook, exit-2 errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm import protocol as protocols
from farm.cli import build_parser, main
from farm.inventory import Device
from farm.jobs import failed_row, measured_row
from farm.store import Store
from farm.summary import CampaignSummary, DeviceSummary, save_record
from agents.base import Artifact
from agents.telemetry import Telemetry

PROTOCOL = protocols.make("interleaved", warmup=0, runs=3, rounds=1)


def fill_store(root: Path) -> None:
    """Rows as a campaign writes them: two devices, one of them a replay simulation, one failure.

    Two of cpu-local's three measured rows carry telemetry (the third device read nothing); sim has none.
    """
    rows = []
    reading = Telemetry(temperature_c=45.0, cpu_freq_mhz=1800.0, governor="performance")
    for device, values in ((Device(name="cpu-local", kind="cpu"), [1.0, 2.0, 3.0]),
                           (Device(name="sim", kind="replay", replay={"table": "t.parquet", "device": "x"}), [5.0])):
        for index, value in enumerate(values):
            summary = PROTOCOL.summarize([value, value, value])
            telemetry = (reading, reading) if device.name == "cpu-local" and index < 2 else (Telemetry(), Telemetry())
            rows.append(measured_row(device, "c1", Artifact("nasbench201", f"a{index}"), PROTOCOL, summary, host="h",
                                     telemetry=telemetry))
    rows.append(failed_row(Device(name="cpu-local", kind="cpu"), "c1", Artifact("nasbench201", "bad"), PROTOCOL, "boom"))
    Store(root).append(rows)
    save_record(CampaignSummary("c1", "nasbench201", str(root), status="finished", started_at="2026-01-01T00:00:00",
                                finished_at="2026-01-01T00:01:00",
                                devices=[DeviceSummary("cpu-local", "cpu", requested=4, measured=3, failed=1)]))


def test_status_prints_counts_per_device_and_the_last_campaign(tmp_path: Path, capsys) -> None:
    fill_store(tmp_path)
    assert main(["status", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"store {tmp_path}: 5 rows" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("nasbench201") and "cpu-local" in l)
    assert line.split()[5:9] == ["3", "0", "1", "3"] and "2.000" in line  # ok, unstable, failed, archs, median
    assert line.split()[2:4] == ["torch", "1"]  # runtime, batch size: one prediction target per line
    assert "replay: simulated devices" in out
    assert "last campaign (1 in total)" in out and "campaign c1 (finished)" in out
    telemetry = out.split("telemetry: share of measured rows that carry each field")[1].splitlines()
    assert telemetry[2].split() == ["cpu-local", "3", "67%", "67%", "67%", "67%", "67%"]
    assert telemetry[3].split() == ["sim", "1", "0%", "0%", "0%", "0%", "0%"]


def test_status_json(tmp_path: Path, capsys) -> None:
    fill_store(tmp_path)
    assert main(["status", "--store", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    by_device = {m["device"]: m for m in payload["measurements"]}
    assert by_device["sim"]["device_kind"] == "replay" and by_device["sim"]["median_ms"] == 5.0
    assert by_device["cpu-local"]["failed"] == 1
    assert payload["last_campaign"]["campaign_id"] == "c1" and payload["campaigns"] == 1
    shares = {t["device"]: t for t in payload["telemetry"]}
    assert shares["cpu-local"]["measured"] == 3 and shares["cpu-local"]["governor"] == pytest.approx(2 / 3)
    assert shares["sim"]["cpu_freq_start_mhz"] == 0.0


def test_status_of_a_missing_store_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--store", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err and "no such folder" in err


def test_import_and_measure_are_wired() -> None:
    parser = build_parser()
    args = parser.parse_args(["import", "table.parquet", "--store", "s"])
    assert callable(args.handler)
    args = parser.parse_args(["measure", "--space", "fbnet", "--sample", "3"])
    assert (args.space, args.sample) == ("fbnet", 3)


@pytest.mark.timeout(180)
def test_devices_probes_through_ray_actors(tmp_path: Path, help_table_path: Path, capsys) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "devices:\n"
        f"  - {{name: replay-pixel2, kind: replay, replay: {{table: {help_table_path}, device: pixel2}}}}\n"
        "  - {name: ssh-closed, kind: ssh, ssh: {host: 127.0.0.1, port: 9, user: nobody, trust_on_first_use: true}}\n"
    )
    assert main(["devices", "--inventory", str(inventory), "--json"]) == 1  # one device unreachable
    results = {r["device"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["replay-pixel2"]["reachable"] and results["replay-pixel2"]["facts"]["extra"]["simulated"]
    assert not results["ssh-closed"]["reachable"] and results["ssh-closed"]["error"]


def all_parsers() -> dict[str, "argparse.ArgumentParser"]:
    from farm.measure_command import build_parser as measure_parser
    from loop.cli import build_parser as farm_parser
    from trainer.cli import build_parser as trainer_parser

    return {"farm": farm_parser(), "measure.py": measure_parser(), "trainer": trainer_parser()}


def test_every_option_has_help_and_shows_its_default() -> None:
    """Issue 13, class 12: --help is the first defence against bad input."""
    import argparse

    from farm.cli_help import parsers_of

    checked = 0
    for program, top in all_parsers().items():
        for parser in parsers_of(top):
            text = " ".join(parser.format_help().split())
            for action in parser._actions:
                if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                    continue
                flag = action.option_strings[-1]
                assert action.help, f"{parser.prog} {flag}: no help text"
                if action.default not in (None, False, [], argparse.SUPPRESS):
                    shown = ",".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
                    assert "default" in action.help.lower() or f"(default: {shown})" in text, (parser.prog, flag)
                checked += 1
    assert checked > 100
    farm_help = " ".join(all_parsers()["farm"]._subparsers._group_actions[0].choices["status"].format_help().split())
    assert "Parquet store folder (default: measurements)" in farm_help


@pytest.mark.parametrize("program", ["farm", "measure.py", "trainer"])
def test_version(program: str, capsys) -> None:
    from farm import __version__

    with pytest.raises(SystemExit) as exit_:
        all_parsers()[program].parse_args(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip().endswith(__version__)


def test_status_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """``farm status | head`` where head has already gone: no traceback, exit 141."""
    import subprocess
    import sys

    fill_store(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "loop.cli", "status", "--store", str(tmp_path)],
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141 and b"Traceback" not in err and err == b""


def test_status_of_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "m").write_text("x")
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--store", str(tmp_path / "m")])
    assert exit_.value.code == 2 and "is a file, not a store folder" in capsys.readouterr().err
