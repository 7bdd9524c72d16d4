"""FBNet (Wu et al., CVPR 2019): 22 searchable positions in the Table 1 macro-architecture.

Each position holds one of 9 blocks: an inverted-residual block
``1x1 group conv (expand e) -> [channel shuffle] -> kxk depthwise -> 1x1 group conv``
with kernel k in {3, 5}, expansion e in {1, 3, 6} and groups 1 or 2, or ``skip``
(identity, or a 1x1 conv-BN-ReLU where the position changes shape). An arch
string is the 22 block names joined by ``-`` (``k5_e6-skip-k3_e1_g2-...``).

The macro-architecture (Table 1) is a 3x3 stem with 16 channels, stages of
1/4/4/4/4/4/1 positions with 16/24/32/64/112/184/352 channels, a 1x1 header
conv, global average pooling and a linear classifier. Two settings, as in
HW-NAS-Bench (Li et al., ICLR 2021), whose ``FBNet_Infer`` this reproduces
layer for layer (module names included):

* ``cifar100`` (the default, and the setting of the public FBNet latencies):
  32x32 input, stem stride 1, stage strides 1,1,2,2,1,2,1, header 1504, 100 classes.
* ``imagenet`` (the paper): 224x224, stem stride 2, stage strides 1,2,2,2,1,2,1,
  header 1984, 1000 classes.

The input resolution is a parameter of :meth:`FBNet.build` / :meth:`FBNet.flops`
on top of the setting.

Example:
    >>> from farm.spaces import get
    >>> space = get("fbnet")
    >>> arch = space.sample(1, seed=0)[0]
    >>> len(space.parse(arch)), space.input_shape(arch)
    (22, (1, 3, 32, 32))
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from farm.spaces.base import ArchError, SearchSpace
from farm.spaces.counting import Cost, conv_cost, conv_out_size
from farm.spaces.encoding import chain_graph, distinct_samples, onehot_rows

#: The 9 candidate blocks, in HW-NAS-Bench's / HELP's index order (``op_idx_list`` values).
BLOCKS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: (kernel, expansion, groups) of each non-skip block.
BLOCK_SPECS: dict[str, tuple[int, int, int]] = {
    name: (int(name[1]), int(name.split("_")[1][1:]), 2 if name.endswith("_g2") else 1)
    for name in BLOCKS
    if name != "skip"
}
#: Node vocabulary of :meth:`FBNet.graph`.
GRAPH_OPS: tuple[str, ...] = ("input", *BLOCKS, "output", "global")
STAGE_POSITIONS = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STEM_CHANNELS = 16
POSITIONS = sum(STAGE_POSITIONS)


@dataclass(frozen=True)
class FBNetSetting:
    """Dataset-dependent parts of the macro-architecture."""

    name: str
    input_size: int
    num_classes: int
    stem_stride: int
    stage_strides: tuple[int, ...]
    header_channels: int

    def positions(self) -> list[tuple[int, int, int]]:
        """(in channels, out channels, stride) of each of the 22 positions."""
        layout, channels = [], STEM_CHANNELS
        for count_, out, stride in zip(STAGE_POSITIONS, STAGE_CHANNELS, self.stage_strides):
            for i in range(count_):
                layout.append((channels, out, stride if i == 0 else 1))
                channels = out
        return layout


CIFAR100 = FBNetSetting("cifar100", 32, 100, 1, (1, 1, 2, 2, 1, 2, 1), 1504)
IMAGENET = FBNetSetting("imagenet", 224, 1000, 2, (1, 2, 2, 2, 1, 2, 1), 1984)
SETTINGS = {s.name: s for s in (CIFAR100, IMAGENET)}


# --- modules (names as HW-NAS-Bench's fbnet_models/model_infer.py) ----------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: [N, g*c, H, W] -> view [N, g, c, H, W] -> swap g, c."""
    n, channels, h, w = x.size()
    return x.view(n, groups, channels // groups, h, w).transpose(1, 2).contiguous().view(n, channels, h, w)


class ConvNorm(nn.Module):
    """Conv (no bias) -> BN -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class ConvBlock(nn.Module):
    """FBNet's searchable block (Wu et al. 2019, Fig. 3); residual when shape is kept."""

    __constants__ = ["groups", "residual"]

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, groups: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.groups = groups
        self.residual = c_in == c_out and stride == 1
        self.conv1 = nn.Conv2d(c_in, hidden, 1, bias=False, groups=groups)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel, stride=stride, padding=kernel // 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, c_out, 1, bias=False, groups=groups)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.nl = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.nl(self.bn1(self.conv1(x)))
        if self.groups > 1:
            out = channel_shuffle(out, self.groups)
        out = self.nl(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + x
        return out


def make_block(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The module of block ``name`` at a position with the given shape change."""
    if name == "skip":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return ConvNorm(c_in, c_out, 1, stride)
    kernel, expansion, groups = BLOCK_SPECS[name]
    return ConvBlock(c_in, c_out, kernel, expansion, groups, stride)


class FBNetNetwork(nn.Module):
    """Stem -> 22 blocks -> 1x1 header -> global average pool -> linear."""

    def __init__(self, blocks: Sequence[str], setting: FBNetSetting = CIFAR100, num_classes: int | None = None) -> None:
        super().__init__()
        self.stem = ConvNorm(3, STEM_CHANNELS, 3, setting.stem_stride)
        self.cells = nn.ModuleList(
            make_block(name, c_in, c_out, stride) for name, (c_in, c_out, stride) in zip(blocks, setting.positions())
        )
        self.header = ConvNorm(STAGE_CHANNELS[-1], setting.header_channels, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(setting.header_channels, num_classes or setting.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.fc(self.avgpool(self.header(x)).flatten(1))


# --- the space ---------------------------------------------------------------


class FBNet(SearchSpace):
    """FBNet's 9^22 space in one setting (``cifar100`` by default, as in the public latencies).

    The parsed form of an arch is a tuple of 22 block names; every method
    accepts it as well as the canonical string.
    """

    name = "fbnet"

    def __init__(self, setting: str | FBNetSetting = CIFAR100) -> None:
        if isinstance(setting, str):
            if setting not in SETTINGS:
                raise ValueError(f"unknown FBNet setting {setting!r}; known: {', '.join(SETTINGS)}")
            setting = SETTINGS[setting]
        self.setting = setting
        self.default_input_size = setting.input_size

    def parse(self, arch: str) -> tuple[str, ...]:
        """The 22 block names; :class:`ArchError` names the bad position (0-based) and the allowed blocks."""
        if not isinstance(arch, str):
            raise ArchError(f"fbnet arch must be a string, got {type(arch).__name__}")
        return _parse(arch)

    def format(self, parsed: Sequence[str]) -> str:
        """The canonical string: block names joined by ``-``."""
        return "-".join(self._blocks(tuple(parsed)))

    def _blocks(self, arch: str | Sequence[str]) -> tuple[str, ...]:
        if isinstance(arch, str):
            return _parse(arch)
        blocks = tuple(arch)
        if len(blocks) != POSITIONS:
            raise ArchError(f"fbnet arch needs {POSITIONS} blocks joined by '-', got {len(blocks)}")
        for position, block in enumerate(blocks):
            if block not in BLOCKS:
                raise ArchError(f"fbnet position {position}: {block!r} is not one of {', '.join(BLOCKS)}")
        return blocks

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct archs, each position drawn uniformly; deterministic in ``seed``."""
        return distinct_samples(lambda rng: "-".join(rng.choice(BLOCKS) for _ in range(POSITIONS)), n, seed)

    def build(
        self, arch: str | Sequence[str], input_size: int | None = None, num_classes: int | None = None
    ) -> nn.Module:
        """The network in eval mode on CPU. ``input_size`` does not change the module (global pooling)."""
        return FBNetNetwork(self._blocks(arch), self.setting, num_classes).eval()

    def graph(self, arch: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Chain graph ``(adjacency [25, 25], op_indices [25])`` over :data:`GRAPH_OPS`.

        Nodes: 0 input, 1..22 the positions, 23 output, 24 global (see
        :mod:`farm.spaces.encoding` for the edge convention).
        """
        blocks = self._blocks(arch)
        return chain_graph(
            [GRAPH_OPS.index(b) for b in blocks],
            [True] * POSITIONS,
            GRAPH_OPS.index("input"),
            GRAPH_OPS.index("output"),
            GRAPH_OPS.index("global"),
        )

    def onehot(self, arch: str | Sequence[str]) -> np.ndarray:
        """198 floats: for each of the 22 positions a one-hot over :data:`BLOCKS`."""
        return onehot_rows([BLOCKS.index(b) for b in self._blocks(arch)], len(BLOCKS))

    def help_encoding(self, arch: str | Sequence[str]) -> np.ndarray:
        """HELP's 132-float FBNet encoding (Lee et al. 2021, ``utils.arch_enc``), for reproducing HELP.

        Per position 6 values: kernel 3 / kernel 5, then one of e1, e1_g2, e3, e6;
        ``skip`` is all zeros.
        """
        rows = np.zeros((POSITIONS, 6), dtype=np.float32)
        for position, block in enumerate(self._blocks(arch)):
            index = BLOCKS.index(block)
            if block != "skip":
                rows[position, index // 4] = 1.0
                rows[position, 2 + index % 4] = 1.0
        return rows.reshape(-1)

    def flops(self, arch: str | Sequence[str], input_size: int | None = None) -> int:
        """MACs per input that ``build(arch)``'s Conv2d/Linear layers execute at ``input_size``."""
        return self.cost(arch, input_size).macs

    def params(self, arch: str | Sequence[str]) -> int:
        """Parameters of ``build(arch)`` (BN affine included)."""
        return self.cost(arch).params

    def cost(self, arch: str | Sequence[str], input_size: int | None = None) -> Cost:
        """MACs and parameters as a sum of per-position block costs plus stem and head.

        Every position's shapes are fixed by the macro-architecture, so each
        (position, block) cost is computed once per input size from the layer
        formula :func:`farm.spaces.counting.conv_cost`; tests check the sums
        against hook and FlopCounterMode counts on whole built models.
        """
        fixed, per_position = _component_costs(self.setting, input_size or self.default_input_size)
        total = fixed
        for position, block in enumerate(self._blocks(arch)):
            total = total + per_position[position][block]
        return total


@functools.lru_cache(maxsize=65536)
def _parse(arch: str) -> tuple[str, ...]:
    blocks = arch.strip().split("-")
    if len(blocks) != POSITIONS:
        raise ArchError(f"fbnet arch {arch!r}: needs {POSITIONS} blocks joined by '-', found {len(blocks)}")
    for position, block in enumerate(blocks):
        if block not in BLOCKS:
            raise ArchError(f"fbnet arch {arch!r}: position {position}: {block!r} is not one of {', '.join(BLOCKS)}")
    return tuple(blocks)


def _block_cost(name: str, c_in: int, c_out: int, stride: int, size: int) -> Cost:
    """Cost of block ``name`` on a ``size`` x ``size`` input (the layers of :func:`make_block`)."""
    out_size = conv_out_size(size, 1, stride)
    if name == "skip":
        return Cost() if stride == 1 and c_in == c_out else conv_cost(c_in, c_out, 1, out_size)
    kernel, expansion, groups = BLOCK_SPECS[name]
    hidden = c_in * expansion
    return (
        conv_cost(c_in, hidden, 1, size, groups=groups)
        + conv_cost(hidden, hidden, kernel, out_size, groups=hidden)
        + conv_cost(hidden, c_out, 1, out_size, groups=groups)
    )


@functools.lru_cache(maxsize=None)
def _component_costs(setting: FBNetSetting, input_size: int) -> tuple[Cost, list[dict[str, Cost]]]:
    """(stem + head cost, per position {block: cost}) at ``input_size``."""
    size = conv_out_size(input_size, 3, setting.stem_stride)
    fixed = conv_cost(3, STEM_CHANNELS, 3, size)
    per_position = []
    for c_in, c_out, stride in setting.positions():
        per_position.append({name: _block_cost(name, c_in, c_out, stride, size) for name in BLOCKS})
        size = conv_out_size(size, 1, stride)
    header = conv_cost(STAGE_CHANNELS[-1], setting.header_channels, 1, size)
    classifier = Cost(setting.header_channels * setting.num_classes, (setting.header_channels + 1) * setting.num_classes)
    return fixed + header + classifier, per_position
