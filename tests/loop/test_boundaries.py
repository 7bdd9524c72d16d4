"""Module boundaries: neither farm nor trainer imports loop (the package that joins them), not even lazily."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: ``import loop``, ``from loop...``, and any string naming a loop module (importlib, __import__, plugin lists).
LOOP_REFERENCE = re.compile(r"^\s*(import\s+loop\b|from\s+loop\b)|[\"']loop(\.[a-z_]+)*[\"']", re.MULTILINE)


def test_no_farm_or_trainer_source_mentions_a_loop_import() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for package in ("farm", "trainer", "agents")
        for path in sorted((REPO / package).rglob("*.py"))
        for match in LOOP_REFERENCE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_importing_farm_and_trainer_entry_points_loads_no_loop_module() -> None:
    code = (
        "import sys, farm.cli, farm.run, farm.importer, trainer.cli, trainer.workflow, trainer.nightly\n"
        "farm.cli.build_parser(); trainer.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m == 'loop' or m.startswith('loop.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
