"""trainer.models.help on a slice of HELP's real NAS-Bench-201 and FBNet latencies (tiny episodes)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from farm import spaces
from farm.errors import UserError
from trainer.models import get_method
from trainer.models.help import HELP, HELPNet, HELPConfig, hardware_embedding
from trainer.models.help_references import reference_archs, reference_indices

SOURCES = ("1080ti_1", "pixel3", "silver_4114", "samsung_a50")
TARGET = "raspi4"
TINY = {"hidden": 16, "episodes": 30, "meta_batch": 2, "query_samples": 40, "mc_samples": 3}


def _latency(help_table_path: Path, space: str, n: int) -> pd.DataFrame:
    archs = list(dict.fromkeys([*reference_archs(space), *spaces.get(space).sample(n, seed=3)]))
    frame = pd.read_parquet(help_table_path, columns=["arch", "device", "latency_ms"],
                            filters=[("search_space", "=", space), ("device", "in", [*SOURCES, TARGET])])
    table = frame[frame["arch"].isin(archs)].pivot_table(index="arch", columns="device", values="latency_ms")
    return table.loc[[a for a in archs if a in table.index]]


@pytest.fixture(scope="module")
def nb201(help_table_path: Path) -> pd.DataFrame:
    return _latency(help_table_path, "nasbench201", 160)


@pytest.fixture(scope="module")
def trained(nb201: pd.DataFrame) -> HELP:
    model = HELP("nasbench201", seed=0, **TINY)
    model.pretrain({s: nb201[s] for s in SOURCES})
    return model


def _target_samples(nb201: pd.DataFrame, n: int = 10) -> pd.Series:
    others = [a for a in nb201.index if a not in reference_archs("nasbench201")]
    return nb201[TARGET].loc[[*reference_archs("nasbench201"), *others[:n]]]


def test_reference_archs_are_helps_ten_in_its_order(help_table_path):
    table = pd.read_parquet(help_table_path, columns=["search_space", "arch_index", "arch", "device"],
                            filters=[("device", "=", "pixel2")])
    for space in ("nasbench201", "fbnet"):
        by_index = table[table["search_space"] == space].set_index("arch_index")["arch"]
        assert [by_index[i] for i in reference_indices(space)] == list(reference_archs(space))
        assert len(set(reference_archs(space))) == 10
    with pytest.raises(UserError, match="no reference architectures"):
        reference_archs("mnasnet")


def test_network_shapes_for_both_encoders(nb201):
    cfg = HELPConfig(hidden=8)
    gcn = HELP("nasbench201", **TINY)
    inputs = gcn._inputs(list(nb201.index[:5]))
    net = HELPNet("gcn", gcn.in_channels, 10, cfg)
    assert net(inputs, hardware_embedding(np.arange(10.0))).shape == (5,)
    assert net.header_inputs() == [16, 16, 16]
    mlp = HELP("fbnet", **TINY)
    onehot = mlp._inputs(list(reference_archs("fbnet")[:4]))
    assert HELPNet("mlp", mlp.in_channels, 10, cfg)(onehot, hardware_embedding(np.arange(10.0))).shape == (4,)


def test_meta_training_then_adaptation_ranks_the_targets_held_out_archs(trained, nb201):
    samples = _target_samples(nb201)
    trained.transfer(TARGET, samples)
    held_out = [a for a in nb201.index if a not in samples.index]
    predicted = trained.predict(held_out, TARGET)
    assert predicted.shape == (len(held_out),) and np.isfinite(predicted).all()
    rho = stats.spearmanr(predicted, nb201[TARGET].loc[held_out]).statistic
    assert rho > 0.5, rho  # 30 tiny episodes; the benchmark has the real figures
    assert trained.targets() == [TARGET]


def test_predictions_are_deterministic_and_survive_a_json_round_trip(trained, nb201):
    trained.transfer(TARGET, _target_samples(nb201))
    archs = list(nb201.index[:25])
    first = trained.predict(archs, TARGET)
    np.testing.assert_array_equal(first, trained.predict(archs, TARGET))
    tensors, config = trained.state()
    reloaded = HELP.from_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(config)))
    np.testing.assert_allclose(reloaded.predict(archs, TARGET), first, rtol=1e-6)


def test_reference_archs_are_required_of_sources_and_targets(trained, nb201):
    refs = list(reference_archs("nasbench201"))
    with pytest.raises(UserError, match="lacks 1 of the 10 reference archs"):
        HELP("nasbench201", **TINY).pretrain({"1080ti_1": nb201["1080ti_1"].drop(index=refs[0])})
    with pytest.raises(UserError, match=r"lacks 10 of the 10 reference archs.*trainer sample"):
        trained.transfer(TARGET, nb201[TARGET].drop(index=refs).iloc[:20])
    with pytest.raises(UserError, match="only the reference archs"):
        trained.transfer(TARGET, nb201[TARGET].loc[refs])
    with pytest.raises(UserError, match="knows no target"):
        trained.predict(refs, "pixel2")
    with pytest.raises(UserError, match="not meta-trained"):
        HELP("nasbench201").transfer(TARGET, _target_samples(nb201))


def test_registered_as_a_method_with_the_papers_schedule():
    assert get_method("help") is HELP
    cfg = HELP("fbnet").config
    assert (cfg.episodes_for("fbnet"), cfg.meta_lr_for("fbnet")) == (4000, 1e-3)
    assert (cfg.episodes_for("nasbench201"), cfg.meta_lr_for("nasbench201")) == (2000, 1e-4)
    assert (cfg.meta_batch, cfg.inner_steps, cfg.mc_samples, cfg.z_scaling, cfg.kl_scaling) == (8, 2, 10, 0.01, 0.1)
    assert HELP("fbnet", epochs=5).config.episodes_for("fbnet") == 5


def test_reference_archs_count_against_the_sample_budget():
    from trainer.evaluate import choose_target_samples
    from trainer.workflow import sample

    refs = list(reference_archs("nasbench201"))
    chosen = sample("nasbench201", 20, sampler="random", seed=0, method="help")
    assert chosen[:10] == refs and len(set(chosen)) == 20
    assert sample("nasbench201", 20, sampler="random", seed=0, method="layerwise")[:10] != refs
    with pytest.raises(UserError, match="reference archs plus at least one sample"):
        sample("nasbench201", 10, method="help")
    measured = [*spaces.get("nasbench201").sample(40, seed=1), *refs]
    picked = choose_target_samples(lambda s, c, n, k: c[:n], "nasbench201", measured, 20, 0, refs)
    assert picked[:10] == refs and len(set(picked)) == 20
