"""Build time per runtime: NAS-Bench-201 archs built, verified against eager, then fetched from the cache.

Prints, per runtime, the median fresh build time (conversion + verification), the cache-hit
time and the worst max-abs-diff against eager. Runtimes whose converter is not installed are
listed as skipped.

    .venv/bin/python benchmarks/builds.py [--archs 3] [--space nasbench201] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm import spaces  # noqa: E402
from farm.build import build, converter_available  # noqa: E402

RUNTIMES = ("torchscript", "tflite", "executorch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nasbench201")
    parser.add_argument("--archs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    space = spaces.get(args.space)
    archs = space.sample(args.archs, seed=args.seed)
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="latfarm-builds-") as cache:
        for runtime in RUNTIMES:
            if not converter_available(runtime):
                report[runtime] = {"skipped": "converter not installed"}
                continue
            fresh, hits, diffs = [], [], []
            for arch in archs:
                result = build(space, arch, runtime, 1, None, cache)
                fresh.append(result.seconds)
                diffs.append(result.max_abs_diff or 0.0)
                started = time.perf_counter()
                assert build(space, arch, runtime, 1, None, cache).cached
                hits.append(time.perf_counter() - started)
            report[runtime] = {
                "archs": len(archs),
                "first_build_s": fresh[0],
                "median_build_s": statistics.median(fresh),
                "median_cache_hit_s": statistics.median(hits),
                "max_abs_diff": max(diffs),
            }
    if args.json:
        print(json.dumps({"space": args.space, "runtimes": report}))
        return 0
    print(f"{args.space}: {len(archs)} archs per runtime (the first build also imports the converter)")
    print(f"{'runtime':<12} {'first s':>8} {'median s':>9} {'cache hit s':>12} {'max |diff|':>11}")
    for runtime, row in report.items():
        if "skipped" in row:
            print(f"{runtime:<12} skipped: {row['skipped']}")
            continue
        print(
            f"{runtime:<12} {row['first_build_s']:>8.2f} {row['median_build_s']:>9.2f} "
            f"{row['median_cache_hit_s']:>12.3f} {row['max_abs_diff']:>11.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
