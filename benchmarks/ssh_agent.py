"""SSH agent overhead: what a job costs beyond the timed inferences, against a real sshd on 127.0.0.1.

Starts OpenSSH's sshd on a free port (the test peer of tests/agents), builds a few NAS-Bench-201
archs as ``.ptl``, and runs interleaved jobs through :class:`agents.ssh.SSHAgent`. Prints the
connect + first-probe time (SSH handshake, runner upload and start), the prepare time per
artifact (SFTP upload + load check), and per job the wall time, the time inside timed runs
and the difference: the farm's overhead (SSH round trip, JSON, warm-up runs, model loading).

    .venv/bin/python benchmarks/ssh_agent.py [--archs 4] [--jobs 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.ssh import HygieneSettings, SSHAgent, SSHSettings  # noqa: E402
from farm import spaces  # noqa: E402
from farm.build import build_artifact  # noqa: E402
from farm.protocol import make  # noqa: E402


def _sshd_peer():
    spec = importlib.util.spec_from_file_location("latfarm_tests_sshd_peer", ROOT / "tests" / "agents" / "sshd_peer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    peer = _sshd_peer()
    work = Path(tempfile.mkdtemp(prefix="latfarm-sshbench-"))
    try:
        daemon = peer.start_sshd(work / "sshd")
    except peer.SSHDUnavailable as error:
        print(f"benchmarks/ssh_agent.py: cannot start sshd ({error}); install openssh-server", file=sys.stderr)
        return 2
    try:
        space = spaces.get("nasbench201")
        artifacts = [build_artifact(space, a, "torchscript", 1, None, work / "cache") for a in space.sample(args.archs, seed=1)]
        protocol = make("interleaved", warmup=2, runs=5, rounds=3)
        settings = SSHSettings(
            host=daemon.host, port=daemon.port, user=daemon.user, key_file=str(daemon.client_key),
            known_hosts=str(daemon.known_hosts), python=sys.executable, workdir=str(work / "remote"),
        )
        started = time.perf_counter()
        agent = SSHAgent(settings, campaign_id="bench", hygiene=HygieneSettings(affinity=(0,)))
        agent.probe()
        connect_s = time.perf_counter() - started
        started = time.perf_counter()
        for artifact in artifacts:
            agent.prepare(artifact)
        prepare_s = (time.perf_counter() - started) / len(artifacts)
        jobs = []
        for seed in range(args.jobs):
            started = time.perf_counter()
            samples = agent.run(artifacts, protocol.schedule(len(artifacts), seed))
            wall = time.perf_counter() - started
            timed = sum(sum(runs) for runs in samples) / 1e3
            jobs.append({"wall_s": wall, "timed_s": timed, "overhead_s": wall - timed, "runner_s": agent.last_run.wall_s})
        agent.close()
    finally:
        daemon.stop()

    measurements = len(artifacts)
    overhead = statistics.median(j["overhead_s"] for j in jobs)
    report = {
        "archs_per_job": measurements,
        "timed_runs_per_arch": protocol.timed_runs(),
        "connect_and_first_probe_s": connect_s,
        "prepare_per_artifact_s": prepare_s,
        "median_job_wall_s": statistics.median(j["wall_s"] for j in jobs),
        "median_job_timed_s": statistics.median(j["timed_s"] for j in jobs),
        "median_job_overhead_s": overhead,
        "median_overhead_per_measurement_ms": overhead / measurements * 1e3,
        "median_outside_runner_ms": statistics.median((j["wall_s"] - j["runner_s"]) for j in jobs) * 1e3,
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<38} {value:.3f}" if isinstance(value, float) else f"{key:<38} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
