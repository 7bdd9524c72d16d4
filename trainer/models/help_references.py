"""HELP's reference architectures: the 10 archs whose latencies on a device are its hardware embedding.

Lee, Lee, Chong, Hwang, "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021. The indices are those of HELP's ``data/<space>/hardware_embedding_index.pt``
(in that order); the strings are the archs at those indices in ``data/help_latency.parquet``
(``data/README.md``, "Reference architectures").

Example:
    >>> len(reference_archs("nasbench201")), reference_indices("fbnet")[0]
    (10, 3328)
"""

from __future__ import annotations

from farm.errors import UserError

__all__ = ["REFERENCE_ARCHS", "reference_archs", "reference_indices"]

_INDICES: dict[str, tuple[int, ...]] = {
    "nasbench201": (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462),
    "fbnet": (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100),
    "ofa": (1316, 1587, 1621, 1636, 1980, 2329, 2487, 3355, 3740, 4948),
}

#: Space -> the 10 reference archs, in HELP's order.
REFERENCE_ARCHS: dict[str, tuple[str, ...]] = {
    "nasbench201": (
        '|avg_pool_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|',
        '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|',
        '|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|',
        '|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|',
        '|none~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_1x1~2|',
        '|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|',
        '|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|',
        '|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|',
        '|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|',
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|',
    ),
    "fbnet": (
        'k3_e1_g2-skip-k5_e3-k5_e3-skip-k3_e1-k3_e6-k5_e1-k3_e6-k5_e6-skip-k5_e6-k5_e1-k3_e6-k3_e3-k5_e1_g2-k5_e6-k3_e6-k3_e1-k3_e1_g2-k3_e6-k5_e6',
        'k5_e1_g2-k5_e1-skip-k5_e1_g2-k3_e1_g2-k5_e3-skip-k5_e1_g2-k3_e6-k3_e1-k5_e1-skip-k3_e1-k3_e3-k5_e1-k5_e1_g2-k3_e1-k5_e3-k5_e3-k3_e1-k3_e1-k5_e1_g2',
        'k5_e6-k3_e3-k5_e6-k5_e1_g2-k5_e1-k5_e3-skip-k3_e1-k5_e3-k5_e3-k5_e1_g2-k3_e1_g2-k3_e3-k5_e1-k3_e1-k5_e6-k5_e1_g2-k5_e3-k3_e1-k3_e6-k3_e6-k3_e3',
        'skip-k3_e1_g2-k5_e3-k3_e1_g2-k5_e3-k3_e3-k5_e6-k3_e1_g2-k5_e3-skip-k5_e6-k5_e1_g2-k3_e3-k3_e1-k3_e1_g2-skip-k3_e1-k3_e6-k3_e3-k3_e3-k5_e1_g2-k5_e1',
        'k3_e1_g2-k5_e6-k3_e1-k5_e6-k5_e1-k3_e6-k5_e1-k5_e3-k5_e3-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1_g2-k5_e3-k5_e6-k5_e6-k5_e3-k5_e6-k5_e3-k3_e6-k3_e1_g2-k3_e3',
        'k3_e3-k3_e3-k5_e1-k5_e1_g2-k5_e6-k3_e3-k5_e1_g2-k5_e6-k3_e3-k3_e3-k3_e1_g2-k3_e3-k3_e6-k3_e1_g2-k5_e1-k5_e3-k3_e6-k5_e3-k3_e6-k3_e3-k3_e1-k3_e1_g2',
        'k5_e1-k5_e1-k5_e1_g2-k5_e1_g2-k3_e6-k3_e1_g2-k3_e1_g2-k3_e1-k5_e1-k3_e3-k3_e3-k5_e1-k3_e3-k3_e1-k5_e1_g2-k3_e1-k5_e1_g2-k5_e3-k3_e3-k5_e1_g2-k3_e3-k5_e1_g2',
        'skip-skip-k5_e1-k5_e1-k5_e3-skip-k3_e1_g2-skip-k3_e1-k3_e6-k3_e1_g2-k3_e3-skip-skip-k5_e1_g2-skip-k3_e3-k3_e3-skip-k3_e1_g2-k5_e1-skip',
        'k3_e1-k5_e6-k5_e3-k5_e6-k3_e6-k3_e6-k5_e3-k3_e1_g2-k5_e6-k5_e1-k3_e6-k5_e6-k5_e6-k3_e1-skip-k5_e1-skip-k5_e1_g2-k5_e3-skip-k5_e1_g2-k3_e1_g2',
        'k3_e1_g2-k3_e3-k5_e1-k3_e1-k5_e6-k3_e6-k3_e1-k5_e1_g2-k5_e3-k5_e1-k5_e1_g2-k5_e6-k3_e1-k3_e1_g2-k5_e1-k3_e6-k3_e3-k3_e6-k3_e6-k3_e6-k3_e1-k5_e3',
    ),
    "ofa": (
        '{"ks":[7,7,5,5,7,7,3,5,7,7,5,7,3,5,3,3,3,5,5,7],"e":[3,6,3,6,6,4,3,6,4,6,6,3,3,4,4,3,3,3,3,4],"d":[4,3,3,4,2],"r":196}',
        '{"ks":[7,3,3,7,5,3,7,3,5,7,7,7,3,7,5,5,3,5,7,7],"e":[4,3,6,6,6,6,4,3,3,6,3,4,6,3,3,4,6,3,4,3],"d":[3,2,2,3,2],"r":172}',
        '{"ks":[7,5,7,3,3,3,7,3,7,7,5,7,5,5,7,7,7,7,7,3],"e":[4,4,6,6,4,4,4,6,6,3,6,6,3,6,3,3,3,6,4,6],"d":[2,2,2,2,3],"r":204}',
        '{"ks":[3,7,5,7,3,3,5,7,3,3,5,3,7,5,3,7,7,5,5,3],"e":[4,3,3,6,3,3,4,4,6,6,4,6,3,6,6,6,4,4,4,6],"d":[4,3,4,4,4],"r":200}',
        '{"ks":[5,7,3,5,7,7,3,7,7,3,7,7,7,7,7,3,7,7,5,5],"e":[4,6,6,3,4,6,6,6,4,3,3,3,6,4,4,3,4,6,4,4],"d":[2,2,2,3,2],"r":136}',
        '{"ks":[7,7,5,7,3,7,3,5,3,7,7,5,3,3,7,7,3,5,7,7],"e":[6,4,3,6,6,6,6,3,6,4,6,6,6,6,4,3,4,6,6,3],"d":[4,2,3,4,4],"r":224}',
        '{"ks":[5,5,7,3,3,3,3,7,7,3,3,5,7,3,3,7,3,3,3,5],"e":[6,3,4,4,3,3,3,6,3,3,4,4,3,3,6,4,3,6,6,3],"d":[4,2,4,2,3],"r":132}',
        '{"ks":[7,3,7,3,3,7,5,7,7,3,3,3,3,3,3,7,7,7,3,7],"e":[3,6,6,4,6,4,3,4,6,4,4,3,6,3,4,3,4,3,3,6],"d":[2,4,2,4,4],"r":152}',
        '{"ks":[7,3,3,5,3,7,3,5,5,5,5,3,5,5,3,5,5,5,3,7],"e":[4,4,4,6,6,3,6,4,4,4,4,4,3,4,6,4,6,3,3,3],"d":[2,4,3,4,4],"r":152}',
        '{"ks":[3,3,7,7,7,7,7,7,5,7,3,7,3,5,5,3,3,7,3,5],"e":[3,3,4,6,6,6,4,3,6,3,3,3,3,3,6,3,6,6,6,3],"d":[4,4,3,4,2],"r":200}',
    ),
}


def reference_archs(space: str) -> tuple[str, ...]:
    """The 10 reference archs of ``space``; :class:`UserError` for a space HELP gives none for."""
    try:
        return REFERENCE_ARCHS[space]
    except KeyError:
        raise UserError(f"help: no reference architectures for space {space!r}; HELP defines them for "
                        f"{', '.join(REFERENCE_ARCHS)}") from None


def reference_indices(space: str) -> tuple[int, ...]:
    """HELP's indices of the reference archs (positions in its per-device latency lists)."""
    reference_archs(space)
    return _INDICES[space]
