#!/usr/bin/env python3
"""Repeatability: pairs of farm campaigns over the same NB201 archs, for each protocol.

For each protocol (``help``, ``latbench`` and ``interleaved``, the default) the same archs
are measured by two campaigns through the farm on this machine's CPU (LocalAgent,
eager torch, 1 thread), each into its own store; ``--repeat N`` measures N such pairs.
Printed per protocol and pair:

- run-to-run Spearman and Kendall of the raw estimates (``latency_ms``), and of the
  anchor-corrected ones (``farm.anchoring``) where the campaigns' jobs were anchored;
- the median relative half-width of the rows' intervals (``ci_low_ms``/``ci_high_ms``);
- the share of ``unstable`` rows;
- the wall time of each campaign and the anchors' share of the timed runs;
- calibration: the share of archs whose second estimate falls inside the first
  campaign's interval, beside the nominal level (raw, and anchor-corrected with both
  campaigns on one scale). Two equally precise estimates land inside each other's
  interval less often than the nominal level: ``2 Phi(z / sqrt 2) - 1`` for normal
  errors (76% at a nominal 90%), printed as ``ideal``.

A campaign of several jobs (``--archs 200 --job-size 20``) shows what anchoring buys:
its raw Spearman is the figure without anchoring, the corrected one with it.
``--job-size 20,50`` measures both job sizes in one call (jobs of 50 without
anchoring: their raw column; add ``--no-anchors`` to save the anchors' time too).

    python benchmarks/repeatability.py                       # 50 archs, 3 protocols, one pair each
    python benchmarks/repeatability.py --protocols interleaved --repeat 3
    python benchmarks/repeatability.py --protocols interleaved --archs 200 --job-size 20,50
    python benchmarks/repeatability.py --quick               # 10 archs in jobs of 5, short protocols (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, norm, spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.anchoring import GROUP_COLUMNS, anchoring_report, corrected_interval, corrected_latency  # noqa: E402
from farm.intervals import CI_LEVEL  # noqa: E402
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
#: Targets of issue 10 for the default protocol.
TARGET_SPEARMAN = 0.995
TARGET_SPEARMAN_MANY_JOBS = 0.99
TARGET_UNSTABLE = 0.10
TARGET_CALIBRATION_POINTS = 0.10
COLUMNS = [*GROUP_COLUMNS, "job_id", "anchor_ms", "is_anchor", "arch", "status", "latency_ms",
           "ci_low_ms", "ci_high_ms", "samples_ms"]
ACROSS_CAMPAIGNS = [column for column in GROUP_COLUMNS if column != "campaign_id"]


@dataclass
class Campaign:
    """One campaign's rows (all of them, anchors included) and its wall time."""

    rows: pd.DataFrame
    wall_s: float


@dataclass
class PairFigures:
    """What one pair of campaigns showed (NaN where there is nothing to compute)."""

    spearman: float
    kendall: float
    spearman_corrected: float
    kendall_corrected: float
    median_ci_rel_half_width: float
    unstable_share: float
    calibration: float
    calibration_corrected: float
    pair_coverage: float
    pair_coverage_corrected: float
    failed: int
    jobs: int
    wall_s: list[float] = field(default_factory=list)
    anchor_time_share: float = math.nan


def run_one(protocol: str, archs: list[str], device: Device, options: dict[str, Any]) -> Campaign:
    with tempfile.TemporaryDirectory(prefix=f"repeat-{protocol}-") as store:
        config = CampaignConfig("nasbench201", archs, [device], store, protocol=protocol, progress=False, **options)
        started = time.perf_counter()
        run_campaign(config)
        wall = time.perf_counter() - started
        return Campaign(Store(store).read(columns=COLUMNS), wall)


def per_arch(rows: pd.DataFrame, values: pd.Series, archs: list[str]) -> pd.Series:
    """One value per requested arch (an arch that is also an anchor: its first job's row)."""
    mine = rows.assign(value=values)[rows["arch"].isin(archs)].sort_values("job_id")
    return mine.drop_duplicates("arch").set_index("arch")["value"].reindex(archs)


def rank_agreement(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    both = a.notna() & b.notna()
    if both.sum() < 3:
        return math.nan, math.nan
    return float(spearmanr(a[both], b[both]).statistic), float(kendalltau(a[both], b[both]).statistic)


def share_inside(estimate: pd.Series, low: pd.Series, high: pd.Series) -> float:
    known = estimate.notna() & low.notna() & high.notna()
    if not known.any():
        return math.nan
    return float(((estimate[known] >= low[known]) & (estimate[known] <= high[known])).mean())


def share_within_joint(a: pd.Series, a_half: pd.Series, b: pd.Series, b_half: pd.Series) -> float:
    """The share of archs whose two estimates differ by at most ``sqrt(h_a**2 + h_b**2)``.

    With calibrated intervals of the same level (half-width ``h = t * se``), that is the same level's
    interval for the difference of two independent estimates, so the share should be the nominal level.
    """
    known = a.notna() & b.notna() & a_half.notna() & b_half.notna()
    if not known.any():
        return math.nan
    joint = np.sqrt(a_half[known] ** 2 + b_half[known] ** 2)
    return float(((a[known] - b[known]).abs() <= joint).mean())


def compare(first: Campaign, second: Campaign, archs: list[str]) -> PairFigures:
    a, b = first.rows, second.rows
    raw_a, raw_b = per_arch(a, a["latency_ms"], archs), per_arch(b, b["latency_ms"], archs)
    spearman, kendall = rank_agreement(raw_a, raw_b)
    corrected_a, corrected_b = per_arch(a, corrected_latency(a), archs), per_arch(b, corrected_latency(b), archs)
    spearman_corrected, kendall_corrected = rank_agreement(corrected_a, corrected_b)

    both = pd.concat([a, b], ignore_index=True)  # one scale for both campaigns: the median job of the two
    shared = both.assign(corrected=corrected_latency(both, group=ACROSS_CAMPAIGNS))
    shared = pd.concat([shared, corrected_interval(both, group=ACROSS_CAMPAIGNS)], axis=1)
    in_a, in_b = shared["campaign_id"] == a["campaign_id"].iloc[0], shared["campaign_id"] == b["campaign_id"].iloc[0]

    measured = pd.concat([a, b])
    measured = measured[measured["arch"].isin(archs) & measured["status"].isin(["ok", "unstable"])]
    half_width = (measured["ci_high_ms"] - measured["ci_low_ms"]) / 2 / measured["latency_ms"]
    failed = int((per_arch(a, a["status"], archs) == "failed").sum() + (per_arch(b, b["status"], archs) == "failed").sum())
    reports = anchoring_report(both)
    shares = [r.anchor_time_share for r in reports if r.anchor_time_share is not None]
    return PairFigures(
        spearman=spearman, kendall=kendall,
        spearman_corrected=spearman_corrected, kendall_corrected=kendall_corrected,
        median_ci_rel_half_width=float(half_width.median()) if half_width.notna().any() else math.nan,
        unstable_share=float((measured["status"] == "unstable").mean()) if len(measured) else math.nan,
        calibration=share_inside(raw_b, per_arch(a, a["ci_low_ms"], archs), per_arch(a, a["ci_high_ms"], archs)),
        calibration_corrected=share_inside(
            per_arch(shared[in_b], shared["corrected"][in_b], archs),
            per_arch(shared[in_a], shared["corrected_low_ms"][in_a], archs),
            per_arch(shared[in_a], shared["corrected_high_ms"][in_a], archs),
        ),
        pair_coverage=share_within_joint(
            raw_a, per_arch(a, (a["ci_high_ms"] - a["ci_low_ms"]) / 2, archs),
            raw_b, per_arch(b, (b["ci_high_ms"] - b["ci_low_ms"]) / 2, archs),
        ),
        pair_coverage_corrected=share_within_joint(
            per_arch(shared[in_a], shared["corrected"][in_a], archs),
            per_arch(shared[in_a], (shared["corrected_high_ms"] - shared["corrected_low_ms"])[in_a] / 2, archs),
            per_arch(shared[in_b], shared["corrected"][in_b], archs),
            per_arch(shared[in_b], (shared["corrected_high_ms"] - shared["corrected_low_ms"])[in_b] / 2, archs),
        ),
        failed=failed,
        jobs=int(a["job_id"].nunique()),
        wall_s=[first.wall_s, second.wall_s],
        anchor_time_share=float(np.mean(shares)) if shares else math.nan,
    )


def ideal_calibration(level: float) -> float:
    """The share of a second, equally precise estimate inside the first's interval, for normal errors."""
    z = float(norm.ppf(0.5 + level / 2))
    return float(2 * norm.cdf(z / math.sqrt(2)) - 1)


def verdicts(pairs: list[PairFigures], archs: int) -> dict[str, bool]:
    """Issue 10's targets for the default protocol, checked on every pair."""
    many_jobs = pairs[0].jobs > 1
    spearman = [p.spearman_corrected if many_jobs and not math.isnan(p.spearman_corrected) else p.spearman for p in pairs]
    target = TARGET_SPEARMAN_MANY_JOBS if many_jobs else TARGET_SPEARMAN
    return {
        f"Spearman >= {target} in every pair{' (anchored)' if many_jobs else ''}": min(spearman) >= target,
        f"unstable <= {TARGET_UNSTABLE:.0%}": max(p.unstable_share for p in pairs) <= TARGET_UNSTABLE,
        f"2nd estimate inside the 1st's interval within {TARGET_CALIBRATION_POINTS * 100:.0f} points of {CI_LEVEL:.0%}": all(
            abs(p.calibration - CI_LEVEL) <= TARGET_CALIBRATION_POINTS for p in pairs
        ),
        f"joint (difference) coverage within {TARGET_CALIBRATION_POINTS * 100:.0f} points of {CI_LEVEL:.0%}": all(
            abs(p.pair_coverage - CI_LEVEL) <= TARGET_CALIBRATION_POINTS for p in pairs
        ),
    }


def fmt(value: float, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def render(figures: dict[tuple[str, int], list[PairFigures]], archs: int, args: argparse.Namespace) -> str:
    lines = [
        f"{archs} NB201 archs, pairs of farm campaigns per protocol, LocalAgent on this CPU (1 thread), "
        f"anchors {'off' if args.no_anchors else args.anchors if args.anchors is not None else 'default'}",
        f"{'protocol':<12} {'job size':>8} {'jobs':>4} {'pair':>4} {'Spearman':>9} {'Kendall':>8} {'Sp. anch':>9} {'Kd. anch':>9} "
        f"{'CI half':>8} {'unstable':>8} {'inside':>7} {'in anch':>7} {'joint':>6} {'j anch':>6} {'anchors':>8} {'wall s (1st, 2nd)':>18}",
    ]
    for (protocol, job_size), pairs in figures.items():
        for number, p in enumerate(pairs, start=1):
            lines.append(
                f"{protocol:<12} {job_size:>8} {p.jobs:>4} {number:>4} {fmt(p.spearman, '.4f'):>9} {fmt(p.kendall, '.4f'):>8} "
                f"{fmt(p.spearman_corrected, '.4f'):>9} {fmt(p.kendall_corrected, '.4f'):>9} "
                f"{fmt(p.median_ci_rel_half_width, '.2%'):>8} {fmt(p.unstable_share, '.0%'):>8} "
                f"{fmt(p.calibration, '.0%'):>7} {fmt(p.calibration_corrected, '.0%'):>7} "
                f"{fmt(p.pair_coverage, '.0%'):>6} {fmt(p.pair_coverage_corrected, '.0%'):>6} "
                f"{fmt(p.anchor_time_share, '.0%'):>8} {p.wall_s[0]:>8.1f} {p.wall_s[1]:>8.1f}"
            )
    lines.append(
        f"inside: share of archs whose 2nd estimate is inside the 1st campaign's {CI_LEVEL:.0%} interval "
        f"(nominal {CI_LEVEL:.0%}; ideal for two equally precise estimates {ideal_calibration(CI_LEVEL):.0%}); "
        "joint: share of archs whose two estimates differ by at most sqrt(h1^2 + h2^2), the interval of the "
        f"difference (nominal {CI_LEVEL:.0%} when the intervals are calibrated); anchors: their share of the timed runs"
    )
    for (protocol, job_size), pairs in figures.items():
        if protocol == "interleaved":
            for name, passed in verdicts(pairs, archs).items():
                lines.append(f"target, interleaved, jobs of {job_size}: {name}: {'met' if passed else 'NOT met'}")
    return "\n".join(lines)


def without_nan(value: Any) -> Any:
    """``value`` with every NaN replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--job-size", default="50", help="archs per job, or a comma-separated list (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of campaigns per protocol (default 1)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    anchoring = parser.add_mutually_exclusive_group()
    anchoring.add_argument("--anchors", type=int, help="anchors per job (default: 3 for interleaved, 0 otherwise)")
    anchoring.add_argument("--no-anchors", action="store_true", help="no drift anchors")
    parser.add_argument("--rounds", type=int, help="interleaved: rounds (default 5)")
    parser.add_argument("--warmup", type=int, help="interleaved: warm-up runs per burst (default 2)")
    parser.add_argument("--runs", type=int, help="interleaved: timed runs per burst (default 10)")
    parser.add_argument("--quantile", type=float, help="interleaved: the estimator's quantile (default 0.1)")
    parser.add_argument("--quick", action="store_true", help="10 archs in jobs of 5, short protocols: a smoke run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    unknown = sorted(set(args.protocols.split(",")) - set(PROTOCOLS))
    job_sizes = [int(size) for size in args.job_size.split(",") if size.strip().isdigit()]
    if unknown or args.repeat < 1 or not job_sizes or min(job_sizes) < 1 or args.archs < 3:
        print(f"repeatability.py: --protocols takes {', '.join(PROTOCOLS)}; --repeat >= 1; --job-size: integers >= 1; "
              f"--archs >= 3 (got --protocols {args.protocols!r}, --job-size {args.job_size!r})", file=sys.stderr)
        return 2
    if args.quick:
        args.archs, job_sizes = 10, sorted({min(size, 5) for size in job_sizes})
    archs = get("nasbench201").sample(args.archs, seed=args.seed)
    device = Device(name="cpu-local", kind="cpu", runtimes=["torch"], threads=1)
    connect(num_cpus=2)

    figures: dict[tuple[str, int], list[PairFigures]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for protocol in args.protocols.split(","):
        for job_size in job_sizes:
            options: dict[str, Any] = dict(QUICK_OVERRIDES[protocol]) if args.quick else {}
            if protocol == "interleaved":
                chosen = {"rounds": args.rounds, "warmup": args.warmup, "runs": args.runs, "quantile": args.quantile}
                options.update({key: value for key, value in chosen.items() if value is not None})
            options.update(job_size=job_size, anchors=0 if args.no_anchors else args.anchors)
            settings[f"{protocol}/{job_size}"] = options
            figures[protocol, job_size] = []
            for pair in range(args.repeat):
                first, second = (run_one(protocol, archs, device, options) for _ in range(2))
                figures[protocol, job_size].append(compare(first, second, archs))
                print(f"  {protocol}, jobs of {job_size}, pair {pair + 1}/{args.repeat}: "
                      f"done in {first.wall_s + second.wall_s:.0f} s", file=sys.stderr, flush=True)
    targets = {f"{protocol}/{size}": verdicts(pairs, len(archs))
               for (protocol, size), pairs in figures.items() if protocol == "interleaved"}
    if args.json:
        result = {
            "archs": len(archs), "ci_level": CI_LEVEL, "ideal_calibration": ideal_calibration(CI_LEVEL),
            "settings": settings,
            "pairs": {f"{name}/{size}": [asdict(p) for p in pairs] for (name, size), pairs in figures.items()},
            "summary": {f"{name}/{size}": {"spearman_min": min(p.spearman for p in pairs),
                                           "spearman_median": statistics.median(p.spearman for p in pairs)}
                        for (name, size), pairs in figures.items()},
            "targets": targets,
        }
        print(json.dumps(without_nan(result), indent=1))
    else:
        print(render(figures, len(archs), args))
    return 0 if all(all(met.values()) for met in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
