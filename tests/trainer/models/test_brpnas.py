import json

import numpy as np
import pytest
import torch
from scipy import stats

from farm.errors import UserError
from trainer.models.brpnas import BRPNAS, BRPNASConfig

SMALL = {"hidden": 48, "layers": 2}


def _roundtrip(model: BRPNAS) -> BRPNAS:
    tensors, config = model.state()
    return BRPNAS.from_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(config)))


def test_defaults_are_the_papers():
    cfg = BRPNASConfig()
    assert (cfg.hidden, cfg.layers, cfg.lr, cfg.weight_decay, cfg.batch_size) == (600, 4, 8e-4, 5e-4, 10)
    assert (cfg.dropout, cfg.epochs, cfg.patience, cfg.lr_patience, cfg.lr_factor) == (0.002, 250, 35, 10, 0.5)
    net = BRPNAS("nasbench201")._new_net()
    assert [c.weight.shape for c in net.encoder.convs] == [(8, 600)] + [(600, 600)] * 3
    assert net.fc.weight.shape == (1, 600)


def test_learns_a_device_from_its_samples_and_beats_random_ranking(nb201_latency):
    latency = nb201_latency["gold_6226"]
    model = BRPNAS("nasbench201", seed=0, epochs=60, batch_size=20, **SMALL)
    model.transfer("gold_6226", latency.iloc[:120])
    test = latency.iloc[120:]
    rho = stats.spearmanr(model.predict(list(test.index), "gold_6226"), test).statistic
    assert rho > 0.7  # random ranking: |rho| < 0.2 on 120 archs with overwhelming probability
    fit = model.fit_results["gold_6226"]
    assert fit["n_val"] == 12 and fit["n_train"] == 108  # >= min_val_samples: a 10% validation split
    assert 1 <= fit["epochs"] <= 60


def test_few_samples_early_stop_on_training_loss(nb201_latency):
    model = BRPNAS("nasbench201", seed=0, epochs=5, **SMALL)
    model.transfer("pixel3", nb201_latency["pixel3"].iloc[:20])
    assert model.fit_results["pixel3"]["n_val"] == 0 and model.fit_results["pixel3"]["n_train"] == 20


def test_save_load_gives_identical_predictions_per_target(nb201_latency):
    model = BRPNAS("nasbench201", seed=2, epochs=3, **SMALL)
    model.transfer("pixel3", nb201_latency["pixel3"].iloc[:20])
    model.transfer("raspi4", nb201_latency["raspi4"].iloc[:20])
    archs = list(nb201_latency.index)
    loaded = _roundtrip(model)
    assert loaded.targets() == ["pixel3", "raspi4"]
    for target in ("pixel3", "raspi4"):
        np.testing.assert_array_equal(loaded.predict(archs, target), model.predict(archs, target))
    assert not np.array_equal(model.predict(archs, "pixel3"), model.predict(archs, "raspi4"))


def test_same_seed_same_model(nb201_latency):
    samples = nb201_latency["pixel3"].iloc[:20]
    a, b = (BRPNAS("nasbench201", seed=4, epochs=3, **SMALL) for _ in range(2))
    a.transfer("pixel3", samples)
    b.transfer("pixel3", samples)
    for (name, x), y in zip(a.nets["pixel3"].state_dict().items(), b.nets["pixel3"].state_dict().values()):
        assert torch.equal(x, y), name


def test_bad_input_is_a_user_error(nb201_latency):
    with pytest.raises(UserError, match="no hyper-parameter 'source_epochs'"):
        BRPNAS("nasbench201", source_epochs=3)
    with pytest.raises(UserError, match="at least 3 samples"):
        BRPNAS("nasbench201").transfer("pixel3", nb201_latency["pixel3"].iloc[:2])
    with pytest.raises(UserError, match="no model for target 'pixel3'"):
        BRPNAS("nasbench201").predict(list(nb201_latency.index[:3]), "pixel3")
