"""cluster.yaml is a valid Ray local-provider config, and its start commands offer the right resources."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from farm.inventory import loads
from farm.node_resources import resources_for

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster.yaml"


@pytest.fixture()
def cluster_config() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_cluster_yaml_passes_rays_own_preparation_and_validation(cluster_config: dict) -> None:
    prepared = prepare_config(cluster_config)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "local"
    node_type = prepared["available_node_types"][prepared["head_node_type"]]
    assert node_type["max_workers"] == len(cluster_config["provider"]["worker_ips"])


def test_validation_would_catch_a_broken_config(cluster_config: dict) -> None:
    broken = copy.deepcopy(cluster_config)
    broken["auth"]["ssh_port"] = 2222  # Ray's SSH runner has no port option
    with pytest.raises(Exception, match="ssh_port"):
        validate_config(prepare_config(broken))


def test_every_host_offers_its_devices_as_custom_resources(cluster_config: dict) -> None:
    commands = cluster_config["head_start_ray_commands"] + cluster_config["worker_start_ray_commands"]
    starts = [c for c in commands if "ray start" in c]
    assert len(starts) == 2 and all("--resources=" in c and "farm.node_resources" in c for c in starts)
    assert "--head" in starts[0] and "$RAY_HEAD_IP" in starts[1]


def test_every_ray_start_requires_the_token_and_uses_the_clusters_own_temp_dir(cluster_config: dict) -> None:
    for commands in (cluster_config["head_start_ray_commands"], cluster_config["worker_start_ray_commands"]):
        starts = [c for c in commands if "ray start" in c]
        assert all("RAY_AUTH_MODE=token ray start" in c and '--temp-dir="$HOME/.latfarm/ray"' in c for c in starts)
        # stop only this cluster's Ray (by its temp dir), never a bare `ray stop`
        assert commands[0] == "python -m farm.ray_stop --temp-dir ~/.latfarm/ray"
        assert not any(c.strip().startswith("ray stop") for c in commands)


def test_the_token_made_on_the_head_is_synced_to_the_workers(cluster_config: dict) -> None:
    assert cluster_config["cluster_synced_files"] == ["~/.ray/auth_token"]
    assert cluster_config["head_setup_commands"] == ["bash ~/latfarm/deploy/cluster-host-setup.sh head"]
    assert cluster_config["worker_setup_commands"] == ["bash ~/latfarm/deploy/cluster-host-setup.sh worker"]
    script = (REPO / "deploy" / "cluster-host-setup.sh").read_text()
    assert "ray\" get-auth-token --generate" in script and "umask 077" in script
    result = subprocess.run(["bash", "-n", str(REPO / "deploy" / "cluster-host-setup.sh")], capture_output=True)
    assert result.returncode == 0, result.stderr


def test_only_head_ip_worker_ips_and_auth_are_site_specific(cluster_config: dict) -> None:
    """Everything else refers to paths ray up itself creates (~/latfarm, ~/.latfarm, ~/.ray)."""
    text = yaml.safe_dump({k: v for k, v in cluster_config.items() if k not in ("provider", "auth")})
    assert "192.168." not in text and "/home/" not in text and "/root" not in text


def test_node_resources_match_inventory_nodes(tmp_path: Path) -> None:
    inventory_text = """
devices:
  - {name: pixel7, kind: cpu, node: 192.168.1.20}
  - {name: pi4-a, kind: cpu, node: 192.168.1.20}
  - {name: orin, kind: cpu, node: jetson-host}
  - {name: here, kind: cpu}
"""
    inventory = loads(inventory_text)
    assert resources_for(inventory, {"192.168.1.20"}) == {"device:pixel7": 1, "device:pi4-a": 1}
    assert resources_for(inventory, {"jetson-host", "10.0.0.1"}) == {"device:orin": 1}
    assert resources_for(inventory, {"elsewhere"}) == {}
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory_text)
    out = subprocess.run(
        [sys.executable, "-m", "farm.node_resources", "--inventory", str(path), "--node", "jetson-host"],
        capture_output=True, text=True, cwd=REPO, check=True,
    ).stdout
    assert json.loads(out) == {"device:orin": 1}
