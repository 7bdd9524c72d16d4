"""Proxies of a fixed arch are the same in another process (a fresh interpreter with its own thread pool)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from farm.proxies import NAMES
from farm.proxies.compute import score_arch
from farm.proxies.inputs import default_spec

REPO = Path(__file__).resolve().parents[3]
ARCH = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"

_CHILD = """
import json, sys
from farm.proxies import NAMES
from farm.proxies.compute import score_arch
from farm.proxies.inputs import default_spec
outcomes = score_arch("nasbench201", sys.argv[1], NAMES, default_spec("nasbench201"))
print(json.dumps({o.proxy: [o.status, None if o.value is None else o.value.hex()] for o in outcomes}))
"""


def test_a_fixed_arch_gives_bit_identical_proxies_in_another_process() -> None:
    here = {
        o.proxy: [o.status, None if o.value is None else o.value.hex()]
        for o in score_arch("nasbench201", ARCH, NAMES, default_spec("nasbench201"))
    }
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, ARCH], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    there = json.loads(child.stdout.strip().splitlines()[-1])
    assert there == here
    assert all(status == "ok" for status, _ in here.values())
