"""Linux ``/proc/cpuinfo`` as Android phones, Raspberry Pis, Jetsons and PCs print it.

Blocks of ``key : value`` lines, one block per processor; the separator is a tab, spaces
or neither (``CPU architecture: 8``). Older arm64 kernels print a leading
``Processor : AArch64 Processor rev 14 (aarch64)`` line; x86 prints ``model name``; a Pi
prints ``Hardware`` and ``Model`` at the end. ARM cores are named from
(``CPU implementer``, ``CPU part``) so big.LITTLE clusters can be told apart.

Example:
    >>> info = parse("processor\\t: 0\\nCPU implementer\\t: 0x41\\nCPU part\\t: 0xd0b\\n\\n"
    ...              "processor\\t: 1\\nCPU implementer\\t: 0x41\\nCPU part\\t: 0xd05\\n")
    >>> info.cores, info.core_names()
    (2, ['Cortex-A76', 'Cortex-A55'])
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from agents.parsers.common import UnparsableOutput

__all__ = ["MAX_CPUS", "CpuInfo", "parse", "parse_cpu_list", "parse_online"]

TOOL = "cpuinfo"

#: The most CPUs a device may report (processor blocks, CPU numbers, list entries); more is hostile or garbled.
MAX_CPUS = 4096

#: (implementer, part) -> core name; Linux arch/arm64 cputype.h and lscpu's tables.
ARM_PARTS: dict[tuple[int, int], str] = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57", (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0D): "Cortex-A77",
    (0x41, 0xD41): "Cortex-A78", (0x41, 0xD44): "Cortex-X1", (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710", (0x41, 0xD48): "Cortex-X2", (0x41, 0xD4D): "Cortex-A715",
    (0x41, 0xD4E): "Cortex-X3", (0x41, 0xD80): "Cortex-A520", (0x41, 0xD81): "Cortex-A720",
    (0x41, 0xD82): "Cortex-X4", (0x41, 0xD0C): "Neoverse-N1", (0x41, 0xD42): "Cortex-A78AE",
    (0x51, 0x800): "Kryo 2xx Gold", (0x51, 0x801): "Kryo 2xx Silver", (0x51, 0x802): "Kryo 3xx Gold",
    (0x51, 0x803): "Kryo 3xx Silver", (0x51, 0x804): "Kryo 4xx Gold", (0x51, 0x805): "Kryo 4xx Silver",
    (0x4E, 0x004): "Carmel",
}


@dataclass(frozen=True)
class CpuInfo:
    """One dict per processor block, plus the lines outside the blocks (``Hardware``, ``Model``)."""

    processors: list[dict[str, str]]
    system: dict[str, str] = field(default_factory=dict)

    @property
    def cores(self) -> int:
        return len(self.processors)

    def core_names(self) -> list[str]:
        """Per core: the ARM core name, else ``model name``, else the raw implementer/part."""
        return [_core_name(block) for block in self.processors]

    @property
    def model(self) -> str:
        """One line for the device facts: ``Model``/``Hardware``/``model name``, plus the core mix."""
        label = (self.system.get("Model") or self.system.get("Hardware") or self.system.get("Processor")
                 or (self.processors[0].get("model name") if self.processors else "") or "")
        mix = ", ".join(f"{count}x {name}" for name, count in Counter(self.core_names()).items())
        return f"{label} ({mix})" if label and mix else label or mix


def parse(text: str, *, source: str = "output") -> CpuInfo:
    """Parse ``/proc/cpuinfo``; refuse text without a ``processor`` line."""
    processors: list[dict[str, str]] = []
    system: dict[str, str] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            current = None if not line.strip() else current
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            if len(processors) == MAX_CPUS:
                raise UnparsableOutput(TOOL, f"more than {MAX_CPUS} `processor` blocks", source=source, line=line)
            current = {"processor": value}
            processors.append(current)
        elif current is not None:
            current[key] = value
        else:
            system[key] = value
    if not processors:
        raise UnparsableOutput(TOOL, "no `processor : N` line", source=source,
                               line=next((line for line in text.splitlines() if line.strip()), None))
    return CpuInfo(processors, system)


def _core_name(block: dict[str, str]) -> str:
    try:
        key = (int(block["CPU implementer"], 16), int(block["CPU part"], 16))
    except (KeyError, ValueError):
        return block.get("model name", "unknown")
    return ARM_PARTS.get(key, f"implementer {block['CPU implementer']} part {block['CPU part']}")


def parse_cpu_list(text: str, *, source: str = "output") -> list[int]:
    """``0-3,5`` -> ``[0, 1, 2, 3, 5]`` (the kernel's CPU list format).

    Every CPU number must be below :data:`MAX_CPUS` and the list at most that long, checked
    before any range is expanded: ``0-20000000`` is refused without allocating.

    Example:
        >>> parse_cpu_list("0-2,4")
        [0, 1, 2, 4]
        >>> parse_cpu_list("0-20000000")
        Traceback (most recent call last):
        ...
        agents.parsers.common.UnparsableOutput: output: cpuinfo: CPU number 20000000 in a CPU list is not below 4096 (line: '0-20000000')
    """
    body = text.strip()
    shown = body[:80] or "<empty>"
    spans: list[tuple[int, int]] = []
    total = position = 0
    for match in _CPU_SPAN.finditer(body):  # span by span: no regex state grows with the text
        if match.start() != position:
            break
        position = match.end()
        part, low_text, high_text = match.group(1), match.group(2), match.group(3) or match.group(2)
        for number in (low_text, high_text):
            if len(number) > len(str(MAX_CPUS)) or int(number) >= MAX_CPUS:
                raise UnparsableOutput(TOOL, f"CPU number {number[:24]} in a CPU list is not below {MAX_CPUS}",
                                       source=source, line=shown)
        low, high = int(low_text), int(high_text)
        if high < low:
            raise UnparsableOutput(TOOL, f"CPU range {part} runs backwards", source=source, line=shown)
        total += high - low + 1
        if total > MAX_CPUS:
            raise UnparsableOutput(TOOL, f"a CPU list of more than {MAX_CPUS} entries", source=source, line=shown)
        spans.append((low, high))
    if not body or position != len(body) or body.endswith(","):
        raise UnparsableOutput(TOOL, "not a CPU list like `0-7`", source=source, line=shown)
    return [cpu for low, high in spans for cpu in range(low, high + 1)]


_CPU_SPAN = re.compile(r"(([0-9]+)(?:-([0-9]+))?)(?:,|\Z)")


def parse_online(text: str, *, source: str = "output") -> list[int]:
    """``/sys/devices/system/cpu/online`` (a CPU list) -> the online core numbers, bounded as :func:`parse_cpu_list`.

    Example:
        >>> parse_online("0-3,6")
        [0, 1, 2, 3, 6]
    """
    return parse_cpu_list(text, source=source)
