"""farm import: public tables into the store, honest provenance, idempotent by file content."""

from __future__ import annotations

import argparse
import hashlib
import socket
from pathlib import Path

import pandas as pd
import pytest

from farm import spaces
from farm.errors import UserError
from farm.importer import batch_size_from_device, import_table, register
from farm.store import Store

DEVICES = ["1080ti_32", "pixel2", "titan_rtx_256"]


@pytest.fixture(scope="module")
def help_slice(help_table_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 NB201 archs x 3 devices of the real HELP table, as a Parquet file."""
    archs = spaces.get("nasbench201").sample(40, seed=3)
    frame = pd.read_parquet(help_table_path, filters=[("search_space", "=", "nasbench201"), ("device", "in", DEVICES)])
    path = tmp_path_factory.mktemp("slice") / "help_slice.parquet"
    frame[frame["arch"].isin(archs)].reset_index(drop=True).to_parquet(path)
    return path


def test_rows_say_where_they_come_from(help_slice, tmp_path):
    assert import_table(help_slice, tmp_path / "store") == 120
    rows = Store(tmp_path / "store").read()
    original = pd.read_parquet(help_slice)
    sha = hashlib.sha256(help_slice.read_bytes()).hexdigest()
    assert set(rows["source"]) == {"help_slice.parquet"}
    assert set(rows["campaign_id"]) == {f"import-{sha[:16]}"} and rows["measurement_id"].is_unique
    assert set(rows["device_kind"]) == set(rows["runtime"]) == set(rows["protocol"]) == {"external"}
    assert set(rows["status"]) == {"ok"} and set(rows["host"]) == {socket.gethostname()}
    assert rows.groupby("device")["batch_size"].first().to_dict() == {"1080ti_32": 32, "pixel2": 1, "titan_rtx_256": 256}
    assert set(rows["input_size"]) == {32}
    assert rows["warmup_runs"].isna().all() and rows["samples_ms"].isna().all()
    merged = rows.merge(original, on=["device", "arch"], suffixes=("", "_file"))
    assert len(merged) == 120 and (merged["latency_ms"] == merged["latency_ms_file"]).all()


def test_importing_twice_adds_nothing_and_resumes_a_partial_import(help_slice, tmp_path):
    store = tmp_path / "store"
    assert import_table(help_slice, store, source="HELP") == 120
    assert import_table(help_slice, store, source="HELP") == 0
    # An import interrupted after some partitions: re-running adds exactly the missing rows.
    lost = next(p for p in Store(store).files() if "device=pixel2" in str(p))
    lost.unlink()
    assert import_table(help_slice, store, source="HELP") == 40
    rows = Store(store).read()
    assert len(rows) == 120 and set(rows["source"]) == {"HELP"}


def test_a_copy_under_another_name_is_the_same_file(help_slice, tmp_path):
    copy = tmp_path / "renamed.parquet"
    copy.write_bytes(help_slice.read_bytes())
    assert import_table(help_slice, tmp_path / "store") == 120
    assert import_table(copy, tmp_path / "store") == 0


def test_file_columns_override_defaults(tmp_path):
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    frame = pd.DataFrame({"search_space": ["nasbench201"], "arch": [f"  {arch} "], "device": ["jetson_7"],
                          "latency_ms": [2.5], "batch_size": [4], "platform": ["jetson-orin-nano"]})
    frame.to_parquet(tmp_path / "t.parquet")
    assert import_table(tmp_path / "t.parquet", tmp_path / "store") == 1
    row = Store(tmp_path / "store").read().iloc[0]
    assert row["batch_size"] == 4 and row["platform"] == "jetson-orin-nano" and row["arch"] == arch


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"search_space": ["nasbench201"], "arch": ["x"], "device": ["d"]}), "column 'latency_ms' is missing"),
        (pd.DataFrame({"search_space": ["nasbench201"], "arch": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"],
                       "device": ["d"], "latency_ms": [-1.0]}), "column 'latency_ms' in row 0"),
        (pd.DataFrame({"search_space": ["nasbench201"] * 2, "arch": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|bad~0|"],
                       "device": ["d", "d"], "latency_ms": [1.0, 2.0]}), "column 'arch' in row 1"),
        (pd.DataFrame({"search_space": ["darts"], "arch": ["x"], "device": ["d"], "latency_ms": [1.0]}), "known spaces"),
        (pd.DataFrame({"search_space": ["nasbench201"], "arch": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"],
                       "device": ["bad device"], "latency_ms": [1.0]}), "column 'device' in row 0 is 'bad device'"),
        # issue 13, class 7: a name is a whole slug, a trailing newline included
        (pd.DataFrame({"search_space": ["nasbench201"] * 2, "arch": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 2,
                       "device": ["pi4", "pi4\n"], "latency_ms": [1.0, 1.0]}), r"column 'device' in row 1 is 'pi4\\n'"),
        (pd.DataFrame({"search_space": ["nasbench201\n"], "arch": ["x"], "device": ["d"], "latency_ms": [1.0]}),
         "column 'search_space' in row 0"),
        # issue 13, class 12: an empty table is said to be empty, not "already imported"
        (pd.DataFrame({"search_space": pd.Series([], dtype=str), "arch": pd.Series([], dtype=str),
                       "device": pd.Series([], dtype=str), "latency_ms": pd.Series([], dtype=float)}),
         "the table has no rows; nothing to import"),
    ],
)
def test_bad_tables_are_one_line_user_errors(tmp_path, frame, message):
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(UserError, match=message) as error:
        import_table(path, tmp_path / "store")
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert Store(tmp_path / "store").files() == []


def test_not_parquet_is_a_user_error(tmp_path):
    (tmp_path / "x.parquet").write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="not a readable Parquet file"):
        import_table(tmp_path / "x.parquet", tmp_path / "store")


def test_batch_size_suffix():
    assert [batch_size_from_device(d) for d in ("1080ti_1", "titan_rtx_256", "gold_6226", "pixel2", "v100_64")] == [1, 256, 1, 1, 64]


def test_register_adds_the_import_subcommand(help_slice, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="farm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", str(help_slice), "--store", str(tmp_path / "s"), "--source", "HELP"])
    assert args.handler(args) == 0 and "imported 120 rows" in capsys.readouterr().out
    assert args.handler(args) == 0 and "nothing to import: every row of" in capsys.readouterr().out


def test_an_unusable_store_is_refused_before_anything_is_written(help_slice, tmp_path):
    """Issue 13, class 9: a store that is a file, or where nothing can be written."""
    (tmp_path / "file").write_text("x")
    for store, message in ((tmp_path / "file", "is a file, not a folder"), (Path("/proc/x"), "cannot write there")):
        with pytest.raises(UserError, match=message) as error:
            import_table(help_slice, store)
        assert str(error.value).startswith(f"--store {store}:")
    assert (tmp_path / "file").read_text() == "x"


def test_farm_cli_runs_import(help_slice, tmp_path, capsys):
    from farm.cli import main

    assert main(["import", str(help_slice), "--store", str(tmp_path / "s")]) == 0
    assert len(Store(tmp_path / "s").read()) == 120


def test_a_store_folder_is_merged_by_measurement_id(help_slice, tmp_path, capsys):
    """Issue 12: `farm import` accepts a store folder (e.g. one `ray rsync-down` brought from the head)."""
    from farm.cli import main

    head, home = tmp_path / "head", tmp_path / "home"
    assert import_table(help_slice, head, source="HELP") == 120
    Store(home).append(Store(head).read(device="pixel2"))  # 40 of the head's rows are here already
    assert main(["import", str(head), "--store", str(home)]) == 0
    assert f"imported 80 new rows (40 already here) from the store {head} into {home}" in capsys.readouterr().out
    assert import_table(head, home) == 0
    merged = Store(home).read()
    assert len(merged) == 120 and merged["measurement_id"].is_unique and set(merged["source"]) == {"HELP"}


def test_a_store_folder_keeps_its_rows_source_and_refuses_source(help_slice, tmp_path, capsys):
    from farm.cli import main

    import_table(help_slice, tmp_path / "head")
    with pytest.raises(SystemExit) as exit_:
        main(["import", str(tmp_path / "head"), "--store", str(tmp_path / "home"), "--source", "X"])
    assert exit_.value.code == 2 and "drop --source" in capsys.readouterr().err
    (tmp_path / "not-a-store").mkdir()
    with pytest.raises(UserError, match="not a farm store"):
        import_table(tmp_path / "not-a-store", tmp_path / "home")
    assert not (tmp_path / "home").exists()
