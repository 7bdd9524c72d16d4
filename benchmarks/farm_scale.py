#!/usr/bin/env python3
"""Farm scale: 32 replay devices, zero delay, 200 archs each (6,400 measurements) through Ray.

Replay devices are simulations (latencies looked up in the HELP table, no model runs), so
with zero delay every millisecond a device spends on a measurement is farm overhead: Ray
dispatch, the actor, the protocol's bookkeeping, row building, waiting for the next job.
The headline figure (target <= 20 ms) is, per device,

    overhead per measurement = (last job done - first job started) / measurements

and its median over the devices. Also printed: the latency from dispatching a job to its
rows being durable in the store, per measurement (median over jobs; it includes waiting
for the writer thread's fsyncs), the CPU time the actors and the driver spend per
measurement (less sensitive to other load on the machine than wall time), the
campaign's wall time including the start-up of 32 actor processes, and a check that all
6,400 rows are in the store exactly once.

    python benchmarks/farm_scale.py            # 32 x 200
    python benchmarks/farm_scale.py --quick    # 4 x 20, a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.inventory import Device, ReplayConfig  # noqa: E402
from farm.jobs import JobResult  # noqa: E402
from farm.run import CampaignConfig, connect, run_campaign  # noqa: E402
from farm.store import Store  # noqa: E402

TABLE = REPO / "data" / "help_latency.parquet"
TARGET_MS = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--archs", type=int, default=200)
    parser.add_argument("--job-size", type=int, default=20)
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--quick", action="store_true", help="4 devices x 20 archs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.archs = 4, 20

    frame = pq.read_table(args.table, columns=["search_space", "device", "arch", "arch_index"],
                          filters=[("search_space", "==", "nasbench201")]).to_pandas()
    sources = sorted(frame["device"].unique())
    archs = frame[frame["arch_index"] < args.archs]["arch"].unique().tolist()
    devices = [
        Device(name=f"replay-{i:02d}", kind="replay", platform=sources[i % len(sources)],
               protocol={"name": "interleaved", "max_ci": 10.0},
               replay=ReplayConfig(table=args.table, device=sources[i % len(sources)], delay_ms=0.0))
        for i in range(args.devices)
    ]
    started = time.perf_counter()
    connect(num_cpus=2)
    ray_start_s = time.perf_counter() - started

    results: list[JobResult] = []
    store = Path(tempfile.mkdtemp(prefix="farm-scale-"))
    config = CampaignConfig("nasbench201", archs, devices, store, job_size=args.job_size, progress=not args.json)
    started = time.perf_counter()
    driver_cpu = time.process_time()
    summary = run_campaign(config, on_job=results.append)
    wall = time.perf_counter() - started
    driver_cpu = time.process_time() - driver_cpu

    per_measurement = []  # dispatch (or the device's previous job done) to durable rows, per arch
    device_done: dict[str, float] = {}
    for result in sorted(results, key=lambda r: r.stored_at):
        begin = max(result.dispatched_at, device_done.get(result.job.device, 0.0))
        per_measurement.append((result.stored_at - begin) / len(result.job.archs) * 1000)
        device_done[result.job.device] = result.finished_at
    device_side = []
    for device in devices:
        jobs = [r for r in results if r.job.device == device.name]
        if jobs:
            span = max(r.finished_at for r in jobs) - min(r.started_at for r in jobs)
            device_side.append(span / sum(len(r.job.archs) for r in jobs) * 1000)
    rows = Store(store).read(columns=["device", "arch", "status"])
    counts = rows.groupby(["device", "arch"]).size()
    expected = args.devices * len(archs)
    exactly_once = len(rows) == expected and len(counts) == expected and bool(counts.eq(1).all())
    figures = {
        "devices": args.devices,
        "archs_per_device": len(archs),
        "measurements": len(rows),
        "exactly_once": exactly_once,
        "all_ok": bool((rows["status"] == "ok").all()),
        "jobs": len(results),
        "median_overhead_ms_per_measurement": statistics.median(per_measurement),
        "p90_overhead_ms_per_measurement": sorted(per_measurement)[int(0.9 * len(per_measurement))],
        "median_device_side_ms_per_measurement": statistics.median(device_side),
        "actor_cpu_ms_per_measurement": sum(r.cpu_s for r in results) / max(1, len(rows)) * 1000,
        "driver_cpu_ms_per_measurement": driver_cpu / max(1, len(rows)) * 1000,
        "campaign_wall_s": wall,
        "ray_start_s": ray_start_s,
        "throughput_per_s": len(rows) / wall,
        "target_ms": TARGET_MS,
    }
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(summary.render().splitlines()[0])
        print(f"replay devices (simulations): {args.devices} x {len(archs)} archs = {expected} measurements, "
              f"{len(results)} jobs of up to {args.job_size}")
        print(f"rows in store: {len(rows)}; each (device, arch) exactly once: {exactly_once}; all ok: {figures['all_ok']}")
        print(f"farm overhead per measurement (device time, first job start to last job end): median over "
              f"devices {figures['median_device_side_ms_per_measurement']:.2f} ms (target <= {TARGET_MS:.0f} ms)")
        print(f"dispatch to durable row, per measurement: median {figures['median_overhead_ms_per_measurement']:.2f} ms, "
              f"p90 {figures['p90_overhead_ms_per_measurement']:.2f} ms over jobs")
        print(f"CPU time per measurement: actors {figures['actor_cpu_ms_per_measurement']:.2f} ms, driver "
              f"{figures['driver_cpu_ms_per_measurement']:.2f} ms (includes start-up; Ray's own daemons not counted)")
        print(f"campaign wall {wall:.1f} s ({figures['throughput_per_s']:.0f} measurements/s), Ray start {ray_start_s:.1f} s")
    return 0 if exactly_once and figures["median_device_side_ms_per_measurement"] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
