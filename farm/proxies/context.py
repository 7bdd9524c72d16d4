"""What a proxy is given: the network of one arch, the fixed batch, and the shared passes computed once.

A :class:`ProxyContext` holds the network (as ``space.build`` made it) and
the :class:`~farm.proxies.inputs.ProxyBatch`. It snapshots the network's
parameters and buffers once; :meth:`ProxyContext.fresh_model` puts that
snapshot back (and the dtype, and clears gradients) before each pass, so a
proxy's value does not depend on which other proxies ran before it (batch-norm
running statistics, signs of weights, re-initialisation are all undone).
Copying tensors back is much cheaper than copying or rebuilding the module
tree, which costs a quarter of a second for an NB201 network. A pass must
therefore keep copies, never views, of the tensors it caches. The pass nine proxies share (:mod:`farm.proxies.gradients`) is computed on
first use and cached.

Example:
    >>> from torch import nn
    >>> from farm.proxies.inputs import InputSpec
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> context = ProxyContext(net, InputSpec(4, 8, 2, 2).make_batch())
    >>> weight = net[0].weight.detach().clone()
    >>> _ = net[0].weight.data.mul_(0.0)  # a pass scribbles on the network...
    >>> torch.equal(context.fresh_model()[0].weight, weight)  # ...and the next one gets it back
    True
    >>> context.gradients() is context.gradients()
    True
"""

from __future__ import annotations

import torch
from torch import nn

from farm.proxies.gradients import GradientPass, gradient_pass
from farm.proxies.inputs import ProxyBatch

__all__ = ["ProxyContext"]


class ProxyContext:
    """One arch's network and batch, with the shared passes cached (see the module docstring)."""

    def __init__(self, model: nn.Module, batch: ProxyBatch) -> None:
        self.model = model
        self.batch = batch
        self._dtype = next((p.dtype for p in model.parameters()), torch.float32)
        self._snapshot = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        self._gradients: GradientPass | None = None

    def fresh_model(self) -> nn.Module:
        """The network as it was built (values, dtype, no gradients), for one pass to modify as it likes."""
        if any(p.dtype != self._dtype for p in self.model.parameters()):
            self.model.to(self._dtype)
        self.model.load_state_dict(self._snapshot)
        self.model.zero_grad(set_to_none=True)
        return self.model

    def gradients(self) -> GradientPass:
        """The shared gradient pass (computed on first use, then cached)."""
        if self._gradients is None:
            self._gradients = gradient_pass(self.fresh_model(), self.batch)
        return self._gradients
