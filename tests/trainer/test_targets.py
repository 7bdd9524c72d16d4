"""trainer.targets: stable names, default targets and the one-line account of a choice."""

from __future__ import annotations

import pandas as pd

from farm.device_records import DeviceRecord
from trainer.targets import RULE_INVENTORY, RULE_MOST_ROWS, RULE_ONLY, TargetChoice, name_targets, parse_label


def _rows(*configs: tuple[str, str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(configs, columns=["device", "runtime", "batch_size", "input_size"])


def test_names_depend_on_the_set_of_configurations_not_on_row_order():
    rows = _rows(("cpu", "torch", 1, 32), ("cpu", "torch", 8, 32), ("cpu", "torch", 8, 32), ("pi", "tflite", 1, 32))
    naming = name_targets(rows)
    assert sorted(naming.keys) == ["cpu:torch:b1", "cpu:torch:b8", "pi"]
    assert (naming.defaults["cpu"], naming.rules["cpu"]) == ("cpu:torch:b8", RULE_MOST_ROWS)
    assert naming.rules["pi"] == RULE_ONLY
    assert name_targets(rows.iloc[::-1]) == naming


def test_a_record_adds_unmeasured_configurations_and_decides_the_default():
    record = DeviceRecord("cpu", "cpu", None, ("tflite", "torch"), (1,), 1, None)
    naming = name_targets(_rows(("cpu", "torch", 1, 32), ("cpu", "torch", 1, 32)), {"cpu": record})
    assert sorted(naming.keys) == ["cpu:tflite:b1", "cpu:torch:b1"]
    assert (naming.defaults["cpu"], naming.rules["cpu"]) == ("cpu:tflite:b1", RULE_INVENTORY)


def test_several_input_sizes_are_named_and_the_record_picks_its_own():
    record = DeviceRecord("cpu", "cpu", None, ("torch",), (1,), 1, 224)
    rows = _rows(("cpu", "torch", 1, 160), ("cpu", "torch", 1, 160), ("cpu", "torch", 1, 224))
    naming = name_targets(rows, {"cpu": record})
    assert sorted(naming.keys) == ["cpu:torch:b1:in160", "cpu:torch:b1:in224"]
    assert naming.defaults["cpu"] == "cpu:torch:b1:in224"


def test_parse_label_and_the_choice_line():
    assert parse_label("cpu:torch:b1:in224") == ("cpu", "torch", 1, 224) and parse_label("pixel2") is None
    choice = TargetChoice("cpu", "cpu:torch:b1", RULE_INVENTORY, 18, 18, {"unstable": 30, "failed": 0},
                          {"cpu:tflite:b1": 48})
    assert choice.line() == ("target cpu -> cpu:torch:b1 (inventory default: first runtime and batch size): "
                             "18 rows used (18 archs); skipped 30 unstable, 48 of other configurations (cpu:tflite:b1)")
    assert choice.to_dict()["skipped"] == {"unstable": 30, "failed": 0}
