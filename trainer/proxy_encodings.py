"""Zero-cost proxy encodings of archs, read from a store's encodings table (``farm encode`` writes it).

Predictors that take supplementary encodings (NASFLAT, MultiPredict's ZCP) read them here:

- :func:`load` returns ``[len(archs), len(proxies)]`` float64, row ``i`` for ``archs[i]``, column
  ``j`` for ``proxies[j]``, and raises :class:`MissingEncodings` when any pair has no value;
- :func:`report` never raises for missing values: it returns the same array with NaN where a
  value is missing and the list of :class:`Missing` pairs with the reason for each, for a
  predictor that falls back explicitly (drops those archs, or the encodings, and says so).

A value counts only when it was computed with the space's input spec
(:func:`farm.proxies.inputs.default_spec`, or ``input_spec``) and the proxy's current definition
version; when a pair has several ``ok`` rows (two runs racing) the latest is used. Values are the
raw proxy values: normalising per proxy over the space, as NAS-Bench-Suite-Zero does, is the
predictor's step (it knows which archs it trains on).

Example:
    >>> import tempfile
    >>> try:
    ...     load(tempfile.mkdtemp(), "nasbench201", ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], ["snip"])
    ... except MissingEncodings as error:
    ...     error.missing[0].reason, str(error).split(";")[0]
    ('not computed', '1 of 1 (arch, proxy) encodings missing in nasbench201 (gaussian:b16:r16:c10:l4:s0)')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from farm.proxies import NAMES, version
from farm.proxies.inputs import default_spec
from farm.proxies.table import EncodingsTable

__all__ = ["EncodingsReport", "Missing", "MissingEncodings", "load", "report"]

#: How many missing pairs the error message names (all are in ``MissingEncodings.missing``).
NAMED_IN_MESSAGE = 3


@dataclass(frozen=True)
class Missing:
    """One (arch, proxy) pair without a value, and why: ``not computed``, or the stored ``undefined``/``failed`` error."""

    arch: str
    proxy: str
    reason: str


@dataclass(frozen=True)
class EncodingsReport:
    """``values`` ``[archs, proxies]`` float64 with NaN where missing; ``missing`` lists those pairs in row order."""

    values: np.ndarray
    archs: tuple[str, ...]
    proxies: tuple[str, ...]
    input_spec: str
    missing: tuple[Missing, ...]


class MissingEncodings(LookupError):
    """Some (arch, proxy) pairs have no stored value; ``missing`` names every one, the message the first few."""

    def __init__(self, space: str, input_spec: str, missing: Sequence[Missing], total: int) -> None:
        self.space = space
        self.input_spec = input_spec
        self.missing = tuple(missing)
        named = ", ".join(f"({m.arch}, {m.proxy}): {m.reason}" for m in self.missing[:NAMED_IN_MESSAGE])
        more = f" and {len(self.missing) - NAMED_IN_MESSAGE} more" if len(self.missing) > NAMED_IN_MESSAGE else ""
        super().__init__(
            f"{len(self.missing)} of {total} (arch, proxy) encodings missing in {space} ({input_spec}); "
            f"{named}{more}; run `farm encode --space {space}` for those archs, or fall back explicitly"
        )


def report(
    store: str | os.PathLike[str],
    space: str,
    archs: Sequence[str],
    proxies: Sequence[str] = NAMES,
    input_spec: str | None = None,
) -> EncodingsReport:
    """The stored values of ``archs`` x ``proxies`` with NaN and a :class:`Missing` entry where there is none."""
    spec = input_spec if input_spec is not None else default_spec(space).key
    wanted = tuple(proxies)
    versions = {name: version(name) for name in wanted}
    frame = EncodingsTable(store).read(
        space, columns=["arch", "proxy", "value", "status", "error", "input_spec", "version", "computed_at"]
    )
    frame = frame[(frame["input_spec"] == spec) & frame["proxy"].isin(wanted)]
    frame = frame[frame["version"].astype(int) == frame["proxy"].map(versions)]
    # ok rows win over undefined/failed ones, and later rows over earlier ones
    frame = frame.assign(is_ok=frame["status"] == "ok").sort_values(["is_ok", "computed_at"], kind="stable")
    latest = frame.drop_duplicates(["arch", "proxy"], keep="last").set_index(["arch", "proxy"])
    values = np.full((len(archs), len(wanted)), np.nan, dtype=np.float64)
    missing = []
    for i, arch in enumerate(archs):
        for j, name in enumerate(wanted):
            key = (arch, name)
            if key not in latest.index:
                missing.append(Missing(arch, name, "not computed"))
            elif latest.at[key, "status"] == "ok":
                values[i, j] = float(latest.at[key, "value"])
            else:
                missing.append(Missing(arch, name, f"{latest.at[key, 'status']}: {latest.at[key, 'error']}"))
    return EncodingsReport(values, tuple(archs), wanted, spec, tuple(missing))


def load(
    store: str | os.PathLike[str],
    space: str,
    archs: Sequence[str],
    proxies: Sequence[str] = NAMES,
    input_spec: str | None = None,
) -> np.ndarray:
    """``[len(archs), len(proxies)]`` float64 proxy values; :class:`MissingEncodings` if any pair has none."""
    result = report(store, space, archs, proxies, input_spec)
    if result.missing:
        raise MissingEncodings(space, result.input_spec, result.missing, result.values.size)
    return result.values
