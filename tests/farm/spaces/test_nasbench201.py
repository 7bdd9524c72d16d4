"""NAS-Bench-201: strings, official order, builder vs xautodl, encodings, FLOPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch.utils.flop_counter import FlopCounterMode

from farm.spaces import ArchError, get
from farm.spaces.counting import count
from farm.spaces.nasbench201 import EDGES, GRAPH_OPS, OPS

SPACE = get("nasbench201")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ONE_CONV3 = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"


def uniform_arch(op: str) -> str:
    return SPACE.format([op] * len(EDGES))


def test_every_official_string_round_trips() -> None:
    archs = list(SPACE.enumerate())
    assert len(archs) == len(set(archs)) == 15625
    assert all(SPACE.format(SPACE.parse(a)) == a for a in archs)
    assert all(SPACE.arch(SPACE.index(a)) == a for a in archs[::97])


def test_enumeration_order_equals_the_public_table(help_latencies) -> None:
    table = help_latencies("nasbench201", "raspi4")
    assert table["arch_index"].tolist() == list(range(15625))
    assert table["arch"].tolist() == list(SPACE.enumerate())


def test_sample_is_deterministic_distinct_and_valid() -> None:
    first, again, other = SPACE.sample(50, seed=3), SPACE.sample(50, seed=3), SPACE.sample(50, seed=4)
    assert first == again and first != other
    assert len(set(first)) == 50
    assert all(SPACE.canonical(a) == a for a in first)
    with pytest.raises(ValueError):
        SPACE.sample(15626)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", r"edge 0 \(node 1 <- node 0\): 'conv' is not one of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"),
        ("|none~0|+|none~0|none~1|+|none~0|max_pool_3x3~1|none~2|", r"edge 4 \(node 3 <- node 1\): 'max_pool_3x3' is not one of"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", r"edge 2 \(node 2 <- node 1\): 'none~2' must be 'op~1'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", r"node 2 needs 2 inputs"),
        ("|none~0|+|none~0|none~1|", r"expected 3 nodes"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", r"node 1 'none~0\|' must look like"),
    ],
)
def test_malformed_strings_name_the_position_and_allowed_values(arch: str, expected: str) -> None:
    with pytest.raises(ArchError, match=expected):
        SPACE.parse(arch)


def test_parsed_archs_are_validated_too() -> None:
    with pytest.raises(ArchError, match="edge 5 .*'conv' is not one of"):
        SPACE.onehot(["none"] * 5 + ["conv"])
    with pytest.raises(ArchError, match="needs 6 ops"):
        SPACE.flops(["none"] * 3)


@pytest.mark.parametrize("op", OPS)
def test_every_op_builds_and_runs(op: str) -> None:
    model = SPACE.build(uniform_arch(op))
    assert not model.training
    logits = model(torch.randn(SPACE.input_shape(uniform_arch(op), batch_size=2, input_size=8)))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_dead_cells_build_run_and_output_only_the_classifier_bias() -> None:
    dead = [a for a in SPACE.enumerate() if not SPACE.graph(a)[0][:, 7][:7].any()]
    assert len(dead) == 341  # cells with no input-to-output path
    for arch in (dead[0], ALL_NONE, "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"):
        model = SPACE.build(arch)
        logits = model(torch.randn(2, 3, 16, 16))
        # the last stage's cells output zeros, BN (fresh stats) and ReLU keep them zero
        assert torch.equal(logits, model.classifier.bias.expand(2, -1))


def test_builder_matches_xautodl(monkeypatch) -> None:
    from xautodl.models import get_cell_based_tiny_net
    from xautodl.models.cell_searchs.genotypes import Structure

    for arch in [*SPACE.sample(4, seed=7), ALL_NONE, uniform_arch("nor_conv_3x3")]:
        config = {"name": "infer.tiny", "C": 16, "N": 5, "genotype": Structure.str2structure(arch), "num_classes": 10}
        reference = get_cell_based_tiny_net(config).eval()
        ours = SPACE.build(arch)
        assert SPACE.params(arch) == sum(p.numel() for p in reference.parameters())
        ours.load_state_dict(reference.state_dict())  # same module tree, names and shapes
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(ours(x), reference(x)[1])


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_freeze_matches_eager() -> None:
    arch = SPACE.arch(1462)
    model = SPACE.build(arch)
    frozen = torch.jit.freeze(torch.jit.script(model))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(frozen(x), model(x), rtol=1e-4, atol=1e-5)


def test_graph_shapes_and_brpnas_detaching() -> None:
    arch = SPACE.arch(0)  # |avg~0|+|c1~0|skip~1|+|c1~0|skip~1|skip~2|
    adjacency, ops = SPACE.graph(arch)
    assert adjacency.shape == (9, 9) and ops.shape == (9,)
    assert [GRAPH_OPS[i] for i in ops] == ["input", "avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "skip_connect", "output", "global"]
    assert adjacency[:8, 8].all() and not adjacency[8].any() and not np.diag(adjacency).any()
    # skips bypassed: avg (node 1) feeds the output directly; conv1x1 on 2<-0 feeds the output via skip 3<-2
    edges = {(int(a), int(b)) for a, b in zip(*np.nonzero(adjacency[:8, :8]))}
    assert edges == {(0, 1), (0, 2), (0, 4), (1, 7), (2, 7), (4, 7)}
    batch_adjacency, batch_ops = SPACE.graphs([arch, ALL_NONE])
    assert batch_adjacency.shape == (2, 9, 9) and batch_ops.shape == (2, 9) and (batch_adjacency[0] == adjacency).all()
    plain, _ = SPACE.graph(arch, detach=False)
    assert (0, 1) in {(int(a), int(b)) for a, b in zip(*np.nonzero(plain))} and plain[1, 3] == 1 and plain[2, 7] == 0
    # a conv whose node feeds only 'none' edges dangles and is detached
    dangling, _ = SPACE.graph("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert not dangling[1, :8].any() and not dangling[:8, 1].any() and dangling[0, 4] and dangling[4, 7]


def test_onehot() -> None:
    vector = SPACE.onehot(ONE_CONV3)
    assert vector.shape == (30,) and vector.dtype == np.float32 and vector.sum() == 6
    assert vector.reshape(6, 5)[3, OPS.index("nor_conv_3x3")] == 1


def test_flops_and_params_of_hand_checked_archs() -> None:
    def conv(c_in: int, c_out: int, k: int, hw: int) -> int:
        return c_in * c_out * k * k * hw * hw

    # all-'none' cells: stem, two residual reduction blocks, classifier
    reductions = [conv(c, 2 * c, 3, hw) + conv(2 * c, 2 * c, 3, hw) + conv(c, 2 * c, 1, hw) for c, hw in ((16, 16), (32, 8))]
    skeleton_macs = conv(3, 16, 3, 32) + sum(reductions) + 64 * 10
    assert SPACE.flops(ALL_NONE) == skeleton_macs == 7_783_040
    skeleton_params = (
        3 * 16 * 9 + 2 * 16  # stem conv + BN
        + sum(c * 2 * c * 9 + 2 * 2 * c + 2 * c * 2 * c * 9 + 2 * 2 * c + c * 2 * c for c in (16, 32))
        + 2 * 64 + 64 * 10 + 10  # last BN, classifier
    )
    assert SPACE.params(ALL_NONE) == skeleton_params == 73_306
    # one 3x3 conv edge per cell: 5 cells per stage, C^2*9 per pixel, stages 16@32, 32@16, 64@8
    assert SPACE.flops(ONE_CONV3) - skeleton_macs == 5 * sum(conv(c, c, 3, hw) for c, hw in ((16, 32), (32, 16), (64, 8)))
    assert SPACE.params(ONE_CONV3) - skeleton_params == 5 * sum(c * c * 9 + 2 * c for c in (16, 32, 64))


def test_flops_equal_independent_counts_of_the_built_model() -> None:
    for arch in [*SPACE.sample(3, seed=11), ALL_NONE]:
        with torch.device("meta"):
            model = SPACE.build(arch)
        for size in (32, 16):
            with FlopCounterMode(display=False) as counter, torch.device("meta"):
                model(torch.empty(1, 3, size, size))
            assert SPACE.flops(arch, input_size=size) == counter.get_total_flops() // 2
            assert SPACE.cost(arch, size) == count(model, (1, 3, size, size))


def test_flops_rank_like_raspi4_latency(help_latencies, capsys) -> None:
    table = help_latencies("nasbench201", "raspi4").sample(500, random_state=0)
    rho = spearmanr([SPACE.flops(a) for a in table["arch"]], table["latency_ms"]).statistic
    with capsys.disabled():
        print(f"\n[spaces] Spearman(flops, raspi4 latency), NB201, 500 sampled archs: {rho:.3f}")
    assert rho > 0.5  # a sanity floor only: the figure is printed, the issue sets no target for NB201
