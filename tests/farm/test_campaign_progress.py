"""Campaign progress (issue 12): one plain line per finished job, with totals and an ETA, when stderr is no terminal."""

from __future__ import annotations

import io
import re

from farm.campaign_progress import CampaignProgress


class Terminal(io.StringIO):
    """A stream that says it is a terminal (as a tty would), to check that the bar is kept there."""

    def isatty(self) -> bool:
        return True


def test_without_a_terminal_each_job_is_one_line_with_running_totals_and_an_eta() -> None:
    stream = io.StringIO()
    ticks = iter([100.0, 110.0, 130.0, 160.0])
    progress = CampaignProgress(12, "campaign c", stream, clock=ticks.__next__)
    progress.job_done("pi4", "pi4-torch-b1-00000", ok=3, failed=0)
    progress.job_done("pi4", "pi4-torch-b1-00001", ok=2, failed=1)
    progress.not_measured("pixel2", 6, "marked down")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    pattern = re.compile(r"campaign c: (\d+)/12 archs \(ok (\d+), failed (\d+)(?:, not measured (\d+))?\): .*, "
                         r"(\d\d:\d\d) elapsed, ETA (\d\d:\d\d)")
    parsed = [pattern.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert [m.group(1, 2, 3) for m in parsed] == [("3", "3", "0"), ("6", "5", "1"), ("12", "5", "1")]  # type: ignore[union-attr]
    assert [m.group(5, 6) for m in parsed] == [("00:10", "00:30"), ("00:30", "00:30"), ("01:00", "00:00")]  # type: ignore[union-attr]
    assert "pi4 job pi4-torch-b1-00001" in lines[1] and "pixel2 marked down" in lines[2]


def test_on_a_terminal_the_bar_is_kept_and_no_plain_lines_are_written() -> None:
    stream = Terminal()
    progress = CampaignProgress(4, "campaign c", stream)
    progress.job_done("pi4", "j0", ok=4, failed=0)
    progress.close()
    assert "\r" in stream.getvalue() and "4/4" in stream.getvalue() and "ETA" not in stream.getvalue()


def test_disabled_progress_writes_nothing_but_keeps_count() -> None:
    stream = io.StringIO()
    progress = CampaignProgress(4, "campaign c", stream, enabled=False)
    progress.job_done("pi4", "j0", ok=1, failed=1)
    assert stream.getvalue() == "" and (progress.done, progress.ok, progress.failed) == (2, 1, 1)
