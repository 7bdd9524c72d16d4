"""Step 3 of ``add-device``: measure the chosen archs that the store does not hold yet, via the normal campaign.

``add-device`` measures a device in its *default configuration* (the first
runtime and first batch size of its inventory entry: the configuration its
predictions are for). An arch already stored for that configuration with
status ``ok`` or ``unstable`` is not measured again (``unstable`` rows are
measurements too: the farm already repeated them up to the device's
``max_repeats``); ``failed`` ones are retried. What remains goes through
:func:`farm.run.run_campaign` exactly as ``measure.py`` would send it, so it is
resumable, stored as it arrives, and visible to ``farm status``.

Example:
    >>> from farm.inventory import Device
    >>> default_configuration(Device(name="pi", kind="cpu", runtimes=["torchscript", "torch"], batch_sizes=[4, 1])).runtimes
    ['torchscript']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from farm.inventory import Device
from farm.store import Store
from farm.summary import CampaignSummary

#: Statuses of a stored row that count as "measured" (never measured again by add-device).
MEASURED_STATUSES: tuple[str, ...] = ("ok", "unstable")


def default_configuration(device: Device) -> Device:
    """``device`` restricted to its default target: its first runtime and first batch size."""
    return device.model_copy(update={"runtimes": list(device.runtimes[:1]), "batch_sizes": list(device.batch_sizes[:1])})


def measured_archs(store: Store, space: str, device: Device) -> set[str]:
    """Archs stored ``ok``/``unstable`` for ``device``'s default configuration in ``space``."""
    rows = store.read(search_space=space, device=device.name, where={"status": list(MEASURED_STATUSES)},
                      columns=["arch", "runtime", "batch_size"])
    mine = rows[(rows["runtime"] == device.runtimes[0]) & (rows["batch_size"] == device.batch_sizes[0])]
    return set(mine["arch"])


@dataclass
class SampleCampaign:
    """What step 3 did: archs asked for, how many the store already had, the campaign (None: nothing to do)."""

    requested: int
    already_stored: int
    summary: CampaignSummary | None = None

    @property
    def new_rows(self) -> int:
        """Rows this call added to the store (measured, unstable or failed)."""
        if self.summary is None:
            return 0
        totals = self.summary.totals()
        return totals["measured"] + totals["failed"]

    @property
    def problems(self) -> int:
        """Archs that failed or were not measured (a down device)."""
        if self.summary is None:
            return 0
        totals = self.summary.totals()
        return totals["failed"] + totals["not_measured"]

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "already_stored": self.already_stored, "new_rows": self.new_rows,
                "campaign": self.summary.to_dict() if self.summary else None}


def measure_missing(
    store_root: str | os.PathLike[str],
    space: str,
    device: Device,
    archs: Sequence[str],
    *,
    seed: int = 0,
    progress: bool = True,
    run: Callable[..., CampaignSummary] | None = None,
) -> SampleCampaign:
    """Run a campaign on ``device``'s default configuration for the ``archs`` not stored yet.

    Ray must be connected (:func:`farm.run.connect`). ``run`` replaces
    :func:`farm.run.run_campaign` (tests).
    """
    from farm.run import CampaignConfig, run_campaign

    configured = default_configuration(device)
    wanted = list(dict.fromkeys(archs))
    done = measured_archs(Store(store_root), space, configured)
    pending = [arch for arch in wanted if arch not in done]
    result = SampleCampaign(requested=len(wanted), already_stored=len(wanted) - len(pending))
    if pending:
        config = CampaignConfig(search_space=space, archs=pending, devices=[configured], store_root=store_root,
                                seed=seed, progress=progress)
        result.summary = (run or run_campaign)(config)
    return result


__all__ = ["MEASURED_STATUSES", "SampleCampaign", "default_configuration", "measure_missing", "measured_archs"]
