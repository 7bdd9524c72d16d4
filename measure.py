#!/usr/bin/env python3
"""Measure NAS architectures on the devices of ``inventory.yaml``; rows go to a Parquet store.

On one machine (the default inventory holds this machine's CPU)::

    python measure.py                                  # 8 sampled NAS-Bench-201 archs
    python measure.py --space nasbench201 --sample 100 --devices cpu-local

On a Ray cluster (``cluster.yaml``), the same script, unchanged::

    ray submit cluster.yaml measure.py -- --space nasbench201 --sample 500

Re-running resumes: archs already measured ``ok`` are skipped. See ``--help``.
"""

import sys

from farm.measure_command import main

if __name__ == "__main__":
    sys.exit(main())
