"""``farm devices``: probe every inventory device through its own Ray actor.

The probe runs where the measurements would (the actor is placed on the device's
node by its ``device:<name>`` resource), so it checks the whole path: Ray
placement, connection, the agent's device facts.

Example:
    >>> from farm.inventory import Device   # doctest: +SKIP
    >>> probe_devices([Device(name="cpu-local", kind="cpu")])[0]["reachable"]   # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import ray

from farm.actors import device_resource, start_actor

if TYPE_CHECKING:
    from farm.inventory import Device

PROBE_TIMEOUT_S = 120.0


def probe_devices(devices: Sequence["Device"], *, address: str | None = None) -> list[dict[str, Any]]:
    """One dict per device: device, kind, reachable, facts (``DeviceFacts.to_dict()``) and error."""
    from farm import protocol as protocols
    from farm.run import connect, new_campaign_id

    started_here = connect(address)
    try:
        campaign_id = "probe-" + new_campaign_id()
        available = ray.cluster_resources()
        pending: dict[str, Any] = {}
        results: dict[str, dict[str, Any]] = {}
        for device in devices:
            base = {"device": device.name, "kind": device.kind}
            if device.node and available.get(device_resource(device.name), 0) < 1:
                results[device.name] = {
                    **base, "reachable": False, "facts": None,
                    "error": f"no Ray node offers resource {device_resource(device.name)!r} (node {device.node!r})",
                }
                continue
            actor = start_actor(device, campaign_id, protocols.make(device.protocol))
            pending[device.name] = (actor, actor.probe.remote())
        for name, (actor, ref) in pending.items():
            device = next(d for d in devices if d.name == name)
            try:
                answer = ray.get(ref, timeout=PROBE_TIMEOUT_S)
            except (ray.exceptions.RayError, TimeoutError) as error:
                answer = {"reachable": False, "facts": None, "error": f"{type(error).__name__}: {error}".splitlines()[0]}
            results[name] = {"device": name, "kind": device.kind, **answer}
            ray.get(actor.close.remote(), timeout=30)
            ray.kill(actor)
        return [results[d.name] for d in devices]
    finally:
        if started_here:
            ray.shutdown()
