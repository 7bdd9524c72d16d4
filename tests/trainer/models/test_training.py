import pytest
import torch
from torch import nn

from farm.errors import UserError
from trainer.models.training import FitConfig, config_from_hyper, fit, pairwise_hinge, torch_threads
from trainer.models.brpnas import BRPNASConfig


def test_early_stopping_restores_the_best_weights():
    net = nn.Linear(1, 1)
    xs = torch.linspace(0, 1, 8)[:, None]
    losses = iter([3.0, 1.0, 2.0, 2.5, 2.7, 9.0])
    snapshots = []

    def validation() -> float:
        snapshots.append(net.weight.detach().clone())
        return next(losses)

    cfg = FitConfig(lr=0.1, weight_decay=0.0, batch_size=8, epochs=6, patience=3)
    result = fit(net, lambda i: ((net(xs[i]) - xs[i]) ** 2).mean(), 8, cfg, validation_loss=validation)
    assert result.epochs == 5 and result.best_loss == 1.0 and result.history == [3.0, 1.0, 2.0, 2.5, 2.7]
    assert torch.equal(net.weight, snapshots[1])


def test_only_the_given_parameters_train():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    frozen = net[0].weight.detach().clone()
    xs = torch.randn(16, 2)
    cfg = FitConfig(lr=0.1, weight_decay=0.0, batch_size=4, epochs=2)
    fit(net, lambda i: net(xs[i]).pow(2).mean(), 16, cfg, parameters=net[1].parameters())
    assert torch.equal(net[0].weight, frozen)


def test_pairwise_hinge_counts_only_misordered_pairs_within_groups():
    target = torch.tensor([1.0, 2.0, 3.0, 0.0])
    assert pairwise_hinge(torch.tensor([1.0, 2.0, 3.0, 0.0]), target, margin=0.5) == 0
    wrong = pairwise_hinge(torch.tensor([3.0, 2.0, 1.0, 0.0]), target, margin=0.0)
    assert wrong > 0
    # the misordered items sit in different groups: no pair is compared
    groups = torch.tensor([0, 1, 2, 3])
    assert pairwise_hinge(torch.tensor([3.0, 2.0, 1.0, 0.0]), target, 0.0, groups) == 0


def test_config_from_hyper_and_threads():
    assert config_from_hyper(BRPNASConfig, {"hidden": 8}, "brpnas").hidden == 8
    with pytest.raises(UserError, match="method 'brpnas' has no hyper-parameter 'hiden'"):
        config_from_hyper(BRPNASConfig, {"hiden": 8}, "brpnas")
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
