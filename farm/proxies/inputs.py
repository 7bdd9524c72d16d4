"""The fixed input batch every proxy of an arch sees, and its documented spec.

Proxies are computed on an untrained network with one mini-batch. The farm has
no image data set, so the batch is synthetic and fully determined by the
:class:`InputSpec`:

* images: ``batch_size`` x 3 x ``resolution`` x ``resolution`` draws of N(0, 1)
  from a ``torch.Generator`` seeded with ``seed`` (float32);
* labels (for the label-based proxies: epe_nas, fisher, grad_norm, grasp,
  plain, snip): ``i % label_classes`` for sample ``i``, so each of the first
  ``label_classes`` classes has ``batch_size / label_classes`` samples (EPE-NAS
  needs at least two samples per class for a correlation matrix);
* the network: ``space.build(arch, input_size=resolution)`` right after
  ``torch.manual_seed(seed)``, i.e. PyTorch's default initialisation drawn from
  that seed, with ``num_classes`` outputs.

Real-data batches (NAS-Bench-Suite-Zero uses a CIFAR-10 batch of 64) would be
needed to predict accuracy; as latency-predictor encodings (NASFLAT's
supplementary encodings) the proxies describe the architecture, and a Gaussian
batch keeps them reproducible without a data set.

:attr:`InputSpec.key` is the string stored in the ``input_spec`` column of the
encodings table; values computed with different specs are never mixed.

Example:
    >>> spec = default_spec("nasbench201")
    >>> spec.key
    'gaussian:b16:r16:c10:l4:s0'
    >>> batch = spec.make_batch()
    >>> tuple(batch.inputs.shape), batch.labels.tolist()[:6]
    ((16, 3, 16, 16), [0, 1, 2, 3, 0, 1])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

__all__ = ["DEFAULT_SPECS", "InputSpec", "ProxyBatch", "default_spec"]

_KEY = re.compile(r"gaussian:b(\d+):r(\d+):c(\d+):l(\d+):s(\d+)")


@dataclass(frozen=True)
class InputSpec:
    """What a proxy's input batch and network initialisation are made of (see the module docstring)."""

    batch_size: int
    resolution: int
    num_classes: int
    label_classes: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 2 or self.resolution < 1 or self.num_classes < 1 or self.seed < 0:
            raise ValueError(f"input spec {self}: needs batch_size >= 2, resolution >= 1, num_classes >= 1, seed >= 0")
        if not 1 <= self.label_classes <= min(self.num_classes, self.batch_size):
            raise ValueError(
                f"input spec {self}: label_classes must be between 1 and min(num_classes, batch_size)"
            )

    @property
    def key(self) -> str:
        """The spec as one string (the ``input_spec`` column): ``gaussian:b<batch>:r<res>:c<classes>:l<labels>:s<seed>``."""
        return (
            f"gaussian:b{self.batch_size}:r{self.resolution}:c{self.num_classes}:"
            f"l{self.label_classes}:s{self.seed}"
        )

    @classmethod
    def from_key(cls, key: str) -> "InputSpec":
        """The spec a :attr:`key` string names; ``ValueError`` for any other string.

        Example:
            >>> InputSpec.from_key("gaussian:b8:r32:c100:l4:s1").resolution
            32
        """
        match = _KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"input spec {key!r}: expected gaussian:b<batch>:r<res>:c<classes>:l<labels>:s<seed>")
        batch, resolution, classes, labels, seed = (int(group) for group in match.groups())
        return cls(batch, resolution, classes, labels, seed)

    def make_batch(self) -> "ProxyBatch":
        """The batch of this spec: the same tensors in every process (CPU generator, float32)."""
        generator = torch.Generator().manual_seed(self.seed)
        inputs = torch.randn(
            (self.batch_size, 3, self.resolution, self.resolution), generator=generator, dtype=torch.float32
        )
        labels = torch.arange(self.batch_size, dtype=torch.int64) % self.label_classes
        return ProxyBatch(inputs=inputs, labels=labels, spec=self)


@dataclass(frozen=True)
class ProxyBatch:
    """One fixed mini-batch: images ``[B, 3, R, R]``, integer labels ``[B]`` and the spec they came from."""

    inputs: torch.Tensor
    labels: torch.Tensor
    spec: InputSpec


#: Per space: small inputs keep 1,000 NB201 archs within minutes on a 2-core CPU
#: (NB201 and FBNet end in global pooling, so the resolution changes cost, not structure).
DEFAULT_SPECS: dict[str, InputSpec] = {
    "nasbench201": InputSpec(batch_size=16, resolution=16, num_classes=10, label_classes=4),
    "fbnet": InputSpec(batch_size=16, resolution=32, num_classes=100, label_classes=4),
    "ofa": InputSpec(batch_size=8, resolution=64, num_classes=1000, label_classes=2),
}


def default_spec(space: str) -> InputSpec:
    """The input spec ``farm encode`` uses for ``space``; ``KeyError`` naming the known spaces otherwise."""
    if space not in DEFAULT_SPECS:
        raise KeyError(f"no proxy input spec for space {space!r}; known: {', '.join(DEFAULT_SPECS)}")
    return DEFAULT_SPECS[space]
