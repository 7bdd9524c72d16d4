"""trainer.models.stack on a slice of HELP's real NAS-Bench-201 latencies (tiny networks and epochs)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from farm import spaces
from farm.errors import UserError
from trainer import encodings
from trainer.models import get_method
from trainer.models.layerwise import LayerwiseTable
from trainer.models.stack import (
    COMPONENTS, Stack, bagged_weights, fit_op_table, geometric_blend, simplex_grid, with_pairs,
)
from tests.trainer.models.latency_slice import SOURCES, TARGET, pretrained_on_slice, transferred_on_slice

TINY = {"gcn_hidden": [16, 16], "gcn_head": [16], "batch_size": 64, "source_epochs": 8, "target_epochs": 8}


def _roundtrip(model: Stack) -> Stack:
    tensors, config = model.state()
    return Stack.from_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(config)))


def _pretrained(latency: pd.DataFrame, **hyper) -> Stack:
    return pretrained_on_slice(Stack("nasbench201", seed=0, **{**TINY, **hyper}), latency)


@pytest.fixture(scope="module")
def trained(nb201_latency: pd.DataFrame) -> Stack:
    return transferred_on_slice(_pretrained(nb201_latency), nb201_latency)


def test_registered_as_stack_with_seven_components():
    assert get_method("stack") is Stack
    assert Stack("nasbench201").config.components == COMPONENTS and len(COMPONENTS) == 7


def test_simplex_grid_covers_every_quarter_split():
    grid = simplex_grid(5, 0.25)
    assert len(grid) == 70 and len(set(grid)) == 70  # C(4 + 4, 4)
    assert all(sum(w) == pytest.approx(1.0) and all(x in (0, 0.25, 0.5, 0.75, 1.0) for x in w) for w in grid)
    assert (1.0, 0.0, 0.0, 0.0, 0.0) in grid and (0.0, 0.0, 0.0, 0.0, 1.0) in grid


def test_op_table_recovers_log_additive_latencies():
    archs = spaces.get("nasbench201").sample(120, seed=7)
    onehot = encodings.onehot("nasbench201", archs).astype("float64")
    true_log = onehot @ np.random.default_rng(0).normal(size=onehot.shape[1]) + 1.0
    table = fit_op_table(onehot, true_log, ridge=1e-6)
    np.testing.assert_allclose(onehot @ np.asarray(table["theta"]) + table["intercept"], true_log, atol=1e-4)


def test_with_pairs_appends_every_column_product_once():
    onehot = encodings.onehot("nasbench201", spaces.get("nasbench201").sample(5, seed=1)).astype("float64")
    paired = with_pairs(onehot)
    assert paired.shape == (5, 30 + 30 * 29 // 2)
    np.testing.assert_array_equal(paired[:, :30], onehot)
    assert paired[:, 30].tolist() == (onehot[:, 0] * onehot[:, 1]).tolist()
    assert paired[:, -1].tolist() == (onehot[:, 28] * onehot[:, 29]).tolist()


def test_transfer_ranks_the_targets_unseen_archs_with_weights_on_the_simplex(trained, nb201_latency):
    held_out = list(nb201_latency.index[:200])
    predicted = trained.predict(held_out, TARGET)
    assert predicted.shape == (200,) and np.isfinite(predicted).all() and (predicted > 0).all()
    assert stats.spearmanr(predicted, nb201_latency[TARGET].loc[held_out]).statistic > 0.8
    info = trained.transfer_info[TARGET]
    weights = np.array([info["stack_weights"][name] for name in COMPONENTS])
    assert weights.min() >= 0.0 and weights.sum() == pytest.approx(1.0)
    assert trained.targets() == [*SOURCES, TARGET]


def test_without_bagging_the_weights_are_the_grid_point_with_the_least_out_of_fold_error(nb201_latency):
    model = _pretrained(nb201_latency, weight_bootstraps=0, source_epochs=2)
    model.transfer(TARGET, nb201_latency[TARGET].iloc[200:220])
    info = model.transfer_info[TARGET]
    assert tuple(info["stack_weights"][name] for name in COMPONENTS) in simplex_grid(len(COMPONENTS), 0.25)
    # every single component is a grid point, so the chosen blend is never worse out of fold than the best one
    assert info["blend_cv_log_mse"] <= min(info["component_cv_log_mse"].values()) + 1e-12


def test_bagged_weights_average_the_bootstrap_arg_mins():
    grid = np.asarray(simplex_grid(2, 0.5))
    held_out = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    measured = np.array([1.0, 1.0, 0.0, 0.0])  # half the samples favour each component
    bagged = bagged_weights(grid, held_out, measured, bootstraps=200, seed=0)
    assert bagged.sum() == pytest.approx(1.0) and 0.2 < bagged[0] < 0.8
    np.testing.assert_array_equal(bagged, bagged_weights(grid, held_out, measured, bootstraps=200, seed=0))


def test_prediction_is_the_geometric_blend_of_the_components(trained, nb201_latency):
    archs = list(nb201_latency.index[:50])
    info = trained.transfer_info[TARGET]
    fitted = {**info["components"], "network": (trained.tuned[TARGET], trained.target_scalers[TARGET])}
    logs = np.stack([trained._component_log_ms(name, fitted[name], archs) for name in COMPONENTS])
    expected = geometric_blend(logs, [info["stack_weights"][name] for name in COMPONENTS])
    np.testing.assert_allclose(trained.predict(archs, TARGET), expected, rtol=1e-9)


def test_a_single_component_stack_is_that_component(nb201_latency):
    model = _pretrained(nb201_latency, components=["layerwise"], source_epochs=1)
    samples = nb201_latency[TARGET].iloc[200:220]
    model.transfer(TARGET, samples)
    archs = list(nb201_latency.index[:40])
    table = LayerwiseTable("nasbench201")
    np.testing.assert_allclose(model.predict(archs, TARGET), table.predict_with(table.fit_parameters(samples), archs))


def test_json_round_trip_predicts_identically_and_leaves_sources_alone(trained, nb201_latency):
    archs = list(nb201_latency.index[:60])
    loaded = _roundtrip(trained)
    np.testing.assert_array_equal(loaded.predict(archs, TARGET), trained.predict(archs, TARGET))
    assert loaded.source_tables == trained.source_tables and loaded.source_pair_tables == trained.source_pair_tables
    assert loaded.source_ms_tables == trained.source_ms_tables
    assert len(trained.source_pair_tables) == len(trained.source_ms_tables) == len(SOURCES)
    fresh = _pretrained(nb201_latency)
    np.testing.assert_array_equal(trained.predict(archs, "pixel3"), fresh.predict(archs, "pixel3"))
    again = _roundtrip(fresh)
    again.transfer(TARGET, nb201_latency[TARGET].iloc[200:220])
    np.testing.assert_array_equal(again.predict(archs, TARGET), trained.predict(archs, TARGET))  # seeded


def test_three_samples_are_enough_for_a_leave_one_out_blend(trained, nb201_latency):
    model = _roundtrip(trained)
    model.transfer("few", nb201_latency[TARGET].iloc[200:203])
    assert np.isfinite(model.predict(list(nb201_latency.index[:20]), "few")).all()
    assert sum(model.transfer_info["few"]["stack_weights"].values()) == pytest.approx(1.0)


def test_errors_are_user_errors(trained, nb201_latency):
    with pytest.raises(UserError, match="at least 3 samples"):
        _roundtrip(trained).transfer("new", nb201_latency[TARGET].iloc[200:202])
    with pytest.raises(UserError, match="components"):
        Stack("nasbench201", components=["network", "oracle"])
    with pytest.raises(UserError, match="weight_step"):
        Stack("nasbench201", weight_step=0.3)
    with pytest.raises(UserError, match="no per-source tables"):
        bare = _roundtrip(trained)
        bare.source_tables = {}
        bare.transfer("new", nb201_latency[TARGET].iloc[200:220])


def test_on_fbnet_the_source_tables_carry_a_log_additive_target():
    space = spaces.get("fbnet")
    archs = space.sample(540, seed=11)
    onehot = encodings.onehot("fbnet", archs).astype("float64")
    rng = np.random.default_rng(4)
    first, second = (np.exp(onehot @ rng.uniform(0.0, 0.2, onehot.shape[1])) for _ in range(2))
    sources = {"first": pd.Series(first[:400], archs[:400]), "second": pd.Series(second[:400], archs[:400])}
    model = Stack("fbnet", seed=0, mlp_hidden=[16], mlp_head=[16], batch_size=64, source_epochs=2, target_epochs=2)
    model.pretrain(sources)
    target = 3.0 * first**0.7 * second**0.3  # a device between the two, in log space
    model.transfer("between", pd.Series(target[400:420], archs[400:420]))
    rho = stats.spearmanr(model.predict(archs[420:], "between"), target[420:]).statistic
    assert rho > 0.95, rho
    assert model.transfer_info["between"]["stack_weights"]["tables"] >= 0.5
    assert "pairs" not in model.transfer_info["between"]["stack_weights"]  # 198 one-hot columns: too wide for pairs
    assert "pairs left out: fbnet's one-hot is 198 wide" in model.transfer_summary("between")


def test_a_predictor_from_before_the_ms_tables_blends_without_them_and_says_so(trained, nb201_latency):
    old = _roundtrip(trained)
    old.source_pair_tables, old.source_ms_tables = {}, {}
    old.transfer("old", nb201_latency[TARGET].iloc[200:220])
    assert set(old.transfer_info["old"]["stack_weights"]) == set(COMPONENTS) - {"pairs", "costs"}
    summary = old.transfer_summary("old")
    assert "pairs left out: its pre-training fitted no pairwise tables" in summary
    assert "costs left out: its pre-training fitted no ms tables" in summary
    assert "left out" not in trained.transfer_summary(TARGET)


def test_on_nasbench201_the_pairwise_tables_carry_an_interaction_no_additive_table_has():
    archs = spaces.get("nasbench201").sample(700, seed=5)
    onehot = encodings.onehot("nasbench201", archs).astype("float64")
    rng = np.random.default_rng(2)
    additive = 1.0 + onehot @ rng.uniform(0.0, 0.3, onehot.shape[1])
    conv3 = onehot[:, [k * 5 + 3 for k in range(6)]]  # nor_conv_3x3 on each of the 6 edges
    interaction = 2.0 * conv3[:, 0] * conv3[:, 5] + 1.5 * conv3[:, 1] * conv3[:, 4]  # two edges that fuse badly
    sources = {"plain": pd.Series(additive[:600], archs[:600]),
               "fused": pd.Series((additive + interaction)[:600], archs[:600])}
    model = Stack("nasbench201", seed=0, **{**TINY, "source_epochs": 2, "target_epochs": 2})
    model.pretrain(sources)
    target = 0.5 * additive + 2.0 * interaction  # the interaction weighs more on the target than on any source
    model.transfer("new", pd.Series(target[600:620], archs[600:620]))
    pairs_only = stats.spearmanr(
        model._component_log_ms("pairs", model.transfer_info["new"]["components"]["pairs"], archs[620:]), target[620:]
    ).statistic
    tables_only = stats.spearmanr(
        model._component_log_ms("tables", model.transfer_info["new"]["components"]["tables"], archs[620:]), target[620:]
    ).statistic
    assert pairs_only > 0.98 and pairs_only > tables_only + 0.02, (pairs_only, tables_only)
    assert stats.spearmanr(model.predict(archs[620:], "new"), target[620:]).statistic > 0.95


def test_on_fbnet_the_costs_component_carries_a_sum_of_layer_costs_with_a_memory_term():
    archs = spaces.get("fbnet").sample(540, seed=3)
    onehot = encodings.onehot("fbnet", archs).astype("float64")
    rng = np.random.default_rng(8)
    compute = 2.0 + onehot @ rng.uniform(0.0, 0.2, onehot.shape[1])
    sources = {"compute": pd.Series(compute[:400], archs[:400]),
               "other": pd.Series((2.0 + onehot @ rng.uniform(0.0, 0.2, onehot.shape[1]))[:400], archs[:400])}
    model = Stack("fbnet", seed=0, mlp_hidden=[16], mlp_head=[16], batch_size=64, source_epochs=2, target_epochs=2)
    model.pretrain(sources)
    target = 0.5 * compute + 0.4 * encodings.params("fbnet", archs) / 1e6  # a device that also pays for its weights
    model.transfer("weights", pd.Series(target[400:420], archs[400:420]))
    components = model.transfer_info["weights"]["components"]
    costs, tables = (stats.spearmanr(model._component_log_ms(name, components[name], archs[420:]), target[420:]).statistic
                     for name in ("costs", "tables"))
    assert costs > 0.99 and costs > tables + 0.05, (costs, tables)
    assert stats.spearmanr(model.predict(archs[420:], "weights"), target[420:]).statistic > 0.97
