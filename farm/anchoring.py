"""Drift anchoring: a few fixed archs measured in every job, and the job speed factor they give.

Between jobs a whole device (or the host under it) runs a few percent faster or
slower: on this project's shared 2-core build machine the run-to-run ratios of
whole jobs clustered at 0.84-0.94 and 1.00-1.07, while archs of one job ranked
against each other well. So every job also measures a fixed **anchor set**, in
the same rounds as its own archs (they are simply part of the batch), and each
row records its job's anchor estimate.

**The anchor set** (:func:`anchor_archs`): HELP's ten reference architectures of
the space (Lee et al., NeurIPS 2021, the "hardware embedding"; indices in
``data/README.md``), ordered by FLOPs; of ``count`` equal slices of that order,
the one at the middle of each slice. The default three are NB201 indices 11982,
9881 and 13479 (12, 47 and 118 MFLOPs; the space's median arch has about 53):
they span light to heavy archs, so the factor speaks for overhead-bound and
compute-bound archs alike, but leave out the extremes, an arch of pooling and
skips only (mostly framework overhead) and the all-3x3 one (220 MFLOPs, four
median archs of measuring time). Their latencies are ones the trainer's HELP
transfer wants anyway.

**Per row** (:func:`stamp_job_rows`, called by ``farm.run`` on every row of a job):
``job_id``; ``is_anchor`` (the row was measured as one of the job's anchors);
``anchor_ms``, the *geometric mean of the anchors' estimates in that job* (null
when the job has no anchors or one of them got no estimate, so every job's
``anchor_ms`` averages the same archs).

**At read time** (rows are append-only and a campaign's median job is only known at
its end): a job's factor is its ``anchor_ms`` over the median ``anchor_ms`` of the
jobs of the same campaign, device, runtime, batch size and protocol
(:data:`GROUP_COLUMNS`); :func:`corrected_latency` divides ``latency_ms`` by it.
The raw estimate is never overwritten: the corrected value is a separate series.

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "campaign_id": "c", "device": "d", "runtime": "torch", "batch_size": 1,
    ...     "protocol": "interleaved", "job_id": ["j0", "j1", "j2"], "anchor_ms": [10.0, 11.0, 10.0],
    ...     "latency_ms": [5.0, 5.5, 7.0]})
    >>> corrected_latency(rows).round(3).tolist()
    [5.0, 5.0, 7.0]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, MutableMapping, Sequence

import numpy as np
import pandas as pd

from farm.intervals import CI_LEVEL

if TYPE_CHECKING:
    from farm.jobs import Job

__all__ = [
    "DEFAULT_ANCHORS",
    "GROUP_COLUMNS",
    "JOB_KEYS",
    "AnchoringReport",
    "anchor_archs",
    "anchor_count",
    "anchored_batch",
    "anchoring_report",
    "corrected_interval",
    "corrected_latency",
    "job_anchor_ms",
    "job_factors",
    "stamp_job_rows",
]

DEFAULT_ANCHORS = 3
"""Anchors per job for the interleaved protocol (0 for the sequential ones unless asked)."""

GROUP_COLUMNS: tuple[str, ...] = ("campaign_id", "device", "runtime", "batch_size", "protocol")
"""Jobs that share these values share one reference: the median ``anchor_ms`` over them.

``input_size`` is not among them: an OFA arch carries its own resolution, so one
job mixes input sizes, and a reference per input size would be the median of a
different subset of jobs for each (elsewhere the input size is the inventory's,
fixed for a device in a campaign).
"""

#: Statuses whose ``latency_ms`` is an estimate (``failed`` rows have none).
MEASURED = ("ok", "unstable")

#: HELP's NB201 reference indices in ascending FLOPs (ties in HELP's order); ``nasbench201.arch(i)`` gives the string.
_NB201_REFERENCES: tuple[int, ...] = (55, 11982, 6196, 431, 9, 9881, 8636, 14451, 13479, 1462)

#: HELP's FBNet and OFA reference archs (index in HELP's table, arch string), in ascending FLOPs.
_REFERENCES: dict[str, tuple[tuple[int, str], ...]] = {
    "fbnet": (
        (2514, "skip-skip-k5_e1-k5_e1-k5_e3-skip-k3_e1_g2-skip-k3_e1-k3_e6-k3_e1_g2-k3_e3-skip-skip-k5_e1_g2-skip-k3_e3-k3_e3-skip-k3_e1_g2-k5_e1-skip"),  # noqa: E501
        (3790, "k5_e1_g2-k5_e1-skip-k5_e1_g2-k3_e1_g2-k5_e3-skip-k5_e1_g2-k3_e6-k3_e1-k5_e1-skip-k3_e1-k3_e3-k5_e1-k5_e1_g2-k3_e1-k5_e3-k5_e3-k3_e1-k3_e1-k5_e1_g2"),  # noqa: E501
        (1640, "k5_e1-k5_e1-k5_e1_g2-k5_e1_g2-k3_e6-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1-k3_e3-k3_e3-k5_e1-k3_e3-k3_e1-k5_e1_g2-k3_e1-k5_e1_g2-k5_e3-k3_e3-k5_e1_g2-k3_e3-k5_e1_g2"),  # noqa: E501
        (890, "skip-k3_e1_g2-k5_e3-k3_e1_g2-k5_e3-k3_e3-k5_e6-k3_e1_g2-k5_e3-skip-k5_e6-k5_e1_g2-k3_e3-k3_e1-k3_e1_g2-skip-k3_e1-k3_e6-k3_e3-k3_e3-k5_e1_g2-k5_e1"),  # noqa: E501
        (457, "k3_e1-k5_e6-k5_e3-k5_e6-k3_e6-k3_e6-k5_e3-k3_e1_g2-k5_e6-k5_e1-k3_e6-k5_e6-k5_e6-k3_e1-skip-k5_e1-skip-k5_e1_g2-k5_e3-skip-k5_e1_g2-k3_e1_g2"),  # noqa: E501
        (2538, "k3_e3-k3_e3-k5_e1-k5_e1_g2-k5_e6-k3_e3-k5_e1_g2-k5_e6-k3_e3-k3_e3-k3_e1_g2-k3_e3-k3_e6-k3_e1_g2-k5_e1-k5_e3-k3_e6-k5_e3-k3_e6-k3_e3-k3_e1-k3_e1_g2"),  # noqa: E501
        (3313, "k5_e6-k3_e3-k5_e6-k5_e1_g2-k5_e1-k5_e3-skip-k3_e1-k5_e3-k5_e3-k5_e1_g2-k3_e1_g2-k3_e3-k5_e1-k3_e1-k5_e6-k5_e1_g2-k5_e3-k3_e1-k3_e6-k3_e6-k3_e3"),  # noqa: E501
        (2100, "k3_e1_g2-k3_e3-k5_e1-k3_e1-k5_e6-k3_e6-k3_e1-k5_e1_g2-k5_e3-k5_e1-k5_e1_g2-k5_e6-k3_e1-k3_e1_g2-k5_e1-k3_e6-k3_e3-k3_e6-k3_e6-k3_e6-k3_e1-k5_e3"),  # noqa: E501
        (3328, "k3_e1_g2-skip-k5_e3-k5_e3-skip-k3_e1-k3_e6-k5_e1-k3_e6-k5_e6-skip-k5_e6-k5_e1-k3_e6-k3_e3-k5_e1_g2-k5_e6-k3_e6-k3_e1-k3_e1_g2-k3_e6-k5_e6"),  # noqa: E501
        (3052, "k3_e1_g2-k5_e6-k3_e1-k5_e6-k5_e1-k3_e6-k5_e1-k5_e3-k5_e3-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1_g2-k5_e3-k5_e6-k5_e6-k5_e3-k5_e6-k5_e3-k3_e6-k3_e1_g2-k3_e3"),  # noqa: E501
    ),
    "ofa": (
        (2487, '{"ks":[5,5,7,3,3,3,3,7,7,3,3,5,7,3,3,7,3,3,3,5],"e":[6,3,4,4,3,3,3,6,3,3,4,4,3,3,6,4,3,6,6,3],"d":[4,2,4,2,3],"r":132}'),  # noqa: E501
        (1980, '{"ks":[5,7,3,5,7,7,3,7,7,3,7,7,7,7,7,3,7,7,5,5],"e":[4,6,6,3,4,6,6,6,4,3,3,3,6,4,4,3,4,6,4,4],"d":[2,2,2,3,2],"r":136}'),  # noqa: E501
        (3355, '{"ks":[7,3,7,3,3,7,5,7,7,3,3,3,3,3,3,7,7,7,3,7],"e":[3,6,6,4,6,4,3,4,6,4,4,3,6,3,4,3,4,3,3,6],"d":[2,4,2,4,4],"r":152}'),  # noqa: E501
        (3740, '{"ks":[7,3,3,5,3,7,3,5,5,5,5,3,5,5,3,5,5,5,3,7],"e":[4,4,4,6,6,3,6,4,4,4,4,4,3,4,6,4,6,3,3,3],"d":[2,4,3,4,4],"r":152}'),  # noqa: E501
        (1587, '{"ks":[7,3,3,7,5,3,7,3,5,7,7,7,3,7,5,5,3,5,7,7],"e":[4,3,6,6,6,6,4,3,3,6,3,4,6,3,3,4,6,3,4,3],"d":[3,2,2,3,2],"r":172}'),  # noqa: E501
        (1621, '{"ks":[7,5,7,3,3,3,7,3,7,7,5,7,5,5,7,7,7,7,7,3],"e":[4,4,6,6,4,4,4,6,6,3,6,6,3,6,3,3,3,6,4,6],"d":[2,2,2,2,3],"r":204}'),  # noqa: E501
        (1316, '{"ks":[7,7,5,5,7,7,3,5,7,7,5,7,3,5,3,3,3,5,5,7],"e":[3,6,3,6,6,4,3,6,4,6,6,3,3,4,4,3,3,3,3,4],"d":[4,3,3,4,2],"r":196}'),  # noqa: E501
        (4948, '{"ks":[3,3,7,7,7,7,7,7,5,7,3,7,3,5,5,3,3,7,3,5],"e":[3,3,4,6,6,6,4,3,6,3,3,3,3,3,6,3,6,6,6,3],"d":[4,4,3,4,2],"r":200}'),  # noqa: E501
        (1636, '{"ks":[3,7,5,7,3,3,5,7,3,3,5,3,7,5,3,7,7,5,5,3],"e":[4,3,3,6,3,3,4,4,6,6,4,6,3,6,6,6,4,4,4,6],"d":[4,3,4,4,4],"r":200}'),  # noqa: E501
        (2329, '{"ks":[7,7,5,7,3,7,3,5,3,7,7,5,3,3,7,7,3,5,7,7],"e":[6,4,3,6,6,6,6,3,6,4,6,6,6,6,4,3,4,6,6,3],"d":[4,2,3,4,4],"r":224}'),  # noqa: E501
    ),
}


def reference_archs(space: str) -> tuple[str, ...]:
    """HELP's ten reference archs of ``space`` in ascending FLOPs; ``()`` for a space HELP does not cover."""
    if space == "nasbench201":
        from farm.spaces import get

        nb201 = get(space)
        return tuple(nb201.arch(index) for index in _NB201_REFERENCES)  # type: ignore[attr-defined]
    return tuple(arch for _, arch in _REFERENCES.get(space, ()))


def anchor_archs(space: str, count: int = DEFAULT_ANCHORS) -> tuple[str, ...]:
    """``count`` of the space's reference archs: the middle one of each of ``count`` equal slices in FLOPs order.

    A space without HELP references gets ``space.sample(count, seed=0)``.

    Example:
        >>> [a.count("nor_conv_3x3") for a in anchor_archs("nasbench201")]
        [0, 1, 3]
    """
    if count <= 0:
        return ()
    references = reference_archs(space)
    if not references:
        from farm.spaces import get

        return tuple(get(space).sample(count, seed=0))
    if count > len(references):
        raise ValueError(f"at most {len(references)} anchors for {space} (HELP's reference archs); got {count}")
    return tuple(references[int((i + 0.5) * len(references) / count)] for i in range(count))


def anchor_count(requested: int | None, protocol_name: str) -> int:
    """Anchors per job: ``requested`` if given, else :data:`DEFAULT_ANCHORS` for ``interleaved``, 0 otherwise.

    The sequential protocols measure archs one after another, so an anchor reads the
    device only at its own moment of the job; anchoring them is possible but opt-in.

    Example:
        >>> anchor_count(None, "interleaved"), anchor_count(None, "help"), anchor_count(0, "interleaved")
        (3, 0, 0)
    """
    if requested is not None:
        return requested
    return DEFAULT_ANCHORS if protocol_name == "interleaved" else 0


def anchored_batch(archs: Sequence[str], anchors: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The job's batch (``archs``, then the anchors it lacks) and the anchors that were added.

    An anchor that is also one of ``archs`` is measured once and serves both.

    Example:
        >>> anchored_batch(("a", "b"), ("b", "z"))
        (('a', 'b', 'z'), ('z',))
    """
    added = tuple(anchor for anchor in anchors if anchor not in archs)
    return tuple(archs) + added, added


def job_anchor_ms(rows: Iterable[Mapping[str, Any]], anchors: Sequence[str]) -> float | None:
    """Geometric mean of the anchors' ``latency_ms`` in ``rows`` (one job); ``None`` if any anchor has none.

    Example:
        >>> job_anchor_ms([{"arch": "x", "status": "ok", "latency_ms": 2.0},
        ...                {"arch": "y", "status": "unstable", "latency_ms": 8.0}], ["x", "y"])
        4.0
    """
    if not anchors:
        return None
    estimates: dict[str, float] = {}
    for row in rows:
        latency = row.get("latency_ms")
        if row["arch"] in anchors and row["status"] in MEASURED and latency is not None and latency > 0:
            estimates[row["arch"]] = float(latency)
    if len(estimates) < len(set(anchors)):
        return None
    return math.exp(sum(math.log(value) for value in estimates.values()) / len(estimates))


def stamp_job_rows(rows: Sequence[MutableMapping[str, Any]], job: "Job") -> None:
    """Set ``job_id``, ``is_anchor`` and ``anchor_ms`` on every row of one job (in place).

    ``is_anchor`` marks rows of the job's anchor set and of anchors it added (a job
    split to isolate a failing arch measures each arch alone: no ``anchor_ms`` then).
    """
    anchor_ms = job_anchor_ms(rows, job.anchors)
    flagged = set(job.anchors) | set(job.anchors_added)
    for row in rows:
        row["job_id"] = job.job_id
        row["is_anchor"] = row["arch"] in flagged
        row["anchor_ms"] = anchor_ms


#: A job is one of these: job ids repeat from campaign to campaign.
JOB_KEYS: tuple[str, ...] = (*GROUP_COLUMNS, "job_id")


def job_factors(frame: pd.DataFrame, group: Sequence[str] = GROUP_COLUMNS) -> pd.DataFrame:
    """One row per job: its ``anchor_ms``, ``factor`` (against its group's median job) and ``factor_rel_u``.

    ``group`` defines whose median is the reference; leave ``campaign_id`` out of it
    to put the jobs of several campaigns (of the same anchors) on one scale.
    ``factor_rel_u`` is the standard error of the log factor from the anchors' own
    disagreement: per anchor, its estimate in the job over its median over the group's
    jobs; the spread of those log ratios over sqrt(anchors). It needs the anchor rows
    (``is_anchor``, ``arch``, ``latency_ms``) in ``frame`` and at least two anchors; else NaN.
    """
    keys = list(JOB_KEYS)
    jobs = frame.dropna(subset=["job_id", "anchor_ms"]).drop_duplicates(keys)[keys + ["anchor_ms"]]
    if jobs.empty:
        return jobs.assign(factor=pd.Series(dtype=float), factor_rel_u=pd.Series(dtype=float))
    reference = jobs.groupby(list(group), dropna=False)["anchor_ms"].transform("median")
    jobs = jobs.assign(factor=jobs["anchor_ms"] / reference).reset_index(drop=True)
    return jobs.merge(_factor_uncertainty(frame, group), on=keys, how="left")


def _factor_uncertainty(frame: pd.DataFrame, group: Sequence[str]) -> pd.DataFrame:
    keys = list(JOB_KEYS)
    empty = pd.DataFrame(columns=keys + ["factor_rel_u"])
    if "is_anchor" not in frame or "arch" not in frame:
        return empty
    anchors = frame[frame["is_anchor"].fillna(False).astype(bool) & frame["anchor_ms"].notna()]
    anchors = anchors[anchors["latency_ms"] > 0]
    if anchors.empty:
        return empty
    log_latency = np.log(anchors["latency_ms"].astype(float))
    per_anchor = log_latency.groupby([anchors[c] for c in [*group, "arch"]], dropna=False).transform("median")
    ratios = anchors.assign(log_ratio=log_latency - per_anchor)
    spread = ratios.groupby(keys, dropna=False)["log_ratio"].agg(["std", "count"]).reset_index()
    spread["factor_rel_u"] = np.where(spread["count"] >= 2, spread["std"] / np.sqrt(spread["count"]), np.nan)
    return spread[keys + ["factor_rel_u"]]


def corrected_latency(frame: pd.DataFrame, group: Sequence[str] = GROUP_COLUMNS) -> pd.Series:
    """``latency_ms`` divided by its job's factor; NaN where the row's job has no ``anchor_ms``.

    Needs the columns of :data:`GROUP_COLUMNS`, ``job_id``, ``anchor_ms`` and ``latency_ms``;
    ``group`` as in :func:`job_factors`. The raw ``latency_ms`` is left as it is; the
    result is aligned with ``frame``'s index.
    """
    factors = job_factors(frame, group)
    keys = list(JOB_KEYS)
    factor = frame[keys].merge(factors[keys + ["factor"]], on=keys, how="left")["factor"].to_numpy()
    return pd.Series(frame["latency_ms"].to_numpy(dtype=float) / factor, index=frame.index, name="corrected_latency_ms")


def corrected_interval(frame: pd.DataFrame, level: float = CI_LEVEL, group: Sequence[str] = GROUP_COLUMNS) -> pd.DataFrame:
    """``corrected_low_ms``/``corrected_high_ms``: the row's interval over the factor, widened by its uncertainty.

    The relative half-widths of the row's ``[ci_low_ms, ci_high_ms]`` and of the factor
    (``z * factor_rel_u`` at ``level``, two-sided) add in quadrature. Where the factor's
    uncertainty is unknown (fewer than two anchor rows in ``frame``) only the row's
    interval is scaled: the result then understates the uncertainty, and ``factor_rel_u`` says NaN.
    """
    from scipy.stats import norm

    keys = list(JOB_KEYS)
    factors = frame[keys].merge(job_factors(frame, group)[keys + ["factor", "factor_rel_u"]], on=keys, how="left")
    latency = frame["latency_ms"].to_numpy(dtype=float)
    corrected = latency / factors["factor"].to_numpy()
    row_half = (frame["ci_high_ms"].to_numpy(dtype=float) - frame["ci_low_ms"].to_numpy(dtype=float)) / 2 / latency
    factor_half = float(norm.ppf(0.5 + level / 2)) * factors["factor_rel_u"].fillna(0.0).to_numpy(dtype=float)
    half = np.sqrt(row_half**2 + factor_half**2)
    return pd.DataFrame(
        {
            "corrected_low_ms": corrected * (1 - half),
            "corrected_high_ms": corrected * (1 + half),
            "factor_rel_u": factors["factor_rel_u"].to_numpy(dtype=float),
        },
        index=frame.index,
    )


@dataclass
class AnchoringReport:
    """What anchoring saw for one group (:data:`GROUP_COLUMNS` less ``campaign_id``) of one campaign."""

    device: str
    runtime: str
    batch_size: int
    jobs: int
    anchored_jobs: int
    factor_min: float | None
    factor_max: float | None
    factor_rel_u_median: float | None
    anchor_time_share: float | None

    def render(self) -> str:
        if not self.anchored_jobs:
            return f"  anchoring {self.device} {self.runtime} b{self.batch_size}: no anchored job ({self.jobs} job(s))"
        share = f", anchors took {self.anchor_time_share:.0%} of the timed runs" if self.anchor_time_share else ""
        uncertainty = (
            f" (+-{self.factor_rel_u_median:.1%} each, median)" if self.factor_rel_u_median is not None else ""
        )
        return (
            f"  anchoring {self.device} {self.runtime} b{self.batch_size}: {self.anchored_jobs}/{self.jobs} jobs anchored, "
            f"job factors {self.factor_min:.3f}-{self.factor_max:.3f}{uncertainty}{share}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def anchoring_report(frame: pd.DataFrame) -> list[AnchoringReport]:
    """Per device, runtime and batch size in ``frame`` (one campaign's rows): jobs, factor range, anchor cost.

    ``anchor_time_share`` is the anchors' share of the sum of all timed runs
    (``samples_ms``) of the measured rows: what anchoring cost in device time.
    """
    reports = []
    factors = job_factors(frame)
    for (device, runtime, batch_size), rows in frame.groupby(["device", "runtime", "batch_size"], sort=True):
        jobs = rows["job_id"].dropna().nunique()
        mine = factors[(factors["device"] == device) & (factors["runtime"] == runtime) & (factors["batch_size"] == batch_size)]
        per_job = mine.drop_duplicates(["campaign_id", "job_id"])
        reports.append(
            AnchoringReport(
                device=str(device), runtime=str(runtime), batch_size=int(batch_size), jobs=int(jobs),
                anchored_jobs=int(len(per_job)),
                factor_min=_maybe(per_job["factor"].min()), factor_max=_maybe(per_job["factor"].max()),
                factor_rel_u_median=_maybe(per_job["factor_rel_u"].median()) if len(per_job) else None,
                anchor_time_share=_anchor_time_share(rows),
            )
        )
    return reports


def _anchor_time_share(rows: pd.DataFrame) -> float | None:
    if "samples_ms" not in rows or "is_anchor" not in rows:
        return None
    totals = rows["samples_ms"].map(lambda runs: float(np.sum(runs)) if runs is not None else 0.0)
    total = float(totals.sum())
    if total <= 0:
        return None
    return float(totals[rows["is_anchor"].fillna(False).astype(bool)].sum()) / total


def _maybe(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
