"""Speed of the zero-cost proxies: can ``farm encode`` score 1,000 NB201 archs in <= 10 min on 2 CPU cores?

Prints, over ``--repeats`` repeats on fresh random NB201 samples (the space's default input spec,
``farm.proxies.inputs.DEFAULT_SPECS``: batch 16 of 16x16 Gaussian images):

1. **one core**: seconds per arch for all 13 proxies in this process (single-threaded, as a Ray
   task runs them), as wall time and as this process's CPU time (on a shared machine the CPU time
   leaves out the waiting for a core), with the slowest proxies' share;
2. **farm encode**: wall seconds of :func:`farm.encode.run_encode` on ``--archs`` archs through a
   local Ray with ``--cpus`` CPUs into a temporary store (Ray's start excluded, its workers' first
   imports included), extrapolated linearly to 1,000 archs.

Each figure is the median with its min-max spread. The machine's load average is printed next
to them: figures taken while other work shares the cores are upper bounds.

Usage: ``python benchmarks/proxies.py [--archs 40] [--single 12] [--repeats 2] [--cpus 2] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm import spaces  # noqa: E402
from farm.encode import EncodeConfig, run_encode  # noqa: E402
from farm.proxies import NAMES  # noqa: E402
from farm.proxies.compute import score_arch  # noqa: E402
from farm.proxies.inputs import default_spec  # noqa: E402

SPACE = "nasbench201"
TARGET_S_PER_1000 = 600.0


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of ``values``."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def one_core(archs: list[str]) -> dict[str, Any]:
    """Wall and CPU seconds per arch for all proxies in this process, and seconds per proxy."""
    spec = default_spec(SPACE)
    per_proxy: dict[str, float] = defaultdict(float)
    wall, cpu = time.perf_counter(), time.process_time()
    for arch in archs:
        for outcome in score_arch(SPACE, arch, NAMES, spec):
            per_proxy[outcome.proxy] += outcome.seconds
    return {
        "wall_s_per_arch": (time.perf_counter() - wall) / len(archs),
        "cpu_s_per_arch": (time.process_time() - cpu) / len(archs),
        "proxy_s_per_arch": {name: seconds / len(archs) for name, seconds in per_proxy.items()},
    }


def through_ray(archs: list[str]) -> float:
    """Wall seconds of ``run_encode`` on ``archs`` into a fresh temporary store (Ray already started)."""
    with tempfile.TemporaryDirectory(prefix="bench-proxies-") as store:
        config = EncodeConfig(SPACE, archs, NAMES, default_spec(SPACE), store, progress=False)
        started = time.perf_counter()
        summary = run_encode(config)
        seconds = time.perf_counter() - started
    if summary.failed:
        raise SystemExit(f"{summary.failed} proxies failed; the benchmark needs them all computed")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=40, help="archs per farm-encode repeat")
    parser.add_argument("--single", type=int, default=12, help="archs per one-core repeat")
    parser.add_argument("--repeats", type=int, default=2, help="repeats, each on a fresh sample")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    import ray

    space = spaces.get(SPACE)
    load_before = os.getloadavg()[0]
    single = [one_core(space.sample(args.single, seed=100 + r)) for r in range(args.repeats)]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=args.cpus, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    try:
        encode_s = [through_ray(space.sample(args.archs, seed=200 + r)) for r in range(args.repeats)]
    finally:
        ray.shutdown()
    load_after = os.getloadavg()[0]

    cpu_per_arch = [s["cpu_s_per_arch"] for s in single]
    per_1000 = [seconds / args.archs * 1000 for seconds in encode_s]
    proxy_share = {
        name: statistics.median(s["proxy_s_per_arch"][name] for s in single) for name in NAMES
    }
    figures = {
        "spec": default_spec(SPACE).key,
        "load_average": {"before": load_before, "after": load_after, "cores": os.cpu_count()},
        "one_core_wall_s_per_arch": spread([s["wall_s_per_arch"] for s in single]),
        "one_core_cpu_s_per_arch": spread(cpu_per_arch),
        "one_core_cpu_extrapolated_s_per_1000_on_cpus": spread([c * 1000 / args.cpus for c in cpu_per_arch]),
        "proxy_s_per_arch": proxy_share,
        "farm_encode_s": spread(encode_s),
        "farm_encode_extrapolated_s_per_1000": spread(per_1000),
        "target_s_per_1000": TARGET_S_PER_1000,
        "archs": args.archs,
        "single": args.single,
        "repeats": args.repeats,
        "cpus": args.cpus,
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"zero-cost proxies, {SPACE}, spec {figures['spec']}, {args.repeats} repeats; "
          f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores")
    m = figures["one_core_wall_s_per_arch"]
    c = figures["one_core_cpu_s_per_arch"]
    print(f"one core, 13 proxies: {m['median']:.2f} s wall per arch ({m['min']:.2f}-{m['max']:.2f}), "
          f"{c['median']:.2f} s CPU ({c['min']:.2f}-{c['max']:.2f}) over {args.single} archs per repeat")
    slowest = sorted(proxy_share.items(), key=lambda item: -item[1])[:4]
    print("  slowest (the shared gradient pass is counted under the first proxy that needs it): "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in slowest))
    e = figures["one_core_cpu_extrapolated_s_per_1000_on_cpus"]
    print(f"  -> 1,000 archs on {args.cpus} cores from CPU time: {e['median']:.0f} s ({e['min']:.0f}-{e['max']:.0f})")
    f = figures["farm_encode_extrapolated_s_per_1000"]
    w = figures["farm_encode_s"]
    print(f"farm encode, {args.archs} archs through Ray ({args.cpus} CPUs): {w['median']:.1f} s ({w['min']:.1f}-{w['max']:.1f})"
          f" -> 1,000 archs: {f['median']:.0f} s ({f['min']:.0f}-{f['max']:.0f}); target <= {TARGET_S_PER_1000:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
