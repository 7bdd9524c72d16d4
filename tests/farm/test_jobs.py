"""farm.jobs: a job's batch, its anchors, and the jobs derived from it for retries and splits."""

from __future__ import annotations

from farm.anchoring import anchored_batch
from farm.jobs import Job


def anchored_job() -> Job:
    batch, added = anchored_batch(("a", "b", "z"), ("x", "y", "z"))
    return Job("dev-torch-b1-00000", "dev", "ofa", batch, input_size=128,
               input_sizes=(128, 160, 192, 224, 176, 192), anchors=("x", "y", "z"), anchors_added=added)


def test_requested_archs_leave_out_only_the_anchors_the_job_added() -> None:
    job = anchored_job()
    assert job.archs == ("a", "b", "z", "x", "y")
    assert job.requested_archs == ("a", "b", "z")  # z was asked for: it is requested and an anchor
    assert job.artifact("y").input_size == 176 and job.artifact("z").input_size == 192


def test_a_retry_keeps_the_anchor_set_and_drops_archs_with_an_outcome() -> None:
    retry = anchored_job().without({"a", "x"}).retry()
    assert retry.archs == ("b", "z", "y") and retry.attempt == 1
    assert retry.anchors == ("x", "y", "z")  # anchor_ms needs all of them: x's failure leaves it null
    assert retry.anchors_added == ("y",) and retry.requested_archs == ("b", "z")
    assert [retry.artifact(a).input_size for a in retry.archs] == [160, 192, 176]


def test_a_single_measures_one_arch_alone_without_anchors() -> None:
    single = anchored_job().single(1)
    assert (single.job_id, single.archs, single.anchors, single.anchors_added) == ("dev-torch-b1-00000-1", ("b",), (), ())
    assert single.artifact("b").input_size == 160
