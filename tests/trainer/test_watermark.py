"""trainer.watermark: what ``trainer nightly`` reads names its targets as ``trainer.data.load_table`` does."""

from __future__ import annotations

from farm.device_records import DeviceRecord, write_record
from farm.store import Store
from trainer import holdout
from trainer.data import load_table
from trainer.watermark import read_space

from .test_data import ARCH_A, ARCH_B, _flip_store


def test_nightly_target_names_do_not_flip_with_the_statuses_it_reads(tmp_path):
    store = _flip_store(tmp_path)
    write_record(store, DeviceRecord("cpu-local", "cpu", None, ("torch", "torchscript"), (1,), 1, None))
    ok_only = read_space(Store(store), "nasbench201")
    with_unstable = read_space(Store(store), "nasbench201", ("ok", "unstable"))
    assert ok_only.table.keys == with_unstable.table.keys == load_table(store, "nasbench201").keys
    assert ok_only.table.resolve("cpu-local") == with_unstable.table.resolve("cpu-local") == "cpu-local:torch:b1"
    # Fingerprints count the trainable rows read: never the failed row, unstable ones only when asked, and
    # never ARCH_A, which is in the held-out slice.
    assert holdout.is_held_out("nasbench201", ARCH_A) and not holdout.is_held_out("nasbench201", ARCH_B)
    assert "cpu-local:torch:b1" not in ok_only.fingerprints  # no usable row yet: nothing to transfer
    assert with_unstable.fingerprints["cpu-local:torch:b1"].rows == 2
    assert ok_only.fingerprints["cpu-local:torchscript:b1"].rows == 1
    assert set(with_unstable.table.series("cpu-local").index) == {ARCH_A, ARCH_B}
