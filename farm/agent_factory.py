"""Build the agent for an inventory device: dispatch on ``device.kind``, importing lazily.

Each agent module is imported only when a device of its kind is used, so a farm
of replay devices never imports paramiko and a CPU-only farm never imports the
ADB stack.

Example:
    >>> AGENT_CLASSES["replay"]
    ('agents.replay', 'ReplayAgent')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from agents.base import Agent
    from farm.inventory import Device

#: device kind -> (module, class). Every class has ``from_device(device, *, campaign_id)``.
AGENT_CLASSES: dict[str, tuple[str, str]] = {
    "cpu": ("agents.local", "LocalAgent"),
    "cuda": ("agents.local", "LocalAgent"),
    "ssh": ("agents.ssh", "SSHAgent"),
    "adb": ("agents.adb", "ADBAgent"),
    "replay": ("agents.replay", "ReplayAgent"),
}

#: The signature of an agent factory; :class:`farm.actors.DeviceWorker` takes one, so tests can inject agents.
AgentFactory = Callable[["Device", str], "Agent"]


def agent_class(kind: str) -> type:
    """The agent class for a device kind; ``KeyError`` naming the known kinds otherwise."""
    if kind not in AGENT_CLASSES:
        raise KeyError(f"no agent for device kind {kind!r}; known: {', '.join(AGENT_CLASSES)}")
    module_name, class_name = AGENT_CLASSES[kind]
    return getattr(importlib.import_module(module_name), class_name)


def make_agent(device: "Device", campaign_id: str) -> "Agent":
    """The agent that drives ``device`` for campaign ``campaign_id``."""
    return agent_class(device.kind).from_device(device, campaign_id=campaign_id)
