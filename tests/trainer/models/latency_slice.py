"""The source/target split of the ``nb201_latency`` slice shared by the multi-device predictor tests (not a test module).

Sources are pre-trained on their first 200 archs; the target is transferred with the next 20,
so the first 200 archs are unseen by the target.
"""

from __future__ import annotations

from typing import TypeVar

import pandas as pd

from trainer.models.base import Predictor

SOURCES = ("1080ti_1", "pixel3", "silver_4114", "gold_6226")
TARGET = "raspi4"

_P = TypeVar("_P", bound=Predictor)


def pretrained_on_slice(model: _P, latency: pd.DataFrame) -> _P:
    """``model`` pre-trained on the first 200 archs of every source."""
    model.pretrain({s: latency[s].iloc[:200] for s in SOURCES})
    return model


def transferred_on_slice(model: _P, latency: pd.DataFrame) -> _P:
    """``model`` transferred to the target with its archs 200-219."""
    model.transfer(TARGET, latency[TARGET].iloc[200:220])
    return model
