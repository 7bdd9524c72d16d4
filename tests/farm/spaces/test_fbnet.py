"""FBNet: strings, every block builds and runs, encodings, FLOPs/params, latency ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from farm.spaces import ArchError, get
from farm.spaces.counting import count
from farm.spaces.fbnet import BLOCKS, GRAPH_OPS, POSITIONS, FBNet

SPACE = get("fbnet")
ALL_SKIP = "-".join(["skip"] * POSITIONS)


def test_strings_round_trip_and_sampling_is_deterministic(help_latencies) -> None:
    table_archs = help_latencies("fbnet", "raspi4")["arch"].tolist()
    assert len(set(table_archs)) == 5000
    assert all(SPACE.format(SPACE.parse(a)) == a for a in table_archs)
    sample = SPACE.sample(200, seed=1)
    assert sample == SPACE.sample(200, seed=1) != SPACE.sample(200, seed=2)
    assert len(set(sample)) == 200 and all(SPACE.canonical(a) == a for a in sample)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("-".join(["k3_e1"] * 7 + ["k7_e3"] + ["skip"] * 14), r"position 7: 'k7_e3' is not one of k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip"),
        ("-".join(["skip"] * 21), r"needs 22 blocks joined by '-', found 21"),
        ("-".join(["skip"] * 21 + [""]), r"position 21: '' is not one of"),
    ],
)
def test_malformed_strings_name_the_position_and_allowed_values(arch: str, expected: str) -> None:
    with pytest.raises(ArchError, match=expected):
        SPACE.parse(arch)
    with pytest.raises(ArchError, match=expected):
        SPACE.flops(arch)


@pytest.mark.parametrize("block", BLOCKS)
def test_every_block_builds_and_runs_at_every_kind_of_position(block: str) -> None:
    arch = "-".join([block] * POSITIONS)  # covers stride 1 / 2 and channel-changing positions
    model = SPACE.build(arch)
    logits = model(torch.randn(2, 3, 8, 8))
    assert logits.shape == (2, 100) and torch.isfinite(logits).all() and not model.training


def test_imagenet_setting() -> None:
    space = FBNet("imagenet")
    arch = SPACE.sample(1, seed=5)[0]
    assert space.input_shape(arch) == (1, 3, 224, 224)
    assert space.build(arch)(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    # stem stride 2 and one more stride-2 stage: 16x fewer pixels than the CIFAR layout at the same input
    assert space.flops(arch, 64) < SPACE.flops(arch, 64)
    with pytest.raises(ValueError, match="known: cifar100, imagenet"):
        FBNet("cifar10")


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_freeze_matches_eager() -> None:
    blocks = list(SPACE.parse(SPACE.sample(1, seed=9)[0]))
    blocks[2], blocks[10] = "k3_e1_g2", "k5_e1_g2"  # channel shuffles must script too
    model = SPACE.build(blocks)
    frozen = torch.jit.freeze(torch.jit.script(model))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(frozen(x), model(x), rtol=1e-4, atol=1e-5)


def test_graph_and_onehot() -> None:
    arch = SPACE.sample(1, seed=3)[0]
    adjacency, ops = SPACE.graph(arch)
    assert adjacency.shape == (25, 25) and ops.shape == (25,)
    assert [GRAPH_OPS[i] for i in ops[1:23]] == list(SPACE.parse(arch))
    assert all(adjacency[i, i + 1] == 1 for i in range(23)) and adjacency[:24, 24].all()
    assert adjacency.sum() == 23 + 24
    vector = SPACE.onehot(arch)
    assert vector.shape == (198,) and vector.sum() == 22
    assert np.array_equal(vector.reshape(22, 9).argmax(1), [BLOCKS.index(b) for b in SPACE.parse(arch)])
    blocks = ["skip", "k3_e1", "k3_e1_g2", "k5_e3", "k5_e6"] + ["skip"] * 17
    help_rows = SPACE.help_encoding(blocks).reshape(22, 6)
    assert help_rows.shape == (22, 6) and not help_rows[0].any() and not help_rows[5:].any()
    assert help_rows[1:5].tolist() == [[1, 0, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]]


def _conv(c_in: int, c_out: int, k: int, hw: int, groups: int = 1) -> tuple[int, int]:
    """(MACs, params) of a bias-free conv followed by BN."""
    weights = c_out * (c_in // groups) * k * k
    return weights * hw * hw, weights + 2 * c_out


def test_flops_and_params_of_hand_checked_archs() -> None:
    # all skip: only the positions that change shape hold a 1x1 conv-BN-ReLU (CIFAR strides 1,1,2,2,1,2,1)
    layers = [
        _conv(3, 16, 3, 32),  # stem
        _conv(16, 24, 1, 32), _conv(24, 32, 1, 16), _conv(32, 64, 1, 8),
        _conv(64, 112, 1, 8), _conv(112, 184, 1, 4), _conv(184, 352, 1, 4),
        _conv(352, 1504, 1, 4),  # header
        (1504 * 100, 1504 * 100 + 100),  # classifier
    ]
    assert SPACE.flops(ALL_SKIP) == sum(m for m, _ in layers) == 11_608_960
    assert SPACE.params(ALL_SKIP) == sum(p for _, p in layers)
    # position 2 (24 -> 24 channels at 32x32): k5_e1_g2 = 1x1 g2, 5x5 depthwise, 1x1 g2
    blocks = list(SPACE.parse(ALL_SKIP))
    blocks[2] = "k5_e1_g2"
    block = [_conv(24, 24, 1, 32, 2), _conv(24, 24, 5, 32, 24), _conv(24, 24, 1, 32, 2)]
    assert SPACE.flops(blocks) - SPACE.flops(ALL_SKIP) == sum(m for m, _ in block)
    assert SPACE.params(blocks) - SPACE.params(ALL_SKIP) == sum(p for _, p in block)


def test_flops_and_params_equal_counts_on_the_built_model() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    for space, arch, size in [
        (SPACE, SPACE.sample(1, seed=13)[0], 32),
        (SPACE, SPACE.sample(1, seed=14)[0], 30),  # odd sizes after stride 2
        (FBNet("imagenet"), SPACE.sample(1, seed=15)[0], 64),
    ]:
        with torch.device("meta"):
            model = space.build(arch)
            with FlopCounterMode(display=False) as counter:
                model(torch.empty(1, 3, size, size))
        assert space.cost(arch, size) == count(model, (1, 3, size, size))
        assert space.flops(arch, size) == counter.get_total_flops() // 2
        assert space.params(arch) == sum(p.numel() for p in model.parameters())


def test_flops_rank_like_raspi4_latency(help_latencies, capsys) -> None:
    table = help_latencies("fbnet", "raspi4").sample(500, random_state=0)
    rho = spearmanr([SPACE.flops(a) for a in table["arch"]], table["latency_ms"]).statistic
    with capsys.disabled():
        print(f"\n[spaces] Spearman(flops, raspi4 latency), FBNet, 500 sampled archs: {rho:.3f}")
    assert rho >= 0.9
