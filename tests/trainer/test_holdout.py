"""The held-out slice: fixed, device-independent, ~10%; scores of a real predictor on it."""

from __future__ import annotations

import pandas as pd

from farm import spaces
from tests.trainer.registry_fixtures import SPACE, latencies
from trainer import holdout
from trainer.models import get_method


def test_about_a_tenth_of_every_space_is_held_out_and_the_choice_is_fixed():
    archs = list(spaces.get(SPACE).enumerate())
    mask = holdout.held_out_mask(SPACE, archs)
    assert 0.09 < mask.mean() < 0.11, mask.mean()
    assert mask.tolist() == holdout.held_out_mask(SPACE, archs).tolist()
    fbnet = spaces.get("fbnet").sample(3000, seed=0)
    assert 0.08 < holdout.held_out_mask("fbnet", fbnet).mean() < 0.12
    # The space is part of the key: the same string in another space is an independent draw.
    assert holdout.is_held_out(SPACE, archs[0]) == holdout.is_held_out(SPACE, archs[0])


def test_the_same_archs_are_held_out_on_every_device(nb201_slice):
    held = [set(holdout.split(latencies(nb201_slice, d), SPACE)[1].index) for d in ("1080ti_1", "pixel3", "raspi4")]
    assert held[0] == held[1] == held[2] and 15 <= len(held[0]) <= 50  # 300 archs, ~30 held out
    trainable, held_out = holdout.split(latencies(nb201_slice, "raspi4"), SPACE)
    assert len(trainable) + len(held_out) == 300 and not set(trainable.index) & set(held_out.index)


def test_score_of_a_real_predictor_on_the_held_out_rows(nb201_slice):
    trainable, held_out = holdout.split(latencies(nb201_slice, "raspi4"), SPACE)
    predictor = get_method("layerwise")(SPACE)
    predictor.transfer("raspi4", trainable.iloc[:20])
    result = holdout.score(predictor, "raspi4", held_out)
    assert result["n"] == len(held_out)
    assert 0.5 < result["spearman"] <= 1.0, result
    low, high = result["spearman_ci95"]
    assert low < result["spearman"] < high <= 1.0
    assert 0.0 <= result["within_10"] <= 1.0 and -1.0 <= result["kendall"] <= 1.0


def test_too_few_held_out_rows_give_no_score_and_say_why(nb201_slice):
    _, held_out = holdout.split(latencies(nb201_slice, "raspi4"), SPACE)
    predictor = get_method("flops")(SPACE)
    predictor.transfer("raspi4", held_out)
    small = holdout.score(predictor, "raspi4", held_out.iloc[:3])
    assert small["spearman"] is None and small["n"] == 3 and "only 3 held-out row(s)" in small["reason"]
    assert holdout.score(predictor, "raspi4", pd.Series(dtype="float64"))["reason"] == "no held-out rows of raspi4"


def test_the_interval_narrows_with_more_rows():
    narrow, wide = holdout.spearman_interval(0.8, 400), holdout.spearman_interval(0.8, 20)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]


def test_unmarked_reason_names_the_step_that_did_not_exclude_the_slice():
    marked = {"action": "pretrain", **holdout.MARKER}
    assert holdout.unmarked_reason({"history": [marked, {"action": "transfer", "target": "t", **holdout.MARKER}]}) is None
    assert "no pretrain/transfer step" in holdout.unmarked_reason({"history": []})
    old_scheme = {"action": "transfer", "target": "t", "holdout": {"scheme": holdout.SCHEME, "version": 0}}
    assert "'transfer' step (target t)" in holdout.unmarked_reason({"history": [marked, old_scheme]})
