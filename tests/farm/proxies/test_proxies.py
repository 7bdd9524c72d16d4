"""The 13 zero-cost proxies on a real NAS-Bench-201 network: finite, deterministic, independent of each other,
and equal to the paper definitions recomputed here by other means (NumPy's corrcoef, plain autograd, Hamming distances)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from farm import spaces
from farm.proxies import NAMES, parse_names, score_fn
from farm.proxies.compute import build_model, deterministic_torch, score_arch
from farm.proxies.context import ProxyContext
from farm.proxies.examples import tiny_context
from farm.proxies.inputs import InputSpec
from farm.proxies.layers import weight_layers

SPACE = "nasbench201"
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
#: Small enough for a quick test, with two samples in each of four classes (EPE-NAS needs two).
SPEC = InputSpec(batch_size=8, resolution=8, num_classes=10, label_classes=4)


@pytest.fixture(scope="module")
def all_outcomes() -> dict[str, float]:
    outcomes = score_arch(SPACE, ARCH, NAMES, SPEC)
    assert [o.proxy for o in outcomes] == list(NAMES)
    assert all(o.status == "ok" for o in outcomes), [o for o in outcomes if o.status != "ok"]
    return {o.proxy: o.value for o in outcomes}


@pytest.fixture()
def context() -> ProxyContext:
    return ProxyContext(build_model(SPACE, ARCH, SPEC), SPEC.make_batch())


def test_there_are_the_thirteen_proxies_of_nas_bench_suite_zero() -> None:
    expected = "epe_nas fisher flops grad_norm grasp jacov l2_norm nwot params plain snip synflow zen".split()
    assert list(NAMES) == expected


@pytest.mark.parametrize("proxy", NAMES)
def test_each_proxy_is_finite_deterministic_and_independent_of_the_others(proxy: str, all_outcomes: dict[str, float]) -> None:
    alone_first = score_arch(SPACE, ARCH, (proxy,), SPEC)[0]
    alone_again = score_arch(SPACE, ARCH, (proxy,), SPEC)[0]
    assert alone_first.status == "ok" and math.isfinite(alone_first.value)
    assert alone_first.value == alone_again.value == all_outcomes[proxy]


def test_values_depend_on_the_arch_and_on_the_seed(all_outcomes: dict[str, float]) -> None:
    other_arch = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|skip_connect~2|"
    other = {o.proxy: o.value for o in score_arch(SPACE, other_arch, NAMES, SPEC)}
    reseeded = {o.proxy: o.value for o in score_arch(SPACE, ARCH, NAMES, InputSpec(8, 8, 10, 4, seed=1))}
    assert sum(other[p] != all_outcomes[p] for p in NAMES) >= 11  # two archs can share params/flops only
    structural = {"params", "flops"}
    assert all(reseeded[p] != all_outcomes[p] for p in NAMES if p not in structural)
    assert all(reseeded[p] == all_outcomes[p] for p in structural)


def test_params_and_flops_agree_with_the_space_s_own_counts(all_outcomes: dict[str, float]) -> None:
    space = spaces.get(SPACE)
    assert all_outcomes["params"] == space.params(ARCH)
    assert all_outcomes["flops"] == space.flops(ARCH, input_size=SPEC.resolution)


def test_gradient_saliencies_match_plain_autograd(context: ProxyContext, all_outcomes: dict[str, float]) -> None:
    with deterministic_torch():
        model = context.fresh_model().train()
        layers = weight_layers(model)
        loss = F.cross_entropy(model(context.batch.inputs), context.batch.labels)
        grads = torch.autograd.grad(loss, [layer.weight for layer in layers])
    weights = [layer.weight.detach().double() for layer in layers]
    snip = sum(float((g.double() * w).abs().sum()) for g, w in zip(grads, weights))
    plain = sum(float((g.double() * w).sum()) for g, w in zip(grads, weights))
    grad_norm = sum(float(g.double().norm()) for g in grads)
    l2_norm = sum(float(w.norm()) for w in weights)
    assert all_outcomes["snip"] == pytest.approx(snip, rel=1e-5)
    assert all_outcomes["plain"] == pytest.approx(plain, rel=1e-4, abs=1e-6)
    assert all_outcomes["grad_norm"] == pytest.approx(grad_norm, rel=1e-5)
    assert all_outcomes["l2_norm"] == pytest.approx(l2_norm, rel=1e-12)
    assert all_outcomes["snip"] >= abs(all_outcomes["plain"])
    assert all_outcomes["fisher"] >= 0 and all_outcomes["synflow"] > 0


def test_jacobian_scores_match_numpy_corrcoef_and_hamming_distances(context: ProxyContext, all_outcomes: dict[str, float]) -> None:
    with deterministic_torch():
        passed = context.gradients()
    eigenvalues = np.clip(np.linalg.eigvalsh(np.corrcoef(passed.jacobian)), 0, None)
    jacov = -np.sum(np.log(eigenvalues + 1e-5) + 1 / (eigenvalues + 1e-5))
    assert all_outcomes["jacov"] == pytest.approx(jacov, rel=1e-6)

    codes = passed.codes.astype(int)
    units = codes.shape[1]
    hamming = np.array([[np.sum(a != b) for b in codes] for a in codes])
    nwot = np.linalg.slogdet((units - hamming).astype(float))[1]
    assert all_outcomes["nwot"] == pytest.approx(nwot, rel=1e-9)
    assert all_outcomes["nwot"] <= SPEC.batch_size * math.log(units)  # Hadamard: det K <= prod K_ii = N_A^B

    labels = context.batch.labels.numpy()
    energies = [np.log(np.abs(np.corrcoef(passed.jacobian[labels == c])) + 1e-5).sum() for c in np.unique(labels)]
    epe = sum(abs(a - b) for a in energies for b in energies) / len(energies)
    assert all_outcomes["epe_nas"] == pytest.approx(epe, rel=1e-6)


def test_grasp_is_minus_theta_times_the_hessian_gradient_product_on_a_tiny_network() -> None:
    context = tiny_context("mlp")
    model = context.fresh_model().train()
    weights = [layer.weight for layer in weight_layers(model)]

    def loss_of(*flat: torch.Tensor) -> torch.Tensor:
        x = context.batch.inputs.flatten(1)
        hidden = torch.relu(x @ flat[0].T + model[1].bias)
        return F.cross_entropy(hidden @ flat[1].T + model[3].bias, context.batch.labels)

    gradient = torch.autograd.grad(loss_of(*weights), weights)
    _, hessian_vector = torch.autograd.functional.hvp(loss_of, tuple(w.detach() for w in weights), gradient)
    expected = -sum(float((w.detach().double() * hv.double()).sum()) for w, hv in zip(weights, hessian_vector))
    assert score_fn("grasp")(tiny_context("mlp")) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_zen_uses_the_pre_pooling_features_and_batch_norm_scales() -> None:
    first, second = tiny_context("conv"), tiny_context("conv", seed=3)
    value = score_fn("zen")(first)
    assert math.isfinite(value) and value != score_fn("zen")(second)
    assert score_fn("zen")(first) == value  # the re-initialisation happens on the reset network, not the pristine one


def test_a_proxy_that_has_no_value_for_an_arch_is_recorded_undefined_not_raised() -> None:
    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # the output ignores the input
    outcomes = {o.proxy: o for o in score_arch(SPACE, dead, NAMES, SPEC)}
    undefined = {name for name, o in outcomes.items() if o.status == "undefined"}
    assert undefined == {"epe_nas", "jacov", "nwot", "zen"}
    assert all(outcomes[name].value is None and name in outcomes[name].error for name in undefined)
    assert all(o.status == "ok" for name, o in outcomes.items() if name not in undefined)


def test_an_arch_that_does_not_build_fails_every_proxy_with_the_reason() -> None:
    outcomes = score_arch(SPACE, "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", ("snip", "params"), SPEC)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert all("building the network: ArchError" in o.error and "conv_9x9" in o.error for o in outcomes)


def test_deterministic_torch_restores_the_caller_s_settings() -> None:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with deterministic_torch():
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)


def test_proxy_names_are_parsed_and_unknown_ones_named() -> None:
    assert parse_names(None) == NAMES and parse_names(" zen,snip ,zen") == ("snip", "zen")
    with pytest.raises(ValueError, match="unknown proxy 'snipp'"):
        parse_names("snipp")


def test_grasp_fails_typed_where_pytorch_has_no_second_derivative_and_the_rest_still_compute() -> None:
    arch = spaces.get("ofa").sample(1, seed=0)[0]  # MobileNetV3: hard-sigmoid in the squeeze-excite blocks
    spec = InputSpec(batch_size=4, resolution=32, num_classes=10, label_classes=2)
    outcomes = {o.proxy: o for o in score_arch("ofa", arch, NAMES, spec)}
    assert outcomes["grasp"].status == "failed" and "ProxyFailed" in outcomes["grasp"].error
    assert "hardsigmoid" in outcomes["grasp"].error
    assert all(o.status == "ok" and math.isfinite(o.value) for name, o in outcomes.items() if name != "grasp")
