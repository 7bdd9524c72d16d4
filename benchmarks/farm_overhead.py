#!/usr/bin/env python3
"""Farm overhead: the same 30 NB201 archs through the farm and through a bare in-process loop.

Both paths use the same agent class (``agents.local.LocalAgent`` on this CPU, eager torch,
1 thread), the same protocol (the inventory default, interleaved) and the same batches
(``--job-size`` archs measured together), so the difference is what the farm adds: Ray, the
device actor, row building and the Parquet store. The passes run in ABBA order (bare, farm,
farm, bare) so slow drift in machine load hits both equally. Printed:

* wall-time ratio farm / bare (target <= 1.25), with and without the actor's start-up;
* Spearman between the two paths' latencies (target >= 0.95).

    python benchmarks/farm_overhead.py            # 30 archs, ABBA
    python benchmarks/farm_overhead.py --quick    # 8 archs, one pass each, short protocol
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.local import LocalAgent  # noqa: E402
from farm import protocol as protocols  # noqa: E402
from farm.inventory import Device  # noqa: E402
from farm.jobs import Job  # noqa: E402
from farm.run import CampaignConfig, connect, make_protocol, run_campaign  # noqa: E402
from farm.spaces import get  # noqa: E402
from farm.store import Store  # noqa: E402

RATIO_TARGET, SPEARMAN_TARGET = 1.25, 0.95


def bare_pass(device: Device, config: CampaignConfig) -> tuple[float, dict[str, float]]:
    """Measure ``config.archs`` in this process with the farm's agent and protocol, no Ray, no store."""
    protocol = make_protocol(device, config)
    started = time.perf_counter()
    agent = LocalAgent.from_device(device, campaign_id="bare")
    latencies: dict[str, float] = {}
    for start in range(0, len(config.archs), config.job_size):
        job = Job(f"bare-{start}", device.name, config.search_space, tuple(config.archs[start : start + config.job_size]))
        artifacts = [job.artifact(arch) for arch in job.archs]
        for artifact in artifacts:
            agent.prepare(artifact)
        for artifact, summary in zip(artifacts, protocols.measure_batch(agent, artifacts, protocol, seed=start)):
            latencies[artifact.arch] = summary.latency_ms
    agent.close()
    return time.perf_counter() - started, latencies


def farm_pass(config: CampaignConfig) -> tuple[float, float, dict[str, float]]:
    """Measure through the farm into a fresh store: (wall, wall after actor start-up, latencies)."""
    config.store_root = tempfile.mkdtemp(prefix="farm-overhead-")
    results = []
    started = time.perf_counter()
    run_campaign(config, on_job=results.append)
    wall = time.perf_counter() - started
    first_dispatch = min(r.dispatched_at for r in results)
    measuring = max(r.stored_at for r in results) - first_dispatch
    rows = Store(config.store_root).read(columns=["arch", "latency_ms", "status"])
    return wall, measuring, dict(zip(rows["arch"], rows["latency_ms"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--job-size", type=int, default=50, help="archs per job (the farm default, 50)")
    parser.add_argument("--quick", action="store_true", help="8 archs, one pass each, 2 rounds x 5 runs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = Device(name="cpu-local", kind="cpu", runtimes=["torch"], threads=1)
    archs = get("nasbench201").sample(8 if args.quick else args.archs, seed=args.seed)
    overrides = {"rounds": 2, "runs": 5} if args.quick else {}
    order = ["bare", "farm"] if args.quick else ["bare", "farm", "farm", "bare"]

    connect(num_cpus=2)
    walls: dict[str, list[float]] = {"bare": [], "farm": [], "farm_measuring": []}
    latencies: dict[str, list[dict[str, float]]] = {"bare": [], "farm": []}
    for path in order:
        config = CampaignConfig("nasbench201", archs, [device], "", job_size=args.job_size, progress=False,
                                seed=args.seed, **overrides)
        if path == "bare":
            wall, values = bare_pass(device, config)
        else:
            wall, measuring, values = farm_pass(config)
            walls["farm_measuring"].append(measuring)
        walls[path].append(wall)
        latencies[path].append(values)
        print(f"  {path:<4} pass: {wall:6.1f} s", file=sys.stderr)

    def mean_latency(path: str) -> np.ndarray:
        return np.array([np.mean([run[a] for run in latencies[path]]) for a in archs])

    rho = float(spearmanr(mean_latency("farm"), mean_latency("bare")).statistic)
    figures = {
        "archs": len(archs),
        "passes": order,
        "bare_wall_s": float(np.sum(walls["bare"])),
        "farm_wall_s": float(np.sum(walls["farm"])),
        "ratio": float(np.sum(walls["farm"]) / np.sum(walls["bare"])),
        "ratio_after_actor_start": float(np.sum(walls["farm_measuring"]) / np.sum(walls["bare"])),
        "spearman": rho,
        "targets": {"ratio": RATIO_TARGET, "spearman": SPEARMAN_TARGET},
    }
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"{len(archs)} NB201 archs, LocalAgent on this CPU (1 thread), passes {' '.join(order)}")
        print(f"wall: bare {figures['bare_wall_s']:.1f} s, farm {figures['farm_wall_s']:.1f} s")
        print(f"wall-time ratio farm/bare: {figures['ratio']:.3f} (target <= {RATIO_TARGET}); "
              f"without the actor's start-up: {figures['ratio_after_actor_start']:.3f}")
        print(f"Spearman farm vs bare latencies: {rho:.4f} (target >= {SPEARMAN_TARGET})")
    return 0 if figures["ratio"] <= RATIO_TARGET and rho >= SPEARMAN_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
