import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from farm import spaces
from farm.errors import UserError
from trainer.models.layerwise import LayerwiseTable
from trainer.models.multipredict import MultiPredict, blend, choose_blend_weight, init_weights, rank_correlations

SMALL = {"gcn_hidden": [32, 32], "gcn_head": [32], "mlp_hidden": [32], "mlp_head": [32], "batch_size": 32}


def _roundtrip(model: MultiPredict) -> MultiPredict:
    tensors, config = model.state()
    return MultiPredict.from_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(config)))


@pytest.fixture(scope="module")
def opposite_sources() -> dict[str, pd.Series]:
    """Two synthetic sources on 120 archs: ``cost`` (3x3 convs dominate) and its exact reverse."""
    archs = spaces.get("nasbench201").sample(120, seed=5)
    weight = {"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0, "avg_pool_3x3": 0.5}
    cost = pd.Series([1.0 + sum(weight.get(op, 0.0) for op in spaces.get("nasbench201").parse(a)) for a in archs], archs)
    return {"cost": cost, "reverse": cost.max() + 1.0 - cost}


@pytest.fixture(scope="module")
def pretrained(opposite_sources) -> MultiPredict:
    model = MultiPredict("nasbench201", seed=0, source_epochs=40, **SMALL)
    model.pretrain(opposite_sources)
    return model


def test_pretrained_rows_learn_opposite_orders(pretrained, opposite_sources):
    archs = list(opposite_sources["cost"].index)
    rho = stats.spearmanr(pretrained.predict(archs, "cost"), opposite_sources["cost"]).statistic
    assert rho > 0.8
    assert stats.spearmanr(pretrained.predict(archs, "reverse"), opposite_sources["reverse"]).statistic > 0.8


def test_transfer_initialises_the_row_from_the_best_correlated_source(pretrained, opposite_sources):
    samples = 2.0 * opposite_sources["reverse"].iloc[:20] + 3.0  # same order as "reverse", opposite to "cost"
    model = _roundtrip(pretrained)
    model.hyper.update(target_epochs=0, blend_weight=0.0)  # no fine-tuning, no blend: the row as initialised
    model.transfer("new", samples)
    info = model.transfer_info["new"]
    assert info["init_source"] == "reverse"
    assert info["source_spearman"]["reverse"] > 0.5 > -0.5 > info["source_spearman"]["cost"]
    table = model.tuned["new"].hardware.weight
    assert torch.equal(table[2], table[1])
    # without fine-tuning the new target predicts the "reverse" source rescaled to the target's range
    archs = list(opposite_sources["cost"].index[20:])
    np.testing.assert_allclose(
        model.predict(archs, "new"),
        model.target_scalers["new"].inverse(model.source_scalers["reverse"].transform(model.predict(archs, "reverse"))),
        rtol=1e-5,
    )


def test_transfer_fine_tunes_a_copy_and_leaves_sources_alone(pretrained, opposite_sources):
    archs = list(opposite_sources["cost"].index)
    model = _roundtrip(pretrained)
    before = model.predict(archs, "cost")
    model.transfer("new", opposite_sources["cost"].iloc[:20] * 3.0)
    np.testing.assert_array_equal(model.predict(archs, "cost"), before)
    assert not torch.equal(model.tuned["new"].head.net[0].weight, model.base.head.net[0].weight)
    assert model.targets() == ["cost", "reverse", "new"]


def test_save_load_gives_identical_predictions(pretrained, opposite_sources):
    model = _roundtrip(pretrained)
    model.hyper["finetune"] = "embedding_head"
    model.transfer("new", opposite_sources["cost"].iloc[:20])
    archs = list(opposite_sources["cost"].index)
    loaded = _roundtrip(model)
    for target in ("cost", "reverse", "new"):
        np.testing.assert_array_equal(loaded.predict(archs, target), model.predict(archs, target))
    assert loaded.transfer_info == model.transfer_info
    assert loaded.scalers == model.scalers


def test_embedding_head_finetune_keeps_the_encoder(pretrained, opposite_sources):
    model = _roundtrip(pretrained)
    model.hyper.update(finetune="embedding_head", init="softmax")
    model.transfer("new", opposite_sources["cost"].iloc[:20])
    for name, value in model.tuned["new"].encoder.state_dict().items():
        assert torch.equal(value, model.base.encoder.state_dict()[name])
    assert sum(model.transfer_info["new"]["init_weights"].values()) == pytest.approx(1.0)


def test_real_nb201_pretrain_transfer_predict_beats_random_ranking(nb201_latency):
    sources = {d: nb201_latency[d].iloc[:200] for d in ("1080ti_1", "pixel3", "silver_4114")}
    target = nb201_latency["raspi4"]
    model = MultiPredict("nasbench201", seed=1, epochs=25, scaler="log_zscore", **SMALL)
    model.pretrain(sources)
    model.transfer("raspi4", target.iloc[:20])
    test = target.iloc[20:]
    rho = stats.spearmanr(model.predict(list(test.index), "raspi4"), test).statistic
    # a random ranking gives |rho| < 0.15 on 220 archs with overwhelming probability
    assert rho > 0.6
    assert model.transfer_info["raspi4"]["init_source"] == "pixel3"  # raspi4-pixel3 rho is 0.97 on NB201


def test_mlp_encoder_on_onehot(nb201_latency):
    model = MultiPredict("nasbench201", seed=0, encoder="mlp", epochs=10, **SMALL)
    model.pretrain({"gold_6226": nb201_latency["gold_6226"].iloc[:100]})
    model.transfer("1080ti_1", nb201_latency["1080ti_1"].iloc[:20])
    assert model.encoder_kind == "mlp" and model.in_channels == 30
    preds = model.predict(list(nb201_latency.index[20:]), "1080ti_1")
    assert preds.shape == (220,) and np.all(np.isfinite(preds))
    np.testing.assert_array_equal(_roundtrip(model).predict(list(nb201_latency.index), "1080ti_1"),
                                  model.predict(list(nb201_latency.index), "1080ti_1"))


def test_epochs_caps_source_and_target_epochs():
    config = MultiPredict("fbnet", epochs=3).config
    assert (config.pretrain_epochs, config.transfer_epochs) == (3, 3)
    assert MultiPredict("fbnet").config.pretrain_epochs == 250


def test_bad_input_is_a_user_error(pretrained, opposite_sources):
    with pytest.raises(UserError, match="no hyper-parameter 'lr'"):
        MultiPredict("nasbench201", lr=0.1)
    with pytest.raises(UserError, match="at least 3 samples"):
        _roundtrip(pretrained).transfer("new", opposite_sources["cost"].iloc[:2])
    with pytest.raises(UserError, match="not pre-trained"):
        MultiPredict("nasbench201").transfer("new", opposite_sources["cost"].iloc[:5])
    with pytest.raises(UserError, match="knows no target 'nope'"):
        pretrained.predict(list(opposite_sources["cost"].index[:2]), "nope")


def test_rank_correlations_and_init_weights():
    candidates = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
    rhos = rank_correlations(candidates, np.array([10.0, 20.0, 30.0]))
    np.testing.assert_allclose(rhos, [1.0, -1.0, -1.0])
    np.testing.assert_array_equal(init_weights(rhos, "best", 0.1), [1.0, 0.0, 0.0])
    soft = init_weights(np.array([0.9, 0.8, 0.0]), "softmax", 0.1)
    assert soft.sum() == pytest.approx(1.0) and soft[0] > soft[1] > soft[2]
    with pytest.raises(ValueError, match="unknown init"):
        init_weights(rhos, "mean", 0.1)


def test_additive_readout_sums_device_conditioned_node_costs(nb201_latency):
    model = MultiPredict("nasbench201", seed=0, readout="additive", epochs=10, **SMALL)
    model.pretrain({d: nb201_latency[d].iloc[:100] for d in ("1080ti_1", "pixel3")})
    net = model.base
    assert net.fixed_cost is not None
    inputs = model._inputs(list(nb201_latency.index[:4]))
    encoded = net.encode(inputs)
    assert encoded.shape == (4, 9, 33) and torch.all(encoded[..., -1] == 1)  # NB201 graphs: 9 real nodes
    device = torch.zeros(4, dtype=torch.long)
    with torch.no_grad():
        rows = net.hardware(device)
        per_node = [torch.nn.functional.softplus(net.head(torch.cat([encoded[:, i, :-1], rows], -1))) for i in range(9)]
        expected = torch.stack(per_node).sum(0).squeeze(-1) + net.fixed_cost(rows).squeeze(-1)
        torch.testing.assert_close(net(inputs, device), expected)
    model.hyper.update(finetune="embedding", embedding_epochs=2)
    model.transfer("raspi4", nb201_latency["raspi4"].iloc[:20])
    tuned = model.tuned["raspi4"]
    assert torch.equal(tuned.head.net[0].weight, net.head.net[0].weight)  # only the hardware row moved
    init = list(model.source_scalers).index(model.transfer_info["raspi4"]["init_source"])
    assert not torch.equal(tuned.hardware.weight[2], tuned.hardware.weight[init])
    np.testing.assert_array_equal(_roundtrip(model).predict(list(nb201_latency.index), "raspi4"),
                                  model.predict(list(nb201_latency.index), "raspi4"))


def test_blend_and_its_cross_validated_weight():
    network, table, measured = np.array([2.0, 8.0]), np.array([1.0, 4.0]), np.array([1.0, 4.0])
    np.testing.assert_allclose(blend(network, table, 0.5), np.sqrt(network * table))
    assert blend(network, table, 0.0) is not None and np.array_equal(blend(network, table, 0.0), network)
    assert choose_blend_weight(network, table, measured) == 1.0  # the table is exact
    assert choose_blend_weight(table, network, measured) == 0.0  # the network is exact
    assert choose_blend_weight(network, table, np.sqrt(network * table)) == 0.5


def test_layerwise_blend_is_fitted_on_the_samples_and_survives_save_load(pretrained, opposite_sources):
    samples = opposite_sources["cost"].iloc[:20]
    archs = list(opposite_sources["cost"].index[20:])
    plain = _roundtrip(pretrained)
    plain.hyper["target_epochs"] = 5
    plain.transfer("new", samples)
    blended = _roundtrip(pretrained)
    blended.hyper.update(target_epochs=5, blend_weight=None, blend_folds=4)
    blended.transfer("new", samples)
    info = blended.transfer_info["new"]
    assert info["blend_weight"] in (0.0, 0.25, 0.5, 0.75, 1.0) and set(info["layerwise"]) == {"table_ms", "fixed_ms", "scale"}
    table = LayerwiseTable("nasbench201")
    table.transfer("new", samples)
    expected = blend(plain.predict(archs, "new"), table.predict(archs, "new"), info["blend_weight"])
    np.testing.assert_allclose(blended.predict(archs, "new"), expected, rtol=1e-5)
    np.testing.assert_allclose(_roundtrip(blended).predict(archs, "new"), blended.predict(archs, "new"), rtol=1e-6)
    # "cost" is additive over ops, so the layer-wise table fits it exactly and cross-validation picks it
    assert info["blend_weight"] >= 0.5
    with pytest.raises(UserError, match="blend_weight"):
        bad = _roundtrip(pretrained)
        bad.hyper["blend_weight"] = 1.5
        bad.transfer("new", samples)


def test_pretraining_epochs_follow_the_pair_budget():
    from trainer.models.multipredict import MultiPredictConfig

    assert MultiPredictConfig().pretrain_epochs_for(9 * 900) == 250  # HELP's splits train as the paper does
    assert MultiPredictConfig(pair_budget=10_000).pretrain_epochs_for(1_000) == 10
    assert MultiPredictConfig(pair_budget=1).pretrain_epochs_for(1_000) == 1
    assert MultiPredictConfig(pair_budget=None, epochs=7).pretrain_epochs_for(10**9) == 7
