"""OFA MobileNetV3 w1.2: JSON strings, builder vs the ``ofa`` package, encodings, FLOPs, latency ranking.

The ``ofa`` package imports torchvision (absent here, and not a dependency of
this project) only in ``ofa.utils.my_dataloader``; the reference test replaces
that one module with an empty stub in ``sys.modules`` before importing ofa.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from farm.spaces import ArchError, get
from farm.spaces.counting import count
from farm.spaces.ofa import BLOCK_OPS, GRAPH_OPS, OFAArch

SPACE = get("ofa")
SMALLEST = OFAArch(ks=(3,) * 20, e=(3,) * 20, d=(2,) * 5, r=128)


def with_slot(arch: OFAArch, key: str, index: int, value: int) -> str:
    obj = arch.to_json()
    obj[key][index] = value
    return json.dumps(obj, separators=(",", ":"))


def test_table_strings_round_trip_and_sampling(help_latencies) -> None:
    archs = help_latencies("ofa", "titan_rtx_64")["arch"].tolist()
    assert len(set(archs)) == 5000 and all(SPACE.format(SPACE.parse(a)) == a for a in archs)
    sample = SPACE.sample(100, seed=2)
    assert sample == SPACE.sample(100, seed=2) != SPACE.sample(100, seed=3) and len(set(sample)) == 100
    assert SPACE.canonical(json.dumps(json.loads(sample[0]), indent=2)) == sample[0]
    assert SPACE.format(json.loads(sample[0])) == sample[0]


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        (with_slot(SMALLEST, "ks", 7, 4), r"ks\[7\]: 4 is not one of 3, 5, 7"),
        (with_slot(SMALLEST, "e", 19, 5), r"e\[19\]: 5 is not one of 3, 4, 6"),
        (with_slot(SMALLEST, "d", 2, 1), r"d\[2\]: 1 is not one of 2, 3, 4"),
        (SPACE.format(SMALLEST).replace('"r":128', '"r":130'), r"r: 130 is not one of 128, 132, ..., 224"),
        ('{"ks":[3],"e":[3],"d":[2],"r":128}', r"'ks' must be a list of 20 values"),
        ('{"ks":[],"e":[]}', r"missing \['d', 'r'\]"),
        ("ks=3", r"not JSON"),
    ],
)
def test_malformed_archs_name_the_position_and_allowed_values(arch: str, expected: str) -> None:
    with pytest.raises(ArchError, match=expected):
        SPACE.parse(arch)


def test_inactive_slots_are_ignored() -> None:
    changed = with_slot(SMALLEST, "ks", 3, 7)  # stage 0, block 3: beyond depth 2
    assert changed != SPACE.format(SMALLEST)
    assert SPACE.flops(changed) == SPACE.flops(SMALLEST) and SPACE.params(changed) == SPACE.params(SMALLEST)
    assert np.array_equal(SPACE.onehot(changed), SPACE.onehot(SMALLEST))
    assert all(np.array_equal(a, b) for a, b in zip(SPACE.graph(changed), SPACE.graph(SMALLEST)))
    assert len(SPACE.build(changed).blocks) == 1 + 10


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_every_block_builds_and_runs(kernel: int) -> None:
    # all 9 (kernel, expand) pairs appear across the test's three archs, in every stage, first and later slots
    expands = [3, 4, 6] * 7
    arch = OFAArch(ks=(kernel,) * 20, e=tuple(expands[:20]), d=(4,) * 5, r=128)
    model = SPACE.build(arch)
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 1000) and torch.isfinite(logits).all() and not model.training


@pytest.fixture(scope="module")
def ofa_supernet():
    sys.modules.setdefault("ofa.utils.my_dataloader", types.ModuleType("ofa.utils.my_dataloader"))
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    return OFAMobileNetV3(dropout_rate=0, width_mult=1.2, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])


def test_builder_matches_the_ofa_package(ofa_supernet) -> None:
    for arch in [*SPACE.sample(2, seed=4), SPACE.format(SMALLEST)]:
        parsed = SPACE.parse(arch)
        ofa_supernet.set_active_subnet(ks=list(parsed.ks), e=list(parsed.e), d=list(parsed.d))
        reference = ofa_supernet.get_active_subnet(preserve_weight=True).eval()
        ours = SPACE.build(arch)
        assert SPACE.params(arch) == sum(p.numel() for p in reference.parameters())
        ours.load_state_dict(reference.state_dict())  # same module tree, names and shapes
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_freeze_matches_eager() -> None:
    model = SPACE.build(SPACE.sample(1, seed=8)[0])
    frozen = torch.jit.freeze(torch.jit.script(model))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(frozen(x), model(x), rtol=1e-4, atol=1e-4)


def test_graph_and_onehot() -> None:
    arch = SPACE.parse(SPACE.sample(1, seed=6)[0])
    adjacency, ops = SPACE.graph(arch)
    assert adjacency.shape == (23, 23) and ops.shape == (23,)
    active = arch.active()
    names = [GRAPH_OPS[i] for i in ops[1:21]]
    assert names == [f"k{k}_e{e}" if on else "inactive" for k, e, on in zip(arch.ks, arch.e, active)]
    assert adjacency[:22, 22].all() and adjacency[:22, :22].sum() == sum(active) + 1
    vector = SPACE.onehot(arch)
    assert vector.shape == (145,) and vector.sum() == 2 * sum(active) + 1
    assert len(BLOCK_OPS) == 9


def test_flops_and_params_of_the_smallest_arch_by_hand() -> None:
    def conv(c_in: int, c_out: int, k: int, hw: int, groups: int = 1, bn: bool = True, bias: bool = False) -> tuple[int, int]:
        weights = c_out * (c_in // groups) * k * k
        return weights * hw * hw, weights + 2 * c_out * bn + c_out * bias

    def mbconv(c_in: int, c_out: int, hw_in: int, hw_out: int, se: bool) -> list[tuple[int, int]]:
        mid = 3 * c_in  # every width here is a multiple of 8, so MobileNet's rounding keeps 3 * c_in
        layers = [conv(c_in, mid, 1, hw_in), conv(mid, mid, 3, hw_out, groups=mid), conv(mid, c_out, 1, hw_out)]
        if se:
            se_mid = (mid // 4 + 4) // 8 * 8  # nearest multiple of 8 (102 -> 104 in the last stage)
            layers += [conv(mid, se_mid, 1, 1, bn=False, bias=True), conv(se_mid, mid, 1, 1, bn=False, bias=True)]
        return layers

    # r=128: stem 64x64; stages at 32, 16, 8, 8, 4; widths 24 | 32 48 96 136 192 | 1152 1536
    layers = [conv(3, 24, 3, 64), conv(24, 24, 3, 64, groups=24), conv(24, 24, 1, 64)]
    for c_in, c_out, hw_in, hw_out, se in ((24, 32, 64, 32, False), (32, 48, 32, 16, True), (48, 96, 16, 8, False), (96, 136, 8, 8, True), (136, 192, 8, 4, True)):
        layers += mbconv(c_in, c_out, hw_in, hw_out, se) + mbconv(c_out, c_out, hw_out, hw_out, se)
    layers += [conv(192, 1152, 1, 4), conv(1152, 1536, 1, 1, bn=False), (1536 * 1000, 1536 * 1000 + 1000)]
    assert SPACE.flops(SMALLEST) == sum(m for m, _ in layers)
    assert SPACE.params(SMALLEST) == sum(p for _, p in layers)


def test_flops_and_params_equal_counts_on_the_built_model() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    for arch in SPACE.sample(2, seed=21):
        with torch.device("meta"):
            model = SPACE.build(arch)
        for size in (SPACE.parse(arch).r, 130):  # 130: odd sizes inside, ceil-halving
            hooks = count(model, (1, 3, size, size))
            with FlopCounterMode(display=False) as counter, torch.device("meta"):
                model(torch.empty(1, 3, size, size))
            assert SPACE.cost(arch, size) == hooks
            assert SPACE.flops(arch, size) == counter.get_total_flops() // 2


def test_flops_rank_like_titan_rtx_64_latency(help_latencies, capsys) -> None:
    table = help_latencies("ofa", "titan_rtx_64")
    rho = spearmanr([SPACE.flops(a) for a in table["arch"]], table["latency_ms"]).statistic
    with capsys.disabled():
        print(f"\n[spaces] Spearman(flops, titan_rtx_64 latency), OFA, all 5000 archs: {rho:.3f}")
    assert rho >= 0.85
