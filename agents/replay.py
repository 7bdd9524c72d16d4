"""A *simulated* device that replays latencies from a Parquet table.

:class:`ReplayAgent` is a simulation, never a measurement: it runs no model.
Each timed "run" returns the latency a table (for example the public HELP
table ``help_latency.parquet``) stores for one of its devices, optionally
multiplied by Gaussian noise, after sleeping ``delay_ms`` to stand in for the
run. The farm writes its rows with ``device_kind='replay'`` (the inventory
kind), and the agent reports ``simulated: True`` in its device facts, so no
replayed figure can be mistaken for one measured by this farm.

It exists for dry runs of a farm configuration (inventory, Ray placement,
store, resume) and for scale tests of the farm itself
(``benchmarks/farm_scale.py``). The table has one value per (space, arch) for a
device, so the artifact's runtime, batch size and input size do not change what
is replayed: pick the table device that matches the configuration you simulate
(e.g. HELP's ``1080ti_32`` for batch 32).

Example:
    >>> import tempfile, pandas as pd
    >>> path = tempfile.mktemp(suffix=".parquet")
    >>> pd.DataFrame({"search_space": ["nasbench201"], "arch": ["a"], "device": ["pixel2"],
    ...               "latency_ms": [12.0]}).to_parquet(path)
    >>> from agents.base import Artifact
    >>> agent = ReplayAgent(path, "pixel2")
    >>> agent.time_burst(Artifact("nasbench201", "a"), warmup=1, runs=2)
    [12.0, 12.0]
"""

from __future__ import annotations

import functools
import random
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pyarrow.parquet as pq

from agents.base import AgentError, ArtifactRejected, Artifact, BurstAgent, DeviceFacts

if TYPE_CHECKING:  # the inventory is only needed to build an agent from it
    from farm.inventory import Device

#: Columns a replay table must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("search_space", "arch", "device", "latency_ms")

#: The smallest factor noise may scale a latency by, so a simulated run never takes <= 0 ms.
MIN_NOISE_FACTOR = 0.05


class ReplayAgent(BurstAgent):
    """A simulated device: latencies looked up in ``table`` for ``device``, never measured.

    Args:
        table: a Parquet file with at least the columns :data:`REQUIRED_COLUMNS`.
        device: the value of the table's ``device`` column to replay (e.g. ``pixel2``).
        noise: relative standard deviation of multiplicative Gaussian noise per run (0 = exact).
        delay_ms: wall time each simulated run (warm-up or timed) sleeps.
        seed: seed of the noise generator.

    Raises:
        AgentError: the table is missing, lacks a column, or holds no row for ``device``
            (permanent: a configuration mistake, not a device that may come back).
    """

    kind = "replay"

    def __init__(
        self,
        table: str | Path,
        device: str,
        *,
        noise: float = 0.0,
        delay_ms: float = 0.0,
        seed: int = 0,
    ) -> None:
        if noise < 0 or delay_ms < 0:
            raise AgentError(f"replay device {device!r}: noise and delay_ms must be >= 0")
        self.table = Path(table).expanduser()
        self.source_device = device
        self.noise = float(noise)
        self.delay_ms = float(delay_ms)
        self._random = random.Random(seed)
        stat = self.table.stat() if self.table.is_file() else None
        self._latency = _load_latencies(self.table, device, stat.st_mtime_ns if stat else 0)

    @classmethod
    def from_device(cls, device: "Device", *, campaign_id: str) -> "ReplayAgent":
        """The agent for an inventory device of kind ``replay`` (its ``replay:`` section)."""
        config = device.replay
        if config is None:
            raise AgentError(f"device {device.name!r}: kind replay needs a 'replay:' section")
        seed = zlib.crc32(f"{device.name}/{campaign_id}".encode())
        return cls(config.table, config.device, noise=config.noise, delay_ms=config.delay_ms, seed=seed)

    def probe(self) -> DeviceFacts:
        return DeviceFacts(
            hostname=f"replay-simulation:{self.source_device}",
            cpu_model=f"simulated: replay of {self.table.name} device {self.source_device}",
            runtime_versions={"replay": "simulation"},
            extra={
                "simulated": True,
                "table": str(self.table),
                "source_device": self.source_device,
                "noise": self.noise,
                "delay_ms": self.delay_ms,
            },
        )

    def prepare(self, artifact: Artifact) -> None:
        if (artifact.search_space, artifact.arch) not in self._latency:
            raise ArtifactRejected(
                f"replay table {self.table.name} has no {artifact.search_space} arch {artifact.arch!r} "
                f"for device {self.source_device!r}"
            )

    def time_burst(self, artifact: Artifact, warmup: int, runs: int) -> list[float]:
        self.prepare(artifact)
        latency = self._latency[(artifact.search_space, artifact.arch)]
        if self.delay_ms > 0:
            time.sleep((warmup + runs) * self.delay_ms / 1000.0)
        if self.noise == 0:
            return [latency] * runs
        return [latency * max(MIN_NOISE_FACTOR, self._random.gauss(1.0, self.noise)) for _ in range(runs)]


@functools.lru_cache(maxsize=8)
def _load_latencies(table: Path, device: str, mtime_ns: int) -> dict[tuple[str, str], float]:
    """(search_space, arch) -> latency of ``device``; cached per file version (read-only for callers)."""
    if not table.is_file():
        raise AgentError(f"replay table {table} not found: set replay.table to a Parquet file")
    schema = pq.read_schema(table)
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise AgentError(f"replay table {table}: missing column(s) {', '.join(missing)}")
    data = pq.read_table(table, columns=["search_space", "arch", "latency_ms"], filters=[("device", "==", device)])
    if data.num_rows == 0:
        devices = pc.unique(pq.read_table(table, columns=["device"]).column("device")).to_pylist()
        raise AgentError(
            f"replay table {table}: no rows for device {device!r}; it has {', '.join(sorted(map(str, devices))[:40])}"
        )
    return {
        (space, arch): float(latency)
        for space, arch, latency in zip(
            data.column("search_space").to_pylist(),
            data.column("arch").to_pylist(),
            data.column("latency_ms").to_pylist(),
        )
    }
