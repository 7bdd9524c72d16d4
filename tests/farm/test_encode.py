"""``farm encode`` through the real farm parser and a real local Ray: rows in the encodings table, resume, typed outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from farm import spaces
from farm.cli import build_parser, main
from farm.encode import EncodeConfig, run_encode
from farm.proxies import NAMES
from farm.proxies.inputs import InputSpec, default_spec
from farm.proxies.table import EncodingsTable
from farm.store_lock import lock_encodings
from tests.farm.scripted_agent import local_ray
from trainer.proxy_encodings import load

pytestmark = pytest.mark.timeout(600)
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    yield from local_ray()


def farm(*argv: str) -> int:
    try:
        return main(list(argv), parser=build_parser())  # `farm encode` as registered in farm.cli
    except SystemExit as exit_:
        return int(exit_.code)


def test_encode_three_archs_then_resume_adds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    archs = spaces.get("nasbench201").sample(3, seed=5)
    assert farm("encode", "--sample", "3", "--seed", "5", "--store", str(store), "--chunk-size", "2") == 0
    out = capsys.readouterr().out
    assert f"3 archs x {len(NAMES)} proxies: {3 * len(NAMES)} ok, 0 undefined, 0 failed, 0 skipped" in out

    table = EncodingsTable(store)
    frame = table.read("nasbench201")
    assert len(frame) == 3 * len(NAMES) and set(frame["arch"]) == set(archs)
    assert set(frame["input_spec"]) == {default_spec("nasbench201").key} and set(frame["status"]) == {"ok"}
    files = {p: p.read_bytes() for p in table.files()}

    assert farm("encode", "--sample", "3", "--seed", "5", "--store", str(store)) == 0
    assert f"0 ok, 0 undefined, 0 failed, {3 * len(NAMES)} skipped" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in table.files()} == files  # nothing added, nothing rewritten

    values = load(store, "nasbench201", archs)
    expected = frame.set_index(["arch", "proxy"])["value"]
    assert values.tolist() == [[expected[(arch, name)] for name in NAMES] for arch in archs]


def test_a_new_proxy_request_computes_only_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    archs_file = tmp_path / "archs.txt"
    archs_file.write_text(f"# the dead cell, whose output ignores its input\n{DEAD}\n")
    assert farm("encode", "--archs", str(archs_file), "--store", str(store), "--proxies", "snip,jacov", "--json") == 0
    assert farm("encode", "--archs", str(archs_file), "--store", str(store), "--proxies", "jacov,nwot", "--quiet") == 0
    out = capsys.readouterr().out
    assert '"undefined": 1' in out and "0 ok, 1 undefined, 0 failed, 1 skipped" in out
    frame = EncodingsTable(store).read()
    assert sorted(zip(frame["proxy"], frame["status"])) == [("jacov", "undefined"), ("nwot", "undefined"), ("snip", "ok")]
    assert frame.loc[frame["status"] == "undefined", "error"].str.contains("constant|singular").all()


def test_a_failing_arch_is_recorded_failed_and_retried(tmp_path: Path) -> None:
    store = tmp_path / "store"
    config = EncodeConfig("nasbench201", ["not-an-arch", DEAD], ["params"], InputSpec(4, 8, 10, 2), store, progress=False)
    summary = run_encode(config)
    assert (summary.ok, summary.failed) == (1, 1)
    failed = EncodingsTable(store).read().query("status == 'failed'")
    assert failed["arch"].tolist() == ["not-an-arch"] and "ArchError" in failed["error"].iloc[0]
    again = run_encode(config)
    assert (again.skipped, again.failed) == (1, 1)  # the ok one is kept, the failed one is computed again
    assert ray.is_initialized()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "nb201"], "--space: unknown search space 'nb201'"),
        (["--proxies", "snip,snipp"], "--proxies snip,snipp: unknown proxy 'snipp'"),
        (["--sample", "0"], "--sample 0: must be >= 1"),
        (["--chunk-size", "0"], "--chunk-size 0: must be >= 1"),
        (["--wait-for-lock", "-1"], "--wait-for-lock -1.0: must be a number of seconds >= 0"),
        (["--all", "--space", "fbnet"], "--all: space fbnet cannot be enumerated"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    store = tmp_path / "store"
    assert farm("encode", "--store", str(store), *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not store.exists()


def test_a_bad_arch_line_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archs_file = tmp_path / "archs.txt"
    archs_file.write_text(f"{DEAD}\n|conv~0|\n")
    assert farm("encode", "--archs", str(archs_file), "--store", str(tmp_path / "store")) == 2
    assert f"{archs_file}: line 2:" in capsys.readouterr().err


def test_a_damaged_encodings_file_stops_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    part = EncodingsTable(store).append([{
        "space": "nasbench201", "arch": DEAD, "proxy": "snip", "value": 0.0, "status": "ok", "error": None,
        "input_spec": default_spec("nasbench201").key, "version": 1, "computed_at": "2026-01-01T00:00:00Z",
        "host": "h", "torch_version": "t", "farm_version": "f",
    }])[0]
    part.write_bytes(b"PAR1 truncated")
    assert farm("encode", "--sample", "1", "--store", str(store)) == 2
    err = capsys.readouterr().err
    assert "cannot read the encodings table" in err and "move the damaged file out of" in err


def test_a_second_encode_run_on_the_store_is_refused_while_the_first_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    with lock_encodings(store, "encode-first"):
        assert farm("encode", "--sample", "1", "--proxies", "params", "--store", str(store)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is locked by campaign encode-first" in err[0]
        assert "compute every proxy twice" in err[0] and "--wait-for-lock" in err[0]
        assert EncodingsTable(store).read().empty
        # a measurement campaign's store lock is another file: encoding does not wait for it
        assert not (store / ".lock").exists()
    assert farm("encode", "--sample", "1", "--proxies", "params", "--store", str(store), "--quiet") == 0
    assert len(EncodingsTable(store).read()) == 1
