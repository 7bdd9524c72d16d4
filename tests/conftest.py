"""Shared test fixtures: the project's copies of the public HELP latency table and of real tool outputs.

Both live inside the repository (``data/`` and ``tests/fixtures/``, provenance in their
README/SOURCES files), so a clone alone runs the whole suite with nothing skipped for want of data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
HELP_TABLE = REPO / "data" / "help_latency.parquet"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Real outputs of on-device tools (``tests/fixtures/SOURCES.md`` says where each came from)."""
    return FIXTURES


@pytest.fixture(scope="session")
def help_table_path() -> Path:
    """HELP's public latencies (``data/README.md``)."""
    return HELP_TABLE
