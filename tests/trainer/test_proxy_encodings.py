"""The trainer's reader of proxy encodings: values in the asked order, every missing pair named with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from farm.proxies import NAMES
from farm.proxies.inputs import default_spec
from farm.proxies.table import EncodingsTable
from trainer.proxy_encodings import Missing, MissingEncodings, load, report

SPEC = default_spec("nasbench201").key


def row(arch: str, proxy: str, value: float | None, status: str = "ok", **fields: object) -> dict[str, object]:
    return {
        "space": "nasbench201", "arch": arch, "proxy": proxy, "value": value, "status": status,
        "error": None if status == "ok" else "jacov: 16 of 16 input Jacobians are constant; no correlation",
        "input_spec": SPEC, "version": 1, "computed_at": "2026-01-01T00:00:00Z", "host": "h",
        "torch_version": "t", "farm_version": "f", **fields,
    }


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    EncodingsTable(tmp_path).append([
        row("a", "snip", 1.0), row("a", "jacov", 2.0), row("b", "snip", 3.0), row("b", "jacov", None, "undefined"),
        row("c", "snip", 9.0, input_spec="gaussian:b8:r8:c10:l4:s0"),  # another spec: never mixed in
        row("c", "jacov", 9.0, version=0),  # an older definition: never mixed in
    ])
    return tmp_path


def test_load_returns_rows_per_arch_and_columns_per_proxy_in_the_order_asked(store: Path) -> None:
    values = load(store, "nasbench201", ["b", "a"], ["snip"])
    assert values.dtype == np.float64 and values.tolist() == [[3.0], [1.0]]
    assert load(store, "nasbench201", ["a"], ["jacov", "snip"]).tolist() == [[2.0, 1.0]]


def test_missing_pairs_raise_a_typed_error_naming_them(store: Path) -> None:
    with pytest.raises(MissingEncodings) as caught:
        load(store, "nasbench201", ["a", "b", "c"], ["snip", "jacov"])
    error = caught.value
    assert [(m.arch, m.proxy) for m in error.missing] == [("b", "jacov"), ("c", "snip"), ("c", "jacov")]
    assert error.missing[0].reason.startswith("undefined: jacov: 16 of 16")
    assert error.missing[1].reason == "not computed"
    assert str(error).startswith("3 of 6 (arch, proxy) encodings missing in nasbench201")
    assert "(b, jacov): undefined" in str(error) and "farm encode --space nasbench201" in str(error)


def test_report_gives_nan_where_missing_for_an_explicit_fallback(store: Path) -> None:
    result = report(store, "nasbench201", ["a", "b"], ["snip", "jacov"])
    assert result.values[0].tolist() == [1.0, 2.0] and result.values[1, 0] == 3.0 and np.isnan(result.values[1, 1])
    assert result.missing == (Missing("b", "jacov", result.missing[0].reason),)
    assert result.proxies == ("snip", "jacov") and result.input_spec == SPEC


def test_a_later_ok_row_replaces_a_failed_one(tmp_path: Path) -> None:
    table = EncodingsTable(tmp_path)
    table.append([row("a", "zen", None, "failed")])
    table.append([row("a", "zen", 4.0, computed_at="2026-01-02T00:00:00Z")])
    assert load(tmp_path, "nasbench201", ["a"], ["zen"]).tolist() == [[4.0]]


def test_by_default_all_thirteen_proxies_are_asked_for(store: Path) -> None:
    result = report(store, "nasbench201", ["a"])
    assert result.proxies == NAMES and len(result.missing) == len(NAMES) - 2
