"""farm pull: the head's store brought home and merged; bad input one line, exit 2.

The copy step over SSH (``ray rsync-down``) needs a cluster that is up; the e2e test
(tests/e2e) runs it against a real ``ray up``. Here the merge part runs on real
Parquet stores with the copy injected as a plain local folder copy (a *simulation*
of the head's home folder, named so below), and the real ``ray rsync-down`` is run
against a cluster that is not up, to show its failure is one line.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from farm.errors import UserError, exit_on_user_error
from farm.pull import DEFAULT_REMOTE_STORE, pull, read_cluster, register, run_pull
from farm.store import Store
from tests.farm.test_merge import head_store

REPO = Path(__file__).resolve().parents[2]


def simulated_head_home(home: Path):
    """An rsync-down that copies from ``home``, a local folder standing in for the head's home folder."""
    copies: list[Path] = []

    def rsync_down(config: Path, remote: str, local: Path) -> None:
        assert config.is_file()
        shutil.copytree(home / remote.removeprefix("~/"), local, dirs_exist_ok=True)
        copies.append(local)

    rsync_down.copies = copies  # type: ignore[attr-defined]
    return rsync_down


@pytest.fixture()
def cluster_yaml(tmp_path: Path) -> Path:
    """The shipped cluster.yaml (only the head is read from it here)."""
    path = tmp_path / "cluster.yaml"
    path.write_text((REPO / "cluster.yaml").read_text())
    return path


def test_the_shipped_cluster_yaml_names_its_head(cluster_yaml):
    config = yaml.safe_load(cluster_yaml.read_text())
    cluster = read_cluster(cluster_yaml)
    assert (cluster.head, cluster.cluster_name) == (config["provider"]["head_ip"], config["cluster_name"])


def test_pull_merges_the_heads_store_and_a_second_pull_adds_nothing(cluster_yaml, tmp_path, capsys):
    home = tmp_path / "head-home"
    head_store(home / DEFAULT_REMOTE_STORE.removeprefix("~/"))
    rsync_down = simulated_head_home(home)
    parser = argparse.ArgumentParser(prog="farm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["pull", str(cluster_yaml), "--store", str(tmp_path / "local")])
    head = read_cluster(cluster_yaml).head
    rows = len(Store(home / "measurements").read())
    assert run_pull(args, rsync_down=rsync_down) == 0
    assert capsys.readouterr().out == f"pulled {rows} new rows (0 already here) from {head}:~/measurements into {tmp_path / 'local'}\n"
    assert run_pull(args, rsync_down=rsync_down) == 0
    assert f"pulled 0 new rows ({rows} already here)" in capsys.readouterr().out
    assert len(Store(tmp_path / "local").read()) == rows
    assert rsync_down.copies and not any(copy.exists() for copy in rsync_down.copies)  # temporary copies removed


def test_a_remote_store_option_and_an_empty_head_store(cluster_yaml, tmp_path):
    home = tmp_path / "head-home"
    (home / "empty").mkdir(parents=True)
    result = pull(cluster_yaml, tmp_path / "local", remote="~/empty", rsync_down=simulated_head_home(home))
    assert (result.merge.added, result.merge.already) == (0, 0)
    head_store(home / "runs" / "lab")
    result = pull(cluster_yaml, tmp_path / "local", remote="~/runs/lab", rsync_down=simulated_head_home(home))
    assert result.merge.added == len(Store(home / "runs" / "lab").read()) and result.source.endswith(":~/runs/lab")


def test_bad_input_is_one_line_and_exit_2_before_anything_is_copied(cluster_yaml, tmp_path, capsys):
    home = tmp_path / "head-home"
    (home / "measurements").mkdir(parents=True)
    (home / "measurements" / "notes.txt").write_text("not a store")
    (tmp_path / "bad.yaml").write_text("provider: [unclosed\n")
    (tmp_path / "other.yaml").write_text("name: not a cluster\n")
    cases = [
        ([str(tmp_path / "missing.yaml")], "file not found"),
        ([str(tmp_path / "bad.yaml")], "not valid YAML"),
        ([str(tmp_path / "other.yaml")], "not a Ray cluster config"),
        ([str(cluster_yaml), "--remote-store", "~/my store"], "--remote-store '~/my store'"),
        ([str(cluster_yaml)], "not a farm store"),
    ]
    parser = argparse.ArgumentParser(prog="farm")
    register(parser.add_subparsers(dest="command"))
    for argv, message in cases:
        args = parser.parse_args(["pull", *argv, "--store", str(tmp_path / "local")])
        with pytest.raises(SystemExit) as exit_:
            exit_on_user_error(run_pull)(args, rsync_down=simulated_head_home(home))
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and message in error and error.count("\n") == 1, (argv, error)
    assert not (tmp_path / "local").exists()


def test_a_bad_row_on_the_head_is_named_by_its_head_path(cluster_yaml, tmp_path):
    home = tmp_path / "head-home"
    store = head_store(home / "measurements")
    Store(store).append(Store(store).read().head(1))  # the same measurement twice on the head
    with pytest.raises(UserError, match=r"measurement_id .* is on 2 rows") as error:
        pull(cluster_yaml, tmp_path / "local", rsync_down=simulated_head_home(home))
    assert f"{read_cluster(cluster_yaml).head}:~/measurements" in str(error.value) and "latfarm-pull-" not in str(error.value)
    assert not (tmp_path / "local").exists()


def test_the_real_ray_rsync_down_of_a_cluster_that_is_not_up_is_one_line(tmp_path, monkeypatch):
    """Ray's own launcher, for real: with no `ray up` behind the config it fails, and says why in one line."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # Ray's cluster state and config cache go here, not /tmp
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"cluster_name": f"latfarm-pull-test-{tmp_path.name}", "auth": {"ssh_user": "nobody"},
                                      "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}}))
    with pytest.raises(UserError, match="`ray rsync-down` of ~/measurements failed: .*not found") as error:
        pull(config, tmp_path / "local")
    assert "\n" not in str(error.value) and "ray up" in str(error.value)
    assert not (tmp_path / "local").exists()
