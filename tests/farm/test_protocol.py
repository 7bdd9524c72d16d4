"""farm.protocol: schedules, estimators, summaries, the stability rule, and why interleaving helps."""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Sequence

import numpy as np
import pytest
from scipy import stats

from agents.base import Artifact, Burst, BurstAgent, DeviceFacts, RunFailed
from farm.inventory import ProtocolSettings
from farm.protocol import (
    HelpProtocol,
    InterleavedProtocol,
    LatBenchProtocol,
    ProtocolError,
    make,
    measure_batch,
    quartile_mean,
    trimmed,
)
from farm.store import SCHEMA


class ScriptedDevice(BurstAgent):
    """A test double: each timed run returns ``latency(arch, call, clock)``; records every schedule."""

    def __init__(self, latency: Callable[[str, int, int], float]) -> None:
        self.latency = latency
        self.schedules: list[list[tuple[str, int, int]]] = []
        self.clock = 0

    def probe(self) -> DeviceFacts:
        return DeviceFacts(hostname="scripted")

    def prepare(self, artifact: Artifact) -> None:
        return None

    def run(self, artifacts: Sequence[Artifact], schedule: Sequence[Burst]) -> list[list[float]]:
        self.schedules.append([(artifacts[b.index].arch, b.warmup, b.runs) for b in schedule])
        return super().run(artifacts, schedule)

    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        call = len(self.schedules) - 1
        self.clock += warmup
        out = []
        for _ in range(runs):
            out.append(self.latency(artifact.arch, call, self.clock))
            self.clock += 1
        return out


def artifacts(*names: str) -> list[Artifact]:
    return [Artifact("toy", name) for name in names]


# ------------------------------------------------------------------ schedules
def test_help_schedule_is_sequential_50_plus_50() -> None:
    schedule = make("help").schedule(3)
    assert schedule == [Burst(0, 50, 50), Burst(1, 50, 50), Burst(2, 50, 50)]


def test_latbench_defaults_and_schedule() -> None:
    protocol = make("latbench")
    assert (protocol.warmup, protocol.runs, protocol.trim) == (10, 100, 0.25)
    assert [b.index for b in protocol.schedule(2)] == [0, 1]


def test_interleaved_rounds_visit_every_arch_once_in_fresh_seeded_orders() -> None:
    protocol = make("interleaved")
    assert (protocol.rounds, protocol.warmup, protocol.runs) == (5, 2, 10)
    schedule = protocol.schedule(8, seed=3)
    assert len(schedule) == 40 and all((b.warmup, b.runs) == (2, 10) for b in schedule)
    rounds = [[b.index for b in schedule[r * 8 : (r + 1) * 8]] for r in range(5)]
    assert all(sorted(order) == list(range(8)) for order in rounds)
    assert len({tuple(order) for order in rounds}) > 1, "every round had the same order"
    assert protocol.schedule(8, seed=3) == schedule
    assert protocol.schedule(8, seed=4) != schedule


def test_row_fields_record_per_arch_totals() -> None:
    assert make("interleaved").row_fields() == {"protocol": "interleaved", "warmup_runs": 10, "runs": 50, "trim": 0.1}
    assert make("help", runs=20).row_fields() == {"protocol": "help", "warmup_runs": 50, "runs": 20, "trim": 0.1}
    for name in ("help", "latbench", "interleaved"):
        assert set(make(name).row_fields()) <= set(SCHEMA.names)


# ----------------------------------------------------------------- estimators
def test_help_estimate_is_scipy_trim_mean() -> None:
    samples = np.random.default_rng(0).lognormal(1.0, 0.3, size=50)
    summary = make("help").summarize(samples)
    assert summary.latency_ms == pytest.approx(stats.trim_mean(samples, 0.1))
    assert summary.trimmed_mean_ms == pytest.approx(summary.latency_ms)


def test_trimmed_drops_floor_of_fraction_at_each_end() -> None:
    assert trimmed(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 0.2).tolist() == [2.0, 3.0, 4.0]
    assert trimmed(np.array([5.0, 1.0, 3.0]), 0.2).tolist() == [1.0, 3.0, 5.0]


def test_latbench_trims_batches_of_10_then_the_batch_averages() -> None:
    protocol = LatBenchProtocol(runs=30)
    first = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], dtype=float)  # quartiles 3.25..7.75 -> 4,5,6,7
    second = np.full(10, 6.0)
    third = np.array([50.0] * 10)
    samples = np.concatenate([first, second, third])
    # batch means 5.5, 6, 50; their quartiles 5.75..28 keep only 6
    assert quartile_mean(first) == pytest.approx(5.5)
    assert protocol.summarize(samples).latency_ms == pytest.approx(6.0)


def test_interleaved_estimate_is_the_lower_decile_and_ignores_slowed_bursts() -> None:
    # 3 of 5 bursts slowed by a co-tenant: the median follows them, the lower decile does not
    samples = [10.0 + 0.1 * i for i in range(20)] + [15.0] * 30
    summary = make("interleaved").summarize(samples)
    assert summary.latency_ms == pytest.approx(np.quantile(samples, 0.1)) and summary.latency_ms < 10.5
    assert summary.median_ms == 15.0 and summary.max_ms == 15.0


def test_interleaved_quantile_is_selectable_and_labels_its_rows() -> None:
    samples = [10.0] * 40 + [30.0] * 10
    median = make("interleaved", quantile=0.5)
    assert median.summarize(samples).latency_ms == 10.0
    assert median.row_fields()["protocol"] == "interleaved-q50" and "median" in median.describe()
    assert make("interleaved").row_fields()["protocol"] == "interleaved"
    assert "lower decile" in make("interleaved").describe()
    assert make("interleaved", quantile=0.0).summarize(samples).latency_ms == 10.0
    assert make("interleaved", quantile=1.0).summarize(samples).latency_ms == 30.0


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_interleaved_quantile_out_of_range_is_a_user_error(bad: float) -> None:
    with pytest.raises(ProtocolError, match="quantile"):
        make("interleaved", quantile=bad)


def test_quantile_only_applies_to_interleaved() -> None:
    with pytest.raises(ProtocolError, match="quantile only applies to the interleaved"):
        make("help", quantile=0.5)


def test_summary_statistics() -> None:
    samples = [1.0, 2.0, 3.0, 4.0, 100.0]
    summary = HelpProtocol(trim=0.2).summarize(samples)
    assert summary.mean_ms == pytest.approx(22.0)
    assert summary.median_ms == 3.0
    assert summary.std_ms == pytest.approx(np.std(samples, ddof=1))
    assert (summary.min_ms, summary.max_ms) == (1.0, 100.0)
    kept = np.array([2.0, 3.0, 4.0])
    assert summary.cv == pytest.approx(kept.std(ddof=1) / kept.mean())
    assert summary.samples_ms == samples
    assert summary.status == "ok" and summary.latency_ms == pytest.approx(3.0)
    assert set(summary.row_fields()) <= set(SCHEMA.names)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [1.0, -2.0], [math.inf]])
def test_summarize_refuses_empty_or_nonsense_runs(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        make().summarize(bad)


# ------------------------------------------------------------------- make
def test_make_from_inventory_settings_with_campaign_overrides() -> None:
    settings = ProtocolSettings(name="interleaved", rounds=3, runs=4, max_ci=0.2, max_repeats=1)
    protocol = make(settings, runs=6, warmup=None)
    assert isinstance(protocol, InterleavedProtocol)
    assert (protocol.rounds, protocol.runs, protocol.warmup, protocol.max_ci, protocol.max_repeats) == (3, 6, 2, 0.2, 1)
    assert isinstance(make(None), InterleavedProtocol)
    assert isinstance(make(ProtocolSettings(name="help")), HelpProtocol)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make("fastest"), "unknown protocol 'fastest'"),
        (lambda: make("help", runs=0), "runs must be an integer >= 1"),
        (lambda: make("help", warmup=-1), "warmup must be an integer >= 0"),
        (lambda: make("help", trim=0.5), "trim 0.5 is out of range"),
        (lambda: make("help", rounds=3), "rounds only applies to the interleaved protocol"),
        (lambda: make("interleaved", rounds=0), "rounds must be an integer >= 1"),
        (lambda: make("help", max_ci=0), "max_ci 0 must be > 0"),
        (lambda: make("help", burst=3), "unknown parameter(s) burst"),
    ],
)
def test_make_refuses_bad_parameters_with_a_user_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        call()
    assert message in str(caught.value)


# ------------------------------------------------------------ measure_batch
def test_measure_batch_runs_one_schedule_and_returns_summaries_in_order() -> None:
    device = ScriptedDevice(lambda arch, call, clock: {"a": 1.0, "b": 2.0, "c": 3.0}[arch])
    summaries = measure_batch(device, artifacts("a", "b", "c"), make("interleaved", rounds=2, runs=3), seed=1)
    assert [s.latency_ms for s in summaries] == [1.0, 2.0, 3.0]
    assert all(len(s.samples_ms) == 6 and not s.unstable and s.repeats == 0 for s in summaries)
    assert len(device.schedules) == 1 and len(device.schedules[0]) == 6
    assert measure_batch(device, [], make()) == []


def test_unsteady_archs_are_remeasured_and_pool_their_runs() -> None:
    """'steady' never repeats; 'settles' wobbles once, then its pooled runs pass; 'noisy' stays too wide."""

    def latency(arch: str, call: int, clock: int) -> float:
        if arch == "steady" or (arch == "settles" and call > 0):
            return 5.0
        return 5.0 * (1.0 + (0.12 if arch == "settles" else 0.5) * (clock % 2))

    device = ScriptedDevice(latency)
    protocol = make("help", warmup=1, runs=10, max_repeats=2, max_ci=0.03)
    steady, settles, noisy = measure_batch(device, artifacts("steady", "settles", "noisy"), protocol)
    assert (steady.unstable, steady.repeats, steady.cv, len(steady.samples_ms)) == (False, 0, 0.0, 10)
    assert (steady.ci_low_ms, steady.ci_high_ms, steady.instability) == (5.0, 5.0, None)
    assert (settles.unstable, settles.repeats, len(settles.samples_ms)) == (False, 1, 20)
    assert 0.0 < settles.relative_ci < 0.03 and settles.latency_ms == pytest.approx(protocol.estimate(np.array(settles.samples_ms)))
    assert noisy.unstable and noisy.repeats == 2 and noisy.relative_ci > 0.03 and noisy.status == "unstable"
    assert noisy.instability is not None and "relative CI half-width 0.080 > max_ci 0.03 after 2 repeat(s)" in noisy.instability
    assert len(noisy.samples_ms) == 30 and sorted(set(noisy.samples_ms)) == [5.0, 7.5]
    measured = [Counter(arch for arch, _, _ in schedule) for schedule in device.schedules]
    assert measured == [Counter(steady=1, settles=1, noisy=1), Counter(settles=1, noisy=1), Counter(noisy=1)]


def test_no_repeats_when_max_repeats_is_zero() -> None:
    device = ScriptedDevice(lambda arch, call, clock: 1.0 + clock % 2)
    (summary,) = measure_batch(device, artifacts("x"), make("help", warmup=0, runs=4, max_repeats=0))
    assert summary.unstable and summary.repeats == 0 and len(device.schedules) == 1


def test_an_arch_without_timed_runs_is_a_failed_run() -> None:
    class Silent(ScriptedDevice):
        def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
            return [] if artifact.arch == "mute" else [1.0] * runs

    with pytest.raises(RunFailed, match="mute"):
        measure_batch(Silent(lambda *_: 1.0), artifacts("ok", "mute"), make())


def test_interleaving_counters_load_drift_simulation() -> None:
    """Simulation of a shared device: a co-tenant slows every run 1.6x for one stretch of the campaign.

    Sequential HELP measures a few archs entirely inside the slow stretch and mis-ranks
    them; interleaving spreads the stretch over all archs and the median ignores it.
    """
    rng = np.random.default_rng(7)
    truth = {f"arch{i}": float(v) for i, v in enumerate(rng.uniform(10.0, 12.0, size=20))}
    budget = {"help": 20 * 100, "interleaved": 20 * 60}

    def make_device(total_runs: int) -> ScriptedDevice:
        start, stop = int(0.35 * total_runs), int(0.55 * total_runs)
        return ScriptedDevice(lambda arch, call, clock: truth[arch] * (1.6 if start <= clock < stop else 1.0))

    names = list(truth)
    rho = {}
    for name in ("help", "interleaved"):
        summaries = measure_batch(make_device(budget[name]), artifacts(*names), make(name, max_repeats=0), seed=0)
        rho[name] = stats.spearmanr([truth[n] for n in names], [s.latency_ms for s in summaries]).statistic
    assert rho["interleaved"] > 0.99
    assert rho["help"] < 0.9


# ------------------------------------------------------------------ the verdict
class BurstLevels(ScriptedDevice):
    """Simulation of a shared device at burst granularity: each burst of an arch runs at ``level(arch, n)``
    (n counts that arch's bursts), with 0.5% jitter between the runs inside it."""

    def __init__(self, level: Callable[[str, int], float]) -> None:
        super().__init__(lambda *_: 0.0)
        self.level = level
        self.bursts: Counter[str] = Counter()
        self.rng = np.random.default_rng(0)

    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        level = self.level(artifact.arch, self.bursts[artifact.arch])
        self.bursts[artifact.arch] += 1
        return list(level * (1.0 + 0.005 * self.rng.standard_normal(runs)))


def test_bursts_slowed_by_a_co_tenant_give_a_high_cv_but_a_stable_verdict() -> None:
    """Two of every five bursts run 20% slow: the CV is far above 5%, the lower decile does not move."""
    device = BurstLevels(lambda arch, n: 10.0 * (1.2 if n % 5 in (1, 3) else 1.0))
    (summary,) = measure_batch(device, artifacts("drift"), make("interleaved"))
    assert summary.cv > 0.05
    assert summary.status == "ok" and summary.instability is None
    assert summary.ci_low_ms <= summary.latency_ms <= summary.ci_high_ms
    assert summary.latency_ms == pytest.approx(10.0, rel=0.01) and summary.relative_ci <= make().max_ci


def test_a_fast_mode_that_wanders_is_unstable_after_its_repeats() -> None:
    """Bimodal runs whose fast mode itself moves by up to 60% from burst to burst: no repeatable lower decile."""
    wander = np.random.default_rng(5).uniform(1.0, 1.6, size=100)
    device = BurstLevels(lambda arch, n: 10.0 * (wander[n] if n % 2 else 2.0))
    (summary,) = measure_batch(device, artifacts("wanders"), make("interleaved"))
    assert summary.status == "unstable" and summary.repeats == make().max_repeats
    assert len(summary.samples_ms) == 3 * 50  # the repeats pooled their bursts
    assert summary.relative_ci > make().max_ci
    assert summary.instability is not None and f"> max_ci {make().max_ci:g} after 2 repeat(s)" in summary.instability


def test_every_protocol_gives_an_interval_around_its_estimate_in_the_row() -> None:
    rng = np.random.default_rng(1)
    samples = list(10.0 * (1.0 + 0.02 * rng.standard_normal(100)))
    for name in ("interleaved", "help", "latbench"):
        summary = make(name).summarize(samples)
        assert summary.ci_low_ms < summary.latency_ms < summary.ci_high_ms, name
        fields = summary.row_fields()
        assert (fields["ci_low_ms"], fields["ci_high_ms"]) == (summary.ci_low_ms, summary.ci_high_ms)
    single_burst = make("interleaved", rounds=1).summarize(samples[:10])
    assert math.isnan(single_burst.relative_ci) and single_burst.row_fields()["ci_low_ms"] is None
