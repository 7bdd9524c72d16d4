"""trainer.progress: the console reporter of training epochs."""

from __future__ import annotations

import io

from trainer.models.training import EpochProgress
from trainer.progress import ConsoleProgress, console_hook


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 2.0
        return self.now


def test_off_a_terminal_one_line_per_tenth_with_elapsed_and_eta():
    stream = io.StringIO()
    hook = ConsoleProgress(stream, clock=_Clock())
    for epoch in range(1, 251):
        hook(EpochProgress("multipredict pretrain", epoch, 250, 1.0 / epoch))
    hook(EpochProgress("multipredict pretrain", 250, 250, 0.004, finished=True))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("multipredict pretrain: epoch 25/250 (10%), loss 0.0400, ") and "ETA" in lines[0]
    assert lines[-1].startswith("multipredict pretrain: epoch 250/250 (100%)") and lines[-1].endswith("ETA 00:00")


def test_a_new_run_restarts_the_count_and_a_short_run_still_reports():
    stream = io.StringIO()
    hook = ConsoleProgress(stream, clock=_Clock())
    for run in ("a", "b"):
        for epoch in (1, 2):
            hook(EpochProgress(run, epoch, 2, 0.5))
        hook(EpochProgress(run, 2, 2, 0.5, finished=True))
    assert [line.split(":")[0] for line in stream.getvalue().splitlines()] == ["a", "a", "b", "b"]


def test_console_hook_choices():
    assert console_hook(False) is None
    assert isinstance(console_hook(True), ConsoleProgress)
    seen: list[EpochProgress] = []
    assert console_hook(seen.append) == seen.append


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_tqdm_bar_counts_the_epochs_with_an_eta():
    stream = _Terminal()
    hook = ConsoleProgress(stream)
    for epoch in range(1, 5):
        hook(EpochProgress("multipredict pretrain", epoch, 4, 0.25))
    hook(EpochProgress("multipredict pretrain", 4, 4, 0.25, finished=True))
    text = stream.getvalue()
    assert "multipredict pretrain" in text and "4/4" in text and "epoch" in text and "loss=0.2500" in text
