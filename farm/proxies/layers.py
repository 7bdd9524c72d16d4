"""Which modules of a network the proxies read: weight layers, activations, the pre-pooling feature map.

The zero-cost proxy literature scores the weights of convolutions and fully
connected layers (Abdelfattah et al. 2021, following SNIP, GraSP and SynFlow),
so :func:`weight_layers` returns the ``nn.Conv2d`` and ``nn.Linear`` modules in
definition order. :func:`activation_modules` lists the rectifier-like
activations whose on/off pattern NWOT reads.

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    >>> [type(m).__name__ for m in weight_layers(net)], len(activation_modules(net))
    (['Conv2d', 'LazyLinear'], 1)
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["ACTIVATION_TYPES", "WEIGHT_TYPES", "activation_modules", "capture_pre_pooling", "weight_layers"]

WEIGHT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)
#: Activations whose output is zero (or negative) for "off" units: ReLU networks and MobileNetV3's h-swish.
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convolution and linear modules of ``model`` (each once, in definition order)."""
    return [module for module in model.modules() if isinstance(module, WEIGHT_TYPES)]


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The activation modules of ``model`` in definition order."""
    return [module for module in model.modules() if isinstance(module, ACTIVATION_TYPES)]


def _leaves(model: nn.Module) -> Iterator[nn.Module]:
    return (module for module in model.modules() if not any(True for _ in module.children()))


class capture_pre_pooling:
    """Context manager: records the last feature map with spatial size above 1x1 that a leaf module outputs.

    For the farm's spaces this is the map global average pooling reads (NB201:
    the final BN-ReLU; FBNet: the 1x1 header; OFA: the final expand layer), the
    "pre-GAP" features of Zen-NAS. ``features`` holds the map of the latest
    forward pass.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.features: torch.Tensor | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self) -> Callable[[nn.Module, tuple[object, ...], object], None]:
        def record(_module: nn.Module, _inputs: tuple[object, ...], output: object) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[2] * output.shape[3] > 1:
                self.features = output

        return record

    def __enter__(self) -> "capture_pre_pooling":
        self._handles = [leaf.register_forward_hook(self._hook()) for leaf in _leaves(self.model)]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
