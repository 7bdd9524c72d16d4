"""Issue 13, classes 6-12: every bad input is one stderr line, exit 2, and leaves the store untouched.

Each case runs a real entry point (``farm``, ``measure.py``, ``trainer``) in-process on a working folder
holding a real store (rows of the public HELP table imported by ``farm import``), a real saved predictor and
a registry; the folder's listing and the SHA-256 of every file in it are compared before and after. A
handful of cases also run in a fresh interpreter, the way a person types them, to show no traceback
reaches the terminal. No case may start Ray: every check runs before anything starts.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from farm.importer import import_table
from trainer import registry
from trainer.models import get_method

REPO = Path(__file__).resolve().parents[1]
LATIN1 = "caf\u00e9 |nor_conv_3x3~0|\n".encode("latin-1")
GOOD_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@dataclass(frozen=True)
class Case:
    """One bad input: the program, its arguments (``{work}`` is the working folder) and a fragment of the line."""

    issue_class: int
    name: str
    program: str  # farm | measure | trainer
    argv: tuple[str, ...]
    fragment: str

    @property
    def id(self) -> str:
        return f"c{self.issue_class}-{self.name}"


def inventory_case(issue_class: int, name: str, device_yaml: str, fragment: str) -> Case:
    """``measure.py`` with the inventory file ``inventories/<name>.yaml`` (written by :func:`write_inventories`)."""
    INVENTORIES[name] = device_yaml
    return Case(issue_class, name, "measure",
                ("--inventory", f"{{work}}/inventories/{name}.yaml", "--sample", "1", "--store", "{work}/store"), fragment)


#: name -> the ``devices:`` body of an inventory that a case loads.
INVENTORIES: dict[str, str] = {}

PREDICT = ("predict", "--predictor", "{work}/predictor")
PRETRAIN = ("pretrain", "--store", "{work}/store", "--space", "nasbench201", "--sources", "pixel3", "--method", "flops")
EVALUATE = ("evaluate", "--store", "{work}/store", "--space", "nasbench201", "--sources", "pixel3", "--targets", "pixel2")
CASES: list[Case] = [
    # 6: a predictor manifest that points outside its folder, or is malformed
    Case(6, "weights-parent", "trainer", (*PREDICT[:2], "{work}/pred-parent", "--all", "--out", "{work}/o.csv"),
         "field 'weights.file': '../outside.safetensors' is not a file name"),
    Case(6, "weights-absolute", "trainer", (*PREDICT[:2], "{work}/pred-absolute", "--all", "--out", "{work}/o.csv"),
         "field 'weights.file': '/etc/passwd'"),
    Case(6, "weights-symlink", "trainer", (*PREDICT[:2], "{work}/pred-symlink", "--all", "--out", "{work}/o.csv"),
         "is a symbolic link"),
    Case(6, "manifest-sources-string", "trainer", ("sample", "--predictor", "{work}/pred-sources", "--n", "2"),
         "field 'sources': expected a list"),
    Case(6, "manifest-weights-list", "trainer", (*PREDICT[:2], "{work}/pred-weights", "--all", "--out", "{work}/o.csv"),
         "field 'weights': expected an object"),
    Case(6, "manifest-samples-list", "trainer",
         ("transfer", "--predictor", "{work}/pred-samples", "--store", "{work}/store", "--target", "pixel2",
          "--out", "{work}/p2"), "field 'samples': expected an object"),
    # 7: names match whole strings
    inventory_case(7, "name-newline", '  - name: "cpu\\n"\n    kind: cpu\n', "not a slug"),
    Case(7, "devices-newline", "measure",
         ("--inventory", "{work}/inventory.yaml", "--devices", "cpu-local\n", "--store", "{work}/store"),
         "unknown device 'cpu-local\\n'"),
    Case(7, "import-device-newline", "farm", ("import", "{work}/device-newline.parquet", "--store", "{work}/store"),
         "column 'device' in row 0 is 'pixel2\\n'"),
    Case(7, "target-newline", "trainer",
         ("transfer", "--predictor", "{work}/predictor", "--store", "{work}/store", "--target", "pixel2\n",
          "--out", "{work}/p2"), "unknown device or target 'pixel2\\n'"),
    # 8: files that are not UTF-8
    Case(8, "inventory-latin1", "measure", ("--inventory", "{work}/latin1.yaml", "--store", "{work}/store"),
         "latin1.yaml: not UTF-8 text (byte 0xe9 on line 1)"),
    Case(8, "inventory-latin1-devices", "farm", ("devices", "--inventory", "{work}/latin1.yaml"), "not UTF-8 text"),
    Case(8, "inventory-latin1-add-device", "farm",
         ("add-device", "cpu-local", "--inventory", "{work}/latin1.yaml", "--store", "{work}/store",
          "--registry", "{work}/registry"), "not UTF-8 text"),
    Case(8, "measure-archs-latin1", "measure",
         ("--inventory", "{work}/inventory.yaml", "--archs", "{work}/latin1.txt", "--store", "{work}/store"),
         "latin1.txt: not UTF-8 text"),
    Case(8, "measure-archs-folder", "measure",
         ("--inventory", "{work}/inventory.yaml", "--archs", "{work}/registry", "--store", "{work}/store"),
         "is a folder, not a file"),
    Case(8, "predict-archs-latin1", "trainer", (*PREDICT, "--archs", "{work}/latin1.txt", "--out", "{work}/o.csv"),
         "latin1.txt: not UTF-8 text"),
    Case(8, "predict-archs-not-parquet", "trainer",
         (*PREDICT, "--archs", "{work}/text.parquet", "--out", "{work}/o.csv"), "needs to be Parquet"),
    Case(8, "sample-candidates-latin1", "trainer",
         ("sample", "--predictor", "{work}/predictor", "--n", "2", "--candidates", "{work}/latin1.txt"),
         "not UTF-8 text"),
    Case(8, "registry-yaml-latin1", "trainer",
         ("nightly", "--store", "{work}/store", "--registry", "{work}/registry-latin1"), "registry.yaml: not UTF-8"),
    # 9: an unusable --store / --out, refused before anything starts
    Case(9, "store-is-a-file", "measure", ("--inventory", "{work}/inventory.yaml", "--store", "{work}/latin1.txt"),
         "is a file, not a folder"),
    Case(9, "store-under-a-file", "measure",
         ("--inventory", "{work}/inventory.yaml", "--store", "{work}/latin1.txt/store"), "is a file, so the folder"),
    Case(9, "store-in-proc", "measure", ("--inventory", "{work}/inventory.yaml", "--store", "/proc/x"),
         "--store /proc/x: cannot write there"),
    Case(9, "store-unwritable", "measure", ("--inventory", "{work}/inventory.yaml", "--store", "/sys/x"),
         "--store /sys/x: cannot write there"),
    Case(9, "import-store-in-proc", "farm", ("import", "{work}/table.parquet", "--store", "/proc/x"),
         "--store /proc/x: cannot write there"),
    Case(9, "import-store-is-a-file", "farm", ("import", "{work}/table.parquet", "--store", "{work}/latin1.txt"),
         "is a file, not a folder"),
    Case(9, "status-store-is-a-file", "farm", ("status", "--store", "{work}/latin1.txt"), "is a file, not a store"),
    Case(9, "pretrain-out-in-proc", "trainer", (*PRETRAIN, "--out", "/proc/x/pred"), "--out /proc/x: cannot write there"),
    Case(9, "pretrain-out-is-a-file", "trainer", (*PRETRAIN, "--out", "{work}/latin1.txt"), "is a file; pass a folder name"),
    Case(9, "transfer-out-unwritable", "trainer",
         ("transfer", "--predictor", "{work}/predictor", "--store", "{work}/store", "--target", "pixel2",
          "--out", "/sys/x"), "--out /sys: cannot write there"),
    Case(9, "predict-out-in-proc", "trainer", (*PREDICT, "--all", "--out", "/proc/x/o.csv"), "cannot write there"),
    Case(9, "evaluate-json-in-proc", "trainer", (*EVALUATE, "--json", "/proc/x/e.json"), "--json /proc/x: cannot write there"),
    Case(9, "evaluate-plots-unwritable", "trainer", (*EVALUATE, "--plots", "/sys/x"), "--plots /sys: cannot write there"),
    Case(9, "nightly-registry-in-proc", "trainer", ("nightly", "--store", "{work}/store", "--registry", "/proc/x"),
         "--registry /proc/x: cannot write there"),
    # 10: configuration mistakes found without the device
    inventory_case(10, "replay-table-missing", "  - name: r\n    kind: replay\n    replay: {table: gone.parquet, device: pixel2}\n",
                   "field 'replay.table'"),
    inventory_case(10, "replay-table-not-parquet",
                   "  - name: r\n    kind: replay\n    replay: {table: ../text.parquet, device: pixel2}\n",
                   "is not a readable Parquet file"),
    inventory_case(10, "replay-device-missing",
                   "  - name: r\n    kind: replay\n    replay: {table: ../table.parquet, device: pixel33}\n",
                   "field 'replay.device'"),
    inventory_case(10, "ssh-key-file-missing",
                   "  - name: pi\n    kind: ssh\n    ssh: {host: 127.0.0.1, user: pi, key_file: /nonexistent/key,"
                   " trust_on_first_use: true}\n", "field 'ssh.key_file': /nonexistent/key does not exist"),
    inventory_case(10, "adb-neither-serial-nor-host", "  - name: ph\n    kind: adb\n    adb: {port: 5555}\n",
                   "sets neither serial"),
    inventory_case(10, "adb-mask-not-hex", "  - name: ph\n    kind: adb\n    adb: {serial: X, big_core_mask: fz}\n",
                   "field 'adb.big_core_mask'"),
    # 11: a campaign with no devices
    inventory_case(11, "devices-empty", "", "field 'devices': is empty"),
    Case(11, "devices-comma", "measure", ("--inventory", "{work}/inventory.yaml", "--devices", ",", "--store", "{work}/store"),
         "--devices ',': names no device"),
    Case(11, "farm-devices-comma", "farm", ("devices", "--inventory", "{work}/inventory.yaml", "--devices", ","),
         "names no device"),
    # 12: farm import says what is wrong with the table (an empty one is not "already imported")
    Case(12, "import-empty-table", "farm", ("import", "{work}/empty.parquet", "--store", "{work}/store"),
         "the table has no rows"),
    Case(12, "import-not-parquet", "farm", ("import", "{work}/text.parquet", "--store", "{work}/store"),
         "not a readable Parquet file"),
    Case(12, "import-missing-file", "farm", ("import", "{work}/gone.parquet", "--store", "{work}/store"), "no such file"),
    Case(12, "pull-missing-cluster-yaml", "farm", ("pull", "{work}/gone.yaml", "--store", "{work}/store"), "file not found"),
    Case(12, "pull-cluster-yaml-not-utf8", "farm", ("pull", "{work}/latin1.txt", "--store", "{work}/store"),
         "not UTF-8 text"),
    Case(12, "encode-unknown-space", "farm", ("encode", "--space", "nope", "--sample", "2", "--store", "{work}/store"),
         "unknown search space 'nope'"),
    Case(12, "encode-sample-zero", "farm", ("encode", "--space", "nasbench201", "--sample", "0", "--store", "{work}/store"),
         "--sample 0: must be >= 1"),
    # 13: the lock wait is a number of seconds
    Case(13, "wait-for-lock-negative", "measure",
         ("--inventory", "{work}/inventory.yaml", "--sample", "1", "--store", "{work}/store", "--wait-for-lock", "-1"),
         "--wait-for-lock -1.0: must be a number of seconds >= 0"),
    Case(13, "wait-for-lock-nan", "measure",
         ("--inventory", "{work}/inventory.yaml", "--sample", "1", "--store", "{work}/store", "--wait-for-lock", "nan"),
         "--wait-for-lock nan: must be a number of seconds >= 0"),
    # 14: farm check on something that is not a store
    Case(14, "check-store-missing", "farm", ("check", "--store", "/proc/x"), "no such folder"),
    Case(14, "check-store-is-a-file", "farm", ("check", "--store", "{work}/latin1.txt"), "is a file, not a store folder"),
]


def write_inventories(work: Path) -> None:
    folder = work / "inventories"
    folder.mkdir()
    for name, body in INVENTORIES.items():
        (folder / f"{name}.yaml").write_text("devices: []\n" if not body else f"devices:\n{body}")


def corrupt_copy(predictor: Path, target: Path, change: Callable[[dict], None]) -> None:
    target.mkdir()
    (target / "weights.safetensors").write_bytes((predictor / "weights.safetensors").read_bytes())
    manifest = json.loads((predictor / "manifest.json").read_text())
    change(manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, help_table_path: Path) -> Path:
    """A store with HELP rows, a saved predictor and its damaged copies, a registry, and the bad files."""
    work = tmp_path_factory.mktemp("bad_input")
    rows = pd.read_parquet(help_table_path, filters=[("search_space", "=", "nasbench201"),
                                                     ("device", "in", ["pixel2", "pixel3"])]).head(40)
    rows.to_parquet(work / "table.parquet")
    assert import_table(work / "table.parquet", work / "store") == 40
    rows.head(0).to_parquet(work / "empty.parquet")
    rows.head(1).assign(device="pixel2\n").to_parquet(work / "device-newline.parquet")
    flops = get_method("flops")("nasbench201")
    pixel2 = rows[rows["device"] == "pixel2"]
    flops.transfer("pixel2", pd.Series(pixel2["latency_ms"].to_numpy(), index=pixel2["arch"].to_numpy()))
    predictor = registry.save(flops, work / "predictor", registry.ManifestUpdate("transfer", target="pixel2"))
    for name, change in {
        "parent": lambda m: m["weights"].update(file="../outside.safetensors"),
        "absolute": lambda m: m["weights"].update(file="/etc/passwd"),
        "sources": lambda m: m.update(sources="pixel3"),
        "weights": lambda m: m.update(weights=["weights.safetensors"]),
        "samples": lambda m: m.update(samples=[]),
    }.items():
        corrupt_copy(predictor, work / f"pred-{name}", change)
    (work / "outside.safetensors").write_bytes((predictor / "weights.safetensors").read_bytes())
    corrupt_copy(predictor, work / "pred-symlink", lambda m: None)
    (work / "pred-symlink" / "weights.safetensors").unlink()
    (work / "pred-symlink" / "weights.safetensors").symlink_to(work / "outside.safetensors")
    (work / "registry").mkdir()
    (work / "registry-latin1").mkdir()
    (work / "registry-latin1" / "registry.yaml").write_bytes(b"method: caf\xe9\n")
    (work / "inventory.yaml").write_text("devices:\n  - name: cpu-local\n    kind: cpu\n")
    (work / "latin1.yaml").write_bytes(b"# caf\xe9\ndevices: []\n")
    (work / "latin1.txt").write_bytes(LATIN1)
    (work / "text.parquet").write_text(f"{GOOD_ARCH}\n")
    write_inventories(work)
    return work


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 (or the link target) of everything under ``folder``."""
    listing = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            listing[key] = f"-> {path.readlink()}"
        elif path.is_file():
            listing[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            listing[key] = "folder"
    return listing


def entry_point(program: str) -> Callable[[list[str]], int]:
    if program == "farm":
        from loop.cli import main
    elif program == "measure":
        from farm.measure_command import main
    else:
        from trainer.cli import main
    return main


def run_in_process(case: Case, work: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = [arg.replace("{work}", str(work)) for arg in case.argv]
    try:
        code = entry_point(case.program)(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_the_store_untouched(
    case: Case, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(work)
    code, out, err = run_in_process(case, work, capsys)
    assert code == 2, (case.id, code, err)
    assert len(err.splitlines()) == 1 and err.endswith("\n") and "Traceback" not in err, err
    assert case.fragment in err, (case.fragment, err)
    assert out == ""
    assert snapshot(work) == before
    import ray

    assert not ray.is_initialized(), "a bad input must be refused before Ray starts"


def test_the_table_covers_every_class_and_counts_its_inputs() -> None:
    """The count the issue's closing table reports: bad inputs tried by this table."""
    assert {case.issue_class for case in CASES} == set(range(6, 15))
    assert len({case.id for case in CASES}) == len(CASES) >= 40


REAL_INTERPRETER = ["inventory-latin1", "store-in-proc", "target-newline", "import-empty-table", "replay-device-missing"]


def test_in_a_real_interpreter_no_traceback_reaches_the_terminal(work: Path) -> None:
    commands = {"measure": [sys.executable, "measure.py"], "farm": [sys.executable, "-m", "loop.cli"],
                "trainer": [sys.executable, "-m", "trainer"]}
    chosen = [case for case in CASES if case.name in REAL_INTERPRETER]
    before = snapshot(work)
    processes = [
        (case, subprocess.Popen([*commands[case.program], *(a.replace("{work}", str(work)) for a in case.argv)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for case in chosen
    ]
    for case, process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 2, (case.id, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err and case.fragment in err, (case.id, err)
        assert out == ""
    assert len(chosen) == len(REAL_INTERPRETER)
    assert snapshot(work) == before


def test_a_store_with_a_truncated_part_file_is_never_a_traceback(work: Path, tmp_path: Path) -> None:
    """Issue 13, class 9: one truncated part file. Until the readers skip damaged files (issue 13, class 14,
    ``farm/store.py``), the command refuses with one line naming ``farm check --repair``, exit 2, store untouched;
    once they do, the import goes on with one warning naming the file. Never a traceback."""
    import shutil

    from farm.store import Store

    store = tmp_path / "store"
    shutil.copytree(work / "store", store)
    part = Store(store).files()[0]
    part.write_bytes(part.read_bytes()[:100])
    table = tmp_path / "new.parquet"
    pd.read_parquet(work / "table.parquet").head(3).assign(device="pixel9").to_parquet(table)
    before = snapshot(store)
    process = subprocess.run([sys.executable, "-m", "loop.cli", "import", str(table), "--store", str(store)],
                             cwd=REPO, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in process.stderr
    if process.returncode == 2:
        assert len(process.stderr.splitlines()) == 1 and f"farm check --store {store} --repair" in process.stderr
        assert snapshot(store) == before
    else:  # the reader skipped the damaged file with a warning naming it, and the import went on
        assert process.returncode == 0 and part.name in process.stderr, process.stderr
