"""FLOPs proxy: latency is an affine function of the multiply-accumulates.

.. math::
    \\hat y = a \\cdot \\mathrm{MACs}(x) + b, \\qquad
    (a, b) = \\arg\\min \\sum_i (y_i - a \\, \\mathrm{MACs}(x_i) - b)^2

fitted by least squares on the target's samples only. The ranking it gives is
the ranking by FLOPs, the weakest baseline in BRP-NAS, HELP and MultiPredict
(Spearman 0.44-0.95 depending on the device). Where the fitted slope is not
positive (samples too few or too noisy) it falls back to the ratio of means,
``a = mean(y) / mean(MACs)``, ``b = 0``, so that the ranking stays the FLOPs
ranking and the scale stays right on average.

Example:
    >>> import pandas as pd
    >>> from farm import spaces
    >>> archs = spaces.get("nasbench201").sample(5, seed=0)
    >>> p = FlopsProxy("nasbench201")
    >>> p.transfer("dev", pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=archs))
    >>> p.predict(archs, "dev").shape
    (5,)
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from trainer import encodings
from trainer.models.closed_form import ClosedFormPredictor

_MEGA = 1e6


class FlopsProxy(ClosedFormPredictor):
    """Latency = a * MACs + b per target (``input_size``: the space default unless given)."""

    method: ClassVar[str] = "flops"
    min_target_samples: ClassVar[int] = 2
    defaults: ClassVar[dict[str, Any]] = {"input_size": None}

    def features(self, archs: Sequence[str]) -> np.ndarray:
        macs = encodings.flops(self.space, archs, self.hyper["input_size"]) / _MEGA
        return macs[:, None]

    def fit(self, x: np.ndarray, y_ms: np.ndarray) -> dict[str, Any]:
        design = np.column_stack([x[:, 0], np.ones(len(x))])
        (slope, intercept), *_ = np.linalg.lstsq(design, y_ms, rcond=None)
        if not (np.isfinite(slope) and slope > 0):
            slope, intercept = float(np.mean(y_ms) / max(np.mean(x[:, 0]), 1e-12)), 0.0
        return {"slope_ms_per_mmac": float(slope), "intercept_ms": float(intercept)}

    def apply(self, x: np.ndarray, parameters: Mapping[str, Any]) -> np.ndarray:
        return x[:, 0] * parameters["slope_ms_per_mmac"] + parameters["intercept_ms"]
