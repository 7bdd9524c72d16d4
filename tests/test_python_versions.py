"""Python versions: the package runs on Python 3.10 (Jetson hosts on JetPack 6), the board runner on 3.7.

``vermin`` reads the source and names every construct that needs a newer Python
(``hashlib.file_digest`` is 3.11, a walrus 3.8, ``list[int]`` evaluated at runtime 3.9).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _vermin(target: str, *paths: str, annotations: bool = True) -> subprocess.CompletedProcess[str]:
    flags = ["--eval-annotations"] if annotations else []
    vermin = str(Path(sys.executable).parent / "vermin")
    return subprocess.run([vermin, "--no-tips", "--violations", f"-t={target}-", *flags, *paths],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_package_needs_at_most_python_3_10() -> None:
    result = _vermin("3.10", "farm", "agents", "trainer", "loop", "measure.py")
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_standalone_board_runner_needs_at_most_python_3_7() -> None:
    # Its annotations are strings (``from __future__ import annotations``) and never evaluated on the board.
    result = _vermin("3.7", "agents/runner.py", annotations=False)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("snippet", ["import hashlib\nhashlib.file_digest(open('x', 'rb'), 'sha256')\n"])
def test_the_checker_does_catch_a_3_11_construct(tmp_path: Path, snippet: str) -> None:
    (tmp_path / "new.py").write_text(snippet)
    assert _vermin("3.10", str(tmp_path / "new.py")).returncode != 0
