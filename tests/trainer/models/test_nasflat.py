"""trainer.models.nasflat on a slice of HELP's real NAS-Bench-201 latencies (tiny networks and epochs)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from farm.errors import UserError
from trainer import registry
from trainer.models import get_method
from trainer.models.nasflat import NASFLAT, NASFLATConfig, graph_inputs
from tests.trainer.test_cli import run as _run
from tests.trainer.models.latency_slice import SOURCES, TARGET, pretrained_on_slice, transferred_on_slice

TINY = {"op_gnn": [16, 16], "op_summary": [16], "op_update": [16], "main_gnn": [16, 16], "head": [32, 32],
        "source_epochs": 6, "target_epochs": 10, "batch_size": 64}


def _pretrained(latency: pd.DataFrame, **hyper) -> NASFLAT:
    return pretrained_on_slice(NASFLAT("nasbench201", seed=0, **{**TINY, **hyper}), latency)


@pytest.fixture(scope="module")
def trained(nb201_latency: pd.DataFrame) -> NASFLAT:
    return transferred_on_slice(_pretrained(nb201_latency), nb201_latency)


def test_registered_as_nasflat():
    assert get_method("nasflat") is NASFLAT


def test_graph_inputs_have_op_types_and_no_self_loops(nb201_latency):
    graphs = graph_inputs("nasbench201", list(nb201_latency.index[:4]))
    assert graphs.ops.shape == (4, 9) and graphs.ops.dtype == torch.long
    assert torch.all(graphs.adj.diagonal(dim1=1, dim2=2) == 0)
    assert torch.all(graphs.adj[:, 8, :8] == 1)  # the global node receives from every node


def test_transfer_ranks_the_targets_unseen_archs(trained, nb201_latency):
    held_out = list(nb201_latency.index[:200])
    predicted = trained.predict(held_out, TARGET)
    assert predicted.shape == (200,) and np.isfinite(predicted).all()
    rho = stats.spearmanr(predicted, nb201_latency[TARGET].loc[held_out]).statistic
    assert rho > 0.6, rho  # 6 tiny epochs; benchmarks/transfer.py has the real figures
    info = trained.transfer_info[TARGET]
    assert info["init_source"] == max(info["source_spearman"], key=info["source_spearman"].get)
    assert info["epochs"] == 10 and info["lr"] == 3e-3
    assert trained.targets() == [*SOURCES, TARGET]


def test_predictions_are_in_milliseconds_on_the_targets_scale(trained, nb201_latency):
    samples = nb201_latency[TARGET].iloc[200:220]
    predicted = trained.predict(list(samples.index), TARGET)
    # the affine calibration is a least-squares fit on these samples: same mean
    assert predicted.mean() == pytest.approx(samples.mean(), rel=1e-6)


def test_the_target_gets_a_copy_of_the_best_sources_op_table_and_sources_are_untouched(trained, nb201_latency):
    assert trained.base is not None
    tuned = trained.tuned[TARGET]
    assert tuned.hardware.num_devices == len(SOURCES) + 1 and trained.base.hardware.num_devices == len(SOURCES)
    before = trained.predict(list(nb201_latency.index[:20]), "pixel3")
    assert np.allclose(before, _pretrained(nb201_latency).predict(list(nb201_latency.index[:20]), "pixel3"))


def test_deterministic_in_the_seed(trained, nb201_latency):
    again = _pretrained(nb201_latency)
    again.transfer(TARGET, nb201_latency[TARGET].iloc[200:220])
    archs = list(nb201_latency.index[:50])
    assert np.array_equal(again.predict(archs, TARGET), trained.predict(archs, TARGET))


def test_state_round_trip_through_json(trained, nb201_latency):
    tensors, config = trained.state()
    restored = NASFLAT.from_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(config)))
    archs = list(nb201_latency.index[:50])
    for target in (TARGET, "pixel3"):
        assert np.array_equal(restored.predict(archs, target), trained.predict(archs, target))
    assert restored.transfer_info == trained.transfer_info
    assert restored.config == trained.config


def test_supplementary_flops_and_params_are_joined_before_the_head_by_default(nb201_latency):
    assert NASFLATConfig().supplementary == ("flops", "params")
    assert _pretrained(nb201_latency, supplementary=[], source_epochs=1).base.encoder is None
    model = _pretrained(nb201_latency, source_epochs=1)
    assert model.base is not None and model.base.encoder is not None
    assert len(model.supplementary_stats) == 2
    tensors, config = model.state()
    restored = NASFLAT.from_state(tensors, json.loads(json.dumps(config)))
    archs = list(nb201_latency.index[:10])
    assert np.array_equal(restored.predict(archs, "pixel3"), model.predict(archs, "pixel3"))


def test_a_proxy_from_the_encodings_table_is_never_filled_silently(nb201_latency, tmp_path):
    with pytest.raises(UserError, match="set encodings_store"):
        _pretrained(nb201_latency, supplementary=["snip"], source_epochs=1)
    with pytest.raises(UserError, match="encodings missing"):
        _pretrained(nb201_latency, supplementary=["snip"], encodings_store=str(tmp_path), source_epochs=1)


def test_errors_are_user_errors(nb201_latency, trained):
    with pytest.raises(UserError, match="no hyper-parameter 'lr_typo'"):
        NASFLAT("nasbench201", lr_typo=1.0)
    with pytest.raises(UserError, match="not pre-trained"):
        NASFLAT("nasbench201").transfer(TARGET, nb201_latency[TARGET].iloc[:20])
    with pytest.raises(UserError, match="at least 3 samples"):
        trained.transfer("x", nb201_latency[TARGET].iloc[:2])
    broken = nb201_latency[TARGET].iloc[:20].copy()
    broken.iloc[3] = np.nan
    with pytest.raises(UserError, match="1 of 20 are not"):
        trained.transfer("x", broken)
    with pytest.raises(UserError, match="knows no target 'nowhere'"):
        trained.predict(list(nb201_latency.index[:3]), "nowhere")
    with pytest.raises(UserError, match="at least one source"):
        NASFLAT("nasbench201").pretrain({})


def test_pretraining_epochs_follow_the_node_budget():
    cfg = NASFLATConfig(source_epochs=150, node_budget=9 * 900 * 9 * 10)
    assert cfg.pretrain_epochs(9 * 900, 9) == 10
    assert NASFLATConfig(node_budget=None).pretrain_epochs(9 * 900, 9) == 150
    assert NASFLATConfig(epochs=2).pretrain_epochs(10, 9) == 2
    assert NASFLATConfig(node_budget=1).pretrain_epochs(10, 9) == 1


def test_cli_pretrain_sample_transfer_predict_round_trip(capsys, store_dir, tmp_path):
    hyper = [arg for key in ("op_gnn", "op_summary", "op_update", "main_gnn", "head")
             for arg in ("--hyper", f"{key}={json.dumps(TINY[key])}")]
    code, _, err = _run(capsys, "pretrain", "--store", str(store_dir), "--space", "nasbench201",
                        "--sources", "1080ti_1,pixel3,gold_6226", "--method", "nasflat", "--source-samples", "60",
                        "--epochs", "2", "--out", str(tmp_path / "pred"), *hyper)
    assert code == 0, err
    code, out, err = _run(capsys, "sample", "--predictor", str(tmp_path / "pred"), "--n", "20", "--sampler", "cosine-kmeans")
    assert code == 0 and len(set(out.split())) == 20, err
    code, _, err = _run(capsys, "transfer", "--predictor", str(tmp_path / "pred"), "--store", str(store_dir),
                        "--target", "pixel2", "--out", str(tmp_path / "pred2"))
    assert code == 0, err
    manifest = registry.read_manifest(tmp_path / "pred2")
    assert manifest["method"] == "nasflat" and manifest["targets"] == ["pixel2"]
    code, _, err = _run(capsys, "predict", "--predictor", str(tmp_path / "pred2"), "--all", "--out", str(tmp_path / "all.parquet"))
    assert code == 0, err
    everything = pd.read_parquet(tmp_path / "all.parquet")
    assert len(everything) == 15_625 and np.isfinite(everything["predicted_ms"]).all()
