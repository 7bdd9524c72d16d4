#!/usr/bin/env python3
"""Repeatability: two farm campaigns over the same 50 NB201 archs, for each protocol.

For each of ``help``, ``latbench`` and ``interleaved`` (the default), the same archs are
measured twice through the farm on this machine's CPU (LocalAgent, eager torch, 1 thread),
each campaign into its own store. Printed per protocol: the run-to-run Spearman of the
latency estimates, the median coefficient of variation of the rows, the share of rows
flagged unstable and the wall time of each campaign. Target for interleaved: Spearman >= 0.99.

    python benchmarks/repeatability.py            # 50 archs, full protocols
    python benchmarks/repeatability.py --quick    # 10 archs, short protocols (a smoke run)
    python benchmarks/repeatability.py --protocols interleaved --rounds 10 --warmup 1 --runs 5
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

from farm.inventory import Device  # noqa: E402
from farm.run import CampaignConfig, connect, run_campaign  # noqa: E402
from farm.spaces import get  # noqa: E402
from farm.store import Store  # noqa: E402

PROTOCOLS = ("help", "latbench", "interleaved")
QUICK_OVERRIDES = {
    "help": {"warmup": 5, "runs": 10},
    "latbench": {"warmup": 2, "runs": 20},
    "interleaved": {"rounds": 2, "runs": 5},
}
TARGET = 0.99


def campaign(protocol: str, archs: list[str], device: Device, job_size: int, overrides: dict) -> tuple[float, "object"]:
    store = tempfile.mkdtemp(prefix=f"repeat-{protocol}-")
    config = CampaignConfig("nasbench201", archs, [device], store, protocol=protocol, job_size=job_size,
                            progress=False, **overrides)
    started = time.perf_counter()
    run_campaign(config)
    wall = time.perf_counter() - started
    rows = Store(store).read(columns=["arch", "latency_ms", "cv", "status"]).set_index("arch").loc[archs]
    return wall, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--job-size", type=int, default=50, help="archs per job (the farm default, 50)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--rounds", type=int, help="interleaved: rounds (default 5)")
    parser.add_argument("--warmup", type=int, help="interleaved: warm-up runs per burst (default 2)")
    parser.add_argument("--runs", type=int, help="interleaved: timed runs per burst (default 10)")
    parser.add_argument("--quantile", type=float, help="interleaved: the estimator's quantile (default 0.1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    archs = get("nasbench201").sample(10 if args.quick else args.archs, seed=args.seed)
    device = Device(name="cpu-local", kind="cpu", runtimes=["torch"], threads=1)
    connect(num_cpus=2)

    figures = {}
    for protocol in args.protocols.split(","):
        overrides = dict(QUICK_OVERRIDES[protocol]) if args.quick else {}
        if protocol == "interleaved":
            chosen = {"rounds": args.rounds, "warmup": args.warmup, "runs": args.runs, "quantile": args.quantile}
            overrides.update({key: value for key, value in chosen.items() if value is not None})
        (wall_a, a), (wall_b, b) = (campaign(protocol, archs, device, args.job_size, overrides) for _ in range(2))
        measured = (a["status"] != "failed") & (b["status"] != "failed")
        both = (a["latency_ms"][measured].to_numpy(), b["latency_ms"][measured].to_numpy())
        figures[protocol] = {
            "spearman": float(spearmanr(*both).statistic),
            "median_cv": float(np.median(np.concatenate([a["cv"].dropna(), b["cv"].dropna()]))),
            "unstable_share": float(((a["status"] == "unstable").mean() + (b["status"] == "unstable").mean()) / 2),
            "failed": int((~measured).sum()),
            "wall_s": [wall_a, wall_b],
            "overrides": overrides,
        }
        print(f"  {protocol}: done in {wall_a + wall_b:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"archs": len(archs), "protocols": figures, "target": TARGET}, indent=1))
    else:
        print(f"{len(archs)} NB201 archs, two farm campaigns per protocol, LocalAgent on this CPU (1 thread), "
              f"jobs of {args.job_size}")
        print(f"{'protocol':<12} {'Spearman':>9} {'median CV':>10} {'unstable':>9} {'wall s (run 1, run 2)':>22}")
        for protocol, f in figures.items():
            print(f"{protocol:<12} {f['spearman']:>9.4f} {f['median_cv']:>10.4f} {f['unstable_share']:>9.0%} "
                  f"{f['wall_s'][0]:>10.1f} {f['wall_s'][1]:>10.1f}")
        if "interleaved" in figures:
            print(f"target for interleaved: Spearman >= {TARGET}")
    return 0 if figures.get("interleaved", {"spearman": 1.0})["spearman"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
