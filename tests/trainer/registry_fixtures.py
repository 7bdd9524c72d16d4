"""Helpers shared by the registry and nightly tests (not a test module).

Predictors here are real ``flops`` predictors fitted on rows of the real HELP
table (the ``nb201_slice`` fixture of ``tests/trainer/conftest.py``), saved with
:func:`trainer.registry.save` exactly as ``trainer nightly`` saves them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trainer import holdout, registry
from trainer.models import get_method

SPACE = "nasbench201"


def latencies(frame: pd.DataFrame, device: str) -> pd.Series:
    """One device's latencies (ms) indexed by arch."""
    rows = frame[frame["device"] == device]
    return pd.Series(rows["latency_ms"].to_numpy(dtype="float64"), index=rows["arch"].to_numpy(), name=device)


def saved_predictor(folder: Path, target: str, samples: pd.Series, *, marked: bool = True) -> Path:
    """A ``flops`` predictor transferred to ``target`` on ``samples``, saved at ``folder``.

    ``marked=False`` leaves out the held-out marker, as a plain ``trainer transfer`` would.
    """
    predictor = get_method("flops")(SPACE)
    event = holdout.MARKER if marked else {}
    base = registry.save(predictor, folder.with_name(folder.name + "-base"), registry.ManifestUpdate("pretrain", event=event))
    predictor.transfer(target, samples)
    manifest = registry.read_manifest(base)
    update = registry.ManifestUpdate("transfer", target=target, samples={target: len(samples)}, event=event)
    return registry.save(predictor, folder, update, previous=manifest)
