"""tegrastats parser against the four published formats in tests/fixtures/jetson."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from agents.parsers.common import UnparsableOutput
from agents.parsers.tegrastats import Engine, parse, parse_line

FILES = {
    "tegrastats_tx1_l4t28.1_legacy.txt",
    "tegrastats_tx2_2019_no_mw_units.txt",
    "tegrastats_agx_orin_64gb_timestamped.txt",
    "tegrastats_orin_8gb_nvenc_nvdec.txt",
}


def load(fixtures_dir: Path, name: str):  # noqa: ANN201 - list[TegrastatsSample]
    return parse((fixtures_dir / "jetson" / name).read_text(), source=name)


def test_every_tegrastats_fixture_is_covered(fixtures_dir: Path) -> None:
    assert {p.name for p in (fixtures_dir / "jetson").glob("tegrastats*")} == FILES


def test_tx1_legacy_shared_cpu_frequency(fixtures_dir: Path) -> None:
    first, second = load(fixtures_dir, "tegrastats_tx1_l4t28.1_legacy.txt")
    assert (first.ram_used_mb, first.ram_total_mb, first.swap_used_mb) == (3468, 3983, 873)
    assert [c.load_pct for c in second.cpus] == [17, 11, 65, 0]
    assert {c.freq_mhz for c in second.cpus} == {1734}
    assert second.engines == {"EMC": Engine(1, [1600]), "GR3D": Engine(39, [76])}
    assert first.temperatures_c == {} and first.power_mw == {}


def test_tx2_rails_without_units(fixtures_dir: Path) -> None:
    (sample,) = load(fixtures_dir, "tegrastats_tx2_2019_no_mw_units.txt")
    assert len(sample.cpus) == 6 and sample.cpus[1].load_pct == 21 and sample.cpus[1].freq_mhz == 345
    assert sample.engines["GR3D_FREQ"] == Engine(0, [])
    assert sample.power_mw["VDD_IN"] == (3140, 3208)
    assert sample.temperatures_c["thermal"] == 41.9 and sample.temperatures_c["Tdiode"] == 41.25
    assert "PMIC" in sample.disabled_sensors  # the TX2's fixed 100C placeholder
    assert sample.max_temperature_c() == 42.5


def test_agx_orin_timestamp_gpc_list_and_disabled_sensors(fixtures_dir: Path) -> None:
    (sample,) = load(fixtures_dir, "tegrastats_agx_orin_64gb_timestamped.txt")
    assert sample.timestamp == datetime(2025, 4, 11, 10, 36, 27)
    assert len(sample.cpus) == 12 and sample.cpus[11].freq_mhz == 729
    assert sample.engines["GR3D_FREQ"] == Engine(0, [0, 0])
    assert sample.engines["EMC_FREQ"] == Engine(0, [2133])
    assert sample.frequencies_mhz == {"VIC_FREQ": 729, "APE": 174}
    assert sorted(sample.disabled_sensors) == ["CV0", "CV1", "CV2", "GPU"]
    assert sample.temperatures_c["tj"] == 44.343 and sample.max_temperature_c() == 44.562
    assert sample.power_mw["VDD_GPU_SOC"] == (2340, 2340)


def test_orin_media_engines_and_off(fixtures_dir: Path) -> None:
    (sample,) = load(fixtures_dir, "tegrastats_orin_8gb_nvenc_nvdec.txt")
    assert sample.engines["NVENC"] == Engine(1, [115]) and sample.engines["NVDEC"] == Engine(40, [115])
    assert sample.engines["NVJPG"] == Engine(None, []) and sample.engines["PVA0_FREQ"] == Engine(None, [])
    assert sample.engines["GR3D_FREQ"] == Engine(84, [713])
    assert sample.cpus[5].freq_mhz == 247
    assert sample.temperatures_c["cpu"] == 65.562
    assert sample.power_mw == {"VDD_IN": (17946, 15710), "VDD_CPU_GPU_CV": (8896, 7585), "VDD_SOC": (3923, 3515)}
    assert (sample.swap_used_mb, sample.swap_total_mb) == (2640, 16384)


def test_off_cores_and_non_tegrastats_text() -> None:
    assert parse_line("RAM 1/2MB CPU [off,5%@100]").cpus[0].load_pct is None
    with pytest.raises(UnparsableOutput, match="not a tegrastats line"):
        parse_line("Error: tegrastats must be run as root")


# --- issue 13, class 3. SYNTHETIC lines in the published formats with garbled figures.
@pytest.mark.parametrize("line", ["12-99-2024 25:61:61 RAM 2020/7852MB CPU [9%@345]",
                                  "RAM " + "9" * 5000 + "/7852MB", "RAM 1/2MB CPU [" + "9" * 5000 + "%@345]"])
def test_garbled_figures_and_timestamps_are_refused_typed(line: str) -> None:
    with pytest.raises(UnparsableOutput, match="garbled"):
        parse_line(line)


def test_a_temperature_that_overflows_is_listed_as_disabled() -> None:
    sample = parse_line("RAM 1/2MB GPU@" + "9" * 400 + "C CPU@41C")
    assert sample.temperatures_c == {"CPU": 41.0} and sample.disabled_sensors == ["GPU"]
