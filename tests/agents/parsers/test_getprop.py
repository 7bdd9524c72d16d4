"""getprop parser against tests/fixtures/android."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.getprop import parse, parse_value


def test_listing_with_empty_value(fixtures_dir: Path) -> None:
    properties = parse((fixtures_dir / "android" / "getprop_grep_ro_product_pixel8_truncated.txt").read_text())
    assert len(properties) == 23
    assert properties["ro.product.model"] == "Pixel 8"
    assert properties["ro.product.cpu.abilist32"] == ""
    assert properties["ro.product.first_api_level"] == "34"


def test_bare_value(fixtures_dir: Path) -> None:
    assert parse_value((fixtures_dir / "android" / "getprop_ro_product_model_galaxy_tab.txt").read_text()) == "GT-P7510"
    assert parse_value("\n") == ""


def test_lenient_mode_skips_multiline_values() -> None:
    text = "[ro.product.model]: [Pixel 8]\n[ro.vendor.note]: [first\nsecond]\n[ro.build.version.sdk]: [34]\n"
    assert parse(text, strict=False) == {"ro.product.model": "Pixel 8", "ro.build.version.sdk": "34"}
    with pytest.raises(UnparsableOutput):
        parse(text)


def test_refusals() -> None:
    with pytest.raises(UnparsableOutput, match="parse_value"):
        parse("GT-P7510\n")
    with pytest.raises(UnparsableOutput, match="2 lines"):
        parse_value("a\nb\n")
