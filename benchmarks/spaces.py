"""Speed and fidelity figures of the search spaces (``farm.spaces``).

Prints:

1. median seconds to build one NAS-Bench-201 model and freeze it as TorchScript
   with :func:`farm.spaces.export.freeze_torchscript` over random archs (target
   <= 0.2 s), and for comparison with module-level ``torch.jit.script`` or
   ``torch.jit.trace`` followed by ``torch.jit.freeze``;
2. seconds to encode all 15,625 NB201 graphs (``graph()``, caches cleared); target <= 5 s;
3. seconds to compute FLOPs of the 5,000 FBNet archs of the public table (cold caches);
4. Spearman correlation between ``flops()`` and published latencies on every
   arch of the public table: NB201 vs raspi4, FBNet vs raspi4, OFA vs titan_rtx_64.

Usage: ``python benchmarks/spaces.py [--archs 20] [--slow-archs 5] [--threads 1] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm import spaces  # noqa: E402
from farm.spaces import fbnet, nasbench201  # noqa: E402
from farm.spaces.export import freeze_torchscript  # noqa: E402

TABLE = Path(__file__).resolve().parents[1] / "data" / "help_latency.parquet"


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def timed_both(work: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine CPU time leaves out the waiting."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def freeze_times(archs: list[str], slow_archs: int) -> dict[str, dict[str, float]]:
    """Median build+freeze seconds per NB201 arch for each export path (one untimed warm-up each).

    ``sealed`` is :func:`freeze_torchscript`, on all ``archs``; ``script`` and
    ``trace`` (module-level, then ``torch.jit.freeze``) on the first ``slow_archs``.
    """
    space = spaces.get("nasbench201")
    example = torch.zeros(space.input_shape(archs[0]))

    def sealed(arch: str) -> None:
        freeze_torchscript(space.build(arch), example)

    def scripted(arch: str) -> None:
        torch.jit.freeze(torch.jit.script(space.build(arch)))

    def traced(arch: str) -> None:
        torch.jit.freeze(torch.jit.trace(space.build(arch), example, check_trace=False))

    figures = {}
    for name, work, subset in (("sealed", sealed, archs), ("script", scripted, archs[:slow_archs]), ("trace", traced, archs[:slow_archs])):
        if not subset:
            continue
        work(subset[0])
        runs = [timed_both(lambda a=arch: work(a)) for arch in subset]
        figures[name] = {
            "wall_median": statistics.median(w for w, _ in runs),
            "cpu_median": statistics.median(c for _, c in runs),
            "archs": len(subset),
        }
    return figures


def encode_all_nb201() -> float:
    space = spaces.get("nasbench201")
    archs = list(space.enumerate())
    nasbench201._parse.cache_clear()
    nasbench201._graph_cached.cache_clear()
    return timed(lambda: [space.graph(arch) for arch in archs])


def fbnet_flops(archs: list[str]) -> float:
    space = spaces.get("fbnet")
    fbnet._parse.cache_clear()
    fbnet._component_costs.cache_clear()
    return timed(lambda: [space.flops(arch) for arch in archs])


def spearman_figures() -> dict[str, dict[str, float]]:
    import pandas as pd
    from scipy.stats import spearmanr

    figures = {}
    for space_name, device in (("nasbench201", "raspi4"), ("fbnet", "raspi4"), ("ofa", "titan_rtx_64")):
        table = pd.read_parquet(
            TABLE, columns=["arch", "latency_ms"], filters=[("search_space", "==", space_name), ("device", "==", device)]
        )
        space = spaces.get(space_name)
        rho = spearmanr([space.flops(a) for a in table["arch"]], table["latency_ms"]).statistic
        figures[f"{space_name}/{device}"] = {"spearman": float(rho), "archs": len(table)}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20, help="NB201 archs to build and freeze (default 20)")
    parser.add_argument("--slow-archs", type=int, default=5, help="archs for the module-level script/trace comparison (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    report: dict[str, Any] = {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # other users of the CPU make every figure slower
        "threads": args.threads,
        "torch": torch.__version__,
    }
    report["nb201_build_freeze_s"] = freeze_times(spaces.get("nasbench201").sample(args.archs, seed=0), args.slow_archs)
    report["nb201_encode_all_graphs_s"] = encode_all_nb201()
    fbnet_archs = spaces.get("fbnet").sample(5000, seed=0)
    if TABLE.is_file():
        import pandas as pd

        fbnet_archs = pd.read_parquet(TABLE, columns=["arch"], filters=[("search_space", "==", "fbnet")])["arch"].unique().tolist()
    report["fbnet_flops_5000_s"] = fbnet_flops(fbnet_archs)
    report["spearman_flops_vs_latency"] = spearman_figures() if TABLE.is_file() else f"{TABLE} not found"
    report["load_average_1min_end"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    freeze = report["nb201_build_freeze_s"]
    print(f"host {report['host']}: {report['cpu_count']} CPUs, load {report['load_average_1min']:.1f} -> "
          f"{report['load_average_1min_end']:.1f}, torch {report['torch']}, {args.threads} thread(s)")
    labels = {"sealed": "freeze_torchscript (target <= 0.2 s)", "script": "module-level script + freeze", "trace": "module-level trace + freeze"}
    for path, figure in freeze.items():
        print(
            f"NB201 build + {labels[path]}, median of {figure['archs']} archs: "
            f"{figure['wall_median']:.3f} s wall, {figure['cpu_median']:.3f} s CPU"
        )
    print(f"NB201 encode all 15,625 graphs: {report['nb201_encode_all_graphs_s']:.2f} s (target <= 5 s)")
    print(f"FBNet FLOPs of {len(fbnet_archs)} archs (cold caches): {report['fbnet_flops_5000_s']:.2f} s")
    spearman = report["spearman_flops_vs_latency"]
    if isinstance(spearman, str):
        print(f"Spearman figures skipped: {spearman}")
    else:
        for pair, figure in spearman.items():
            print(f"Spearman(flops, latency) {pair}, all {figure['archs']} archs: {figure['spearman']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
