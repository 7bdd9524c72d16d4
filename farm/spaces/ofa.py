"""Once-for-All MobileNetV3 (Cai et al., ICLR 2020): the ``ofa_mbv3_d234_e346_k357_w1.2`` space.

A fixed part (3x3 stride-2 stem with h-swish, one 3x3 depthwise block) is
followed by 5 stages of up to 4 MBConv blocks each, then a 1x1 expand layer,
global average pooling, a 1x1 feature-mix layer and a linear classifier, all
as in MobileNetV3-Large with width multiplier 1.2 (channels 24 | 32, 48, 96,
136, 192 | 1152, 1536). Per block the arch chooses the depthwise kernel
``ks`` in {3, 5, 7} and the expand ratio ``e`` in {3, 4, 6}; per stage the
depth ``d`` in {2, 3, 4}; and the input resolution ``r``. Stages 3, 5 and 6
of MobileNetV3 (here stages 1, 3, 4, 0-based) use squeeze-and-excitation; the
last three use h-swish.

The canonical arch string is HELP's compact JSON
``{"ks":[20 ints],"e":[20 ints],"d":[5 ints],"r":int}``. Slot ``4*s + i`` is
block ``i`` of stage ``s``; slots with ``i >= d[s]`` are inactive: kept in the
string, ignored by every model and encoding.

Module and parameter names follow the subnet that the ``ofa`` package's
``OFAMobileNetV3.get_active_subnet()`` returns, so its ``state_dict`` loads
into :meth:`OFAMobileNetV3.build` models.

Example:
    >>> from farm.spaces import get
    >>> space = get("ofa")
    >>> arch = space.sample(1, seed=0)[0]
    >>> space.input_shape(arch) == (1, 3, space.parse(arch).r, space.parse(arch).r)
    True
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from farm.spaces.base import ArchError, SearchSpace
from farm.spaces.counting import Cost, conv_cost, conv_out_size
from farm.spaces.encoding import chain_graph, distinct_samples, onehot_rows

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))
STAGES = 5
MAX_DEPTH = 4
SLOTS = STAGES * MAX_DEPTH
WIDTH_MULT = 1.2
#: Node vocabulary of :meth:`OFAMobileNetV3.graph`: one op per (kernel, expand) pair.
BLOCK_OPS: tuple[str, ...] = tuple(f"k{k}_e{e}" for k in KERNELS for e in EXPANDS)
GRAPH_OPS: tuple[str, ...] = ("input", *BLOCK_OPS, "inactive", "output", "global")


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never more than 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


_BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STEM_CHANNELS, FIRST_BLOCK_CHANNELS, *_STAGE, FINAL_EXPAND_CHANNELS, LAST_CHANNELS = (
    make_divisible(w * WIDTH_MULT) for w in _BASE_WIDTHS
)
STAGE_CHANNELS: tuple[int, ...] = tuple(_STAGE)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_HSWISH = (False, False, True, True, True)
STAGE_SE = (False, True, False, True, True)
NUM_CLASSES = 1000


@dataclass(frozen=True)
class OFAArch:
    """A parsed OFA arch: per-slot kernels and expands (20 each), per-stage depths (5), resolution."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def active(self) -> list[bool]:
        """Whether each of the 20 slots is built (slot index within its stage < that stage's depth)."""
        return [slot % MAX_DEPTH < self.d[slot // MAX_DEPTH] for slot in range(SLOTS)]

    def blocks(self) -> list[tuple[int, int, int, bool]]:
        """(stage, kernel, expand, first in stage) of each active block in order."""
        return [
            (slot // MAX_DEPTH, self.ks[slot], self.e[slot], slot % MAX_DEPTH == 0)
            for slot, on in enumerate(self.active())
            if on
        ]

    def to_json(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": self.r}


# --- modules (names as ofa.imagenet_classification.networks.MobileNetV3) ------


def _activation(hswish: bool) -> nn.Module:
    return nn.Hardswish(inplace=True) if hswish else nn.ReLU(inplace=True)


def _conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(c_out)),
    ]
    if act is not None:
        layers.append(("act", act))
    return nn.Sequential(OrderedDict(layers))


class SqueezeExcite(nn.Module):
    """MobileNetV3 SE (Howard et al. 2019): x * h_sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = make_divisible(channels // 4)
        self.fc = nn.Sequential(
            OrderedDict(
                [
                    ("reduce", nn.Conv2d(channels, mid, 1, bias=True)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("expand", nn.Conv2d(mid, channels, 1, bias=True)),
                    ("h_sigmoid", nn.Hardsigmoid(inplace=True)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(3, keepdim=True).mean(2, keepdim=True))


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise [-> SE] -> 1x1 linear projection."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, hswish: bool, se: bool) -> None:
        super().__init__()
        mid = make_divisible(round(c_in * expand))
        self.inverted_bottleneck = (
            None if expand == 1 else _conv_bn_act(c_in, mid, 1, act=_activation(hswish))
        )
        if expand == 1:
            mid = c_in
        depth = _conv_bn_act(mid, mid, kernel, stride, groups=mid, act=_activation(hswish))
        if se:
            depth.add_module("se", SqueezeExcite(mid))
        self.depth_conv = depth
        self.point_linear = _conv_bn_act(mid, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class ResidualBlock(nn.Module):
    """An MBConv with an identity shortcut when it keeps the shape."""

    __constants__ = ["residual"]

    def __init__(self, conv: MBConv, residual: bool) -> None:
        super().__init__()
        self.conv = conv
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.residual:
            out = out + x
        return out


def make_block(stage: int, kernel: int, expand: int, first: bool) -> ResidualBlock:
    """Block ``(stage, kernel, expand)``; the first of a stage takes its stride and new width."""
    c_in = (STAGE_CHANNELS[stage - 1] if stage > 0 else FIRST_BLOCK_CHANNELS) if first else STAGE_CHANNELS[stage]
    stride = STAGE_STRIDES[stage] if first else 1
    conv = MBConv(c_in, STAGE_CHANNELS[stage], kernel, stride, expand, STAGE_HSWISH[stage], STAGE_SE[stage])
    return ResidualBlock(conv, residual=stride == 1 and c_in == STAGE_CHANNELS[stage])


def _stem() -> tuple[nn.Sequential, ResidualBlock]:
    first_conv = _conv_bn_act(3, STEM_CHANNELS, 3, 2, act=nn.Hardswish(inplace=True))
    first_block = MBConv(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 3, 1, 1, hswish=False, se=False)
    return first_conv, ResidualBlock(first_block, residual=STEM_CHANNELS == FIRST_BLOCK_CHANNELS)


class MobileNetV3(nn.Module):
    """An OFA MobileNetV3 subnet: stem, first block, the active MBConv blocks, then
    1x1 expand (BN, h-swish) -> global average pool -> 1x1 feature mix (h-swish) -> linear."""

    def __init__(self, arch: OFAArch, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        first_conv, first_block = _stem()
        self.first_conv = first_conv
        self.blocks = nn.ModuleList([first_block, *(make_block(*spec) for spec in arch.blocks())])
        self.final_expand_layer = _conv_bn_act(STAGE_CHANNELS[-1], FINAL_EXPAND_CHANNELS, 1, act=nn.Hardswish(inplace=True))
        self.feature_mix_layer = nn.Sequential(
            OrderedDict(
                [
                    ("conv", nn.Conv2d(FINAL_EXPAND_CHANNELS, LAST_CHANNELS, 1, bias=False)),
                    ("act", nn.Hardswish(inplace=True)),
                ]
            )
        )
        self.classifier = nn.Sequential(OrderedDict([("linear", nn.Linear(LAST_CHANNELS, num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.final_expand_layer(x).mean(3, keepdim=True).mean(2, keepdim=True)
        return self.classifier(self.feature_mix_layer(x).flatten(1))


# --- the space ---------------------------------------------------------------


class OFAMobileNetV3(SearchSpace):
    """The OFA MobileNetV3 w1.2 space. Methods accept the JSON string, a dict or an :class:`OFAArch`."""

    name = "ofa"
    default_input_size = 224

    def parse(self, arch: str) -> OFAArch:
        """Parse and validate the JSON arch; :class:`ArchError` names the key, slot and allowed values."""
        if not isinstance(arch, str):
            raise ArchError(f"ofa arch must be a JSON string, got {type(arch).__name__}")
        return _parse(arch)

    def format(self, parsed: OFAArch | dict[str, Any]) -> str:
        """Compact JSON with keys ks, e, d, r (the form of the public latency table)."""
        return json.dumps(self._arch(parsed).to_json(), separators=(",", ":"))

    def _arch(self, arch: str | OFAArch | dict[str, Any]) -> OFAArch:
        if isinstance(arch, OFAArch):
            return _validate(arch.to_json(), repr(arch))
        if isinstance(arch, dict):
            return _validate(arch, repr(arch))
        return self.parse(arch)

    def input_shape(self, arch: str, batch_size: int = 1, input_size: int | None = None) -> tuple[int, int, int, int]:
        """NCHW input shape; the resolution is the arch's ``r`` unless ``input_size`` overrides it."""
        size = input_size or self._arch(arch).r
        return (batch_size, 3, size, size)

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct archs drawn like OFA's ``sample_active_subnet`` plus a uniform ``r``."""

        def draw(rng: Any) -> str:
            return self.format(
                OFAArch(
                    ks=tuple(rng.choice(KERNELS) for _ in range(SLOTS)),
                    e=tuple(rng.choice(EXPANDS) for _ in range(SLOTS)),
                    d=tuple(rng.choice(DEPTHS) for _ in range(STAGES)),
                    r=rng.choice(RESOLUTIONS),
                )
            )

        return distinct_samples(draw, n, seed)

    def build(self, arch: str | OFAArch | dict[str, Any], input_size: int | None = None, num_classes: int = NUM_CLASSES) -> nn.Module:
        """The subnet in eval mode on CPU (only active blocks are built; the module works at any resolution)."""
        return MobileNetV3(self._arch(arch), num_classes).eval()

    def graph(self, arch: str | OFAArch | dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Chain graph ``(adjacency [23, 23], op_indices [23])`` over :data:`GRAPH_OPS`.

        Nodes: 0 input, 1..20 the block slots (inactive slots have op
        ``inactive`` and only the edge to the global node), 21 output, 22
        global. The resolution is not in the graph; see :meth:`onehot`.
        """
        parsed = self._arch(arch)
        active = parsed.active()
        ops = [
            GRAPH_OPS.index(f"k{k}_e{e}") if on else GRAPH_OPS.index("inactive")
            for k, e, on in zip(parsed.ks, parsed.e, active)
        ]
        return chain_graph(ops, active, GRAPH_OPS.index("input"), GRAPH_OPS.index("output"), GRAPH_OPS.index("global"))

    def onehot(self, arch: str | OFAArch | dict[str, Any]) -> np.ndarray:
        """145 floats as OFA's ``MobileNetArchEncoder`` (and HELP): ks 20x3, e 20x3 (inactive slots 0), r 25."""
        parsed = self._arch(arch)
        active = parsed.active()
        return np.concatenate(
            [
                onehot_rows([KERNELS.index(k) for k in parsed.ks], len(KERNELS), active),
                onehot_rows([EXPANDS.index(e) for e in parsed.e], len(EXPANDS), active),
                onehot_rows([RESOLUTIONS.index(parsed.r)], len(RESOLUTIONS)),
            ]
        )

    def flops(self, arch: str | OFAArch | dict[str, Any], input_size: int | None = None) -> int:
        """MACs per input at resolution ``input_size`` (default: the arch's ``r``)."""
        return self.cost(arch, input_size).macs

    def params(self, arch: str | OFAArch | dict[str, Any]) -> int:
        """Parameters of ``build(arch)`` (independent of the resolution)."""
        parsed = self._arch(arch)
        return self.cost(parsed, parsed.r).params

    def cost(self, arch: str | OFAArch | dict[str, Any], input_size: int | None = None) -> Cost:
        """MACs and parameters, from a per-layer formula of each block and of the fixed parts.

        OFA mixes 25 resolutions with 90 block shapes, too many to tabulate by
        running modules; the formulas (``_conv_cost``, ``_mbconv_cost``) are
        checked against hook and FlopCounterMode counts on whole built models
        in the tests.
        """
        parsed = self._arch(arch)
        size = input_size or parsed.r
        fixed, stage_sizes = _fixed_cost(size)
        total = fixed
        for stage, kernel, expand, first in parsed.blocks():
            total = total + _block_cost(stage, kernel, expand, first, stage_sizes[stage])
        return total


def _validate(obj: Any, text: str) -> OFAArch:
    if not isinstance(obj, dict):
        raise ArchError(f"ofa arch {text}: must be a JSON object with keys ks, e, d, r")
    keys = set(obj)
    if keys != {"ks", "e", "d", "r"}:
        missing, extra = sorted({"ks", "e", "d", "r"} - keys), sorted(keys - {"ks", "e", "d", "r"})
        raise ArchError(f"ofa arch {text}: keys must be ks, e, d, r (missing {missing}, unexpected {extra})")
    lists = {}
    for key, length, allowed in (("ks", SLOTS, KERNELS), ("e", SLOTS, EXPANDS), ("d", STAGES, DEPTHS)):
        values = obj[key]
        if not isinstance(values, (list, tuple)) or len(values) != length:
            raise ArchError(f"ofa arch {text}: '{key}' must be a list of {length} values from {allowed}")
        for position, value in enumerate(values):
            if type(value) is not int or value not in allowed:
                raise ArchError(
                    f"ofa arch {text}: {key}[{position}]: {value!r} is not one of {', '.join(map(str, allowed))}"
                )
        lists[key] = tuple(values)
    r = obj["r"]
    if type(r) is not int or r not in RESOLUTIONS:
        raise ArchError(f"ofa arch {text}: r: {r!r} is not one of {RESOLUTIONS[0]}, {RESOLUTIONS[1]}, ..., {RESOLUTIONS[-1]} (step 4)")
    return OFAArch(lists["ks"], lists["e"], lists["d"], r)


@functools.lru_cache(maxsize=65536)
def _parse(arch: str) -> OFAArch:
    try:
        obj = json.loads(arch)
    except json.JSONDecodeError as error:
        raise ArchError(f"ofa arch {arch!r}: not JSON ({error.msg} at char {error.pos})") from None
    return _validate(obj, repr(arch))


def _halve(size: int) -> int:
    """Output size of a same-padded odd-kernel conv with stride 2."""
    return conv_out_size(size, 3, 2)


def _mbconv_cost(c_in: int, c_out: int, kernel: int, stride: int, expand: int, se: bool, in_size: int) -> Cost:
    """MBConv: [1x1 expand at the input size] + kxk depthwise and 1x1 projection at the output size + SE on 1x1."""
    out_size = _halve(in_size) if stride == 2 else in_size
    mid = c_in if expand == 1 else make_divisible(round(c_in * expand))
    total = Cost() if expand == 1 else conv_cost(c_in, mid, 1, in_size)
    total = total + conv_cost(mid, mid, kernel, out_size, groups=mid)
    if se:
        se_mid = make_divisible(mid // 4)
        total = total + conv_cost(mid, se_mid, 1, 1, bias=True, bn=False) + conv_cost(se_mid, mid, 1, 1, bias=True, bn=False)
    return total + conv_cost(mid, c_out, 1, out_size)


@functools.lru_cache(maxsize=None)
def _fixed_cost(size: int) -> tuple[Cost, tuple[tuple[int, int], ...]]:
    """(stem + first block + head cost, per stage (input size of its first block, size inside))."""
    size = _halve(size)
    fixed = conv_cost(3, STEM_CHANNELS, 3, size)
    fixed = fixed + _mbconv_cost(STEM_CHANNELS, FIRST_BLOCK_CHANNELS, 3, 1, 1, False, size)
    stage_sizes = []
    for stride in STAGE_STRIDES:
        inside = _halve(size) if stride == 2 else size
        stage_sizes.append((size, inside))
        size = inside
    fixed = fixed + conv_cost(STAGE_CHANNELS[-1], FINAL_EXPAND_CHANNELS, 1, size)
    fixed = fixed + conv_cost(FINAL_EXPAND_CHANNELS, LAST_CHANNELS, 1, 1, bn=False)
    fixed = fixed + Cost(LAST_CHANNELS * NUM_CLASSES, LAST_CHANNELS * NUM_CLASSES + NUM_CLASSES)
    return fixed, tuple(stage_sizes)


@functools.lru_cache(maxsize=None)
def _block_cost(stage: int, kernel: int, expand: int, first: bool, sizes: tuple[int, int]) -> Cost:
    c_in = (STAGE_CHANNELS[stage - 1] if stage > 0 else FIRST_BLOCK_CHANNELS) if first else STAGE_CHANNELS[stage]
    stride = STAGE_STRIDES[stage] if first else 1
    return _mbconv_cost(c_in, STAGE_CHANNELS[stage], kernel, stride, expand, STAGE_SE[stage], sizes[0] if first else sizes[1])
