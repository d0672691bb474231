"""fleet.doctor and fleet.build (install) on three hosts vs one host: the fleet runs its hosts in parallel.

Starts three real sshd hosts on loopback (as the tests do: tests/integration/sshd.py), runs
``inv doctor`` here, ``inv fleet.doctor --hosts alpha`` and ``--hosts alpha,beta,gamma`` (``--offline``:
no network probes), then ``inv fleet.build --no-build`` of two built components (wheels of 2 MB each, one
target environment per host) on one host and on three, ``--repeat`` times each after one warm-up run that
ships rebuilt and the wheels to every host, and prints the medians and the ratios of three hosts to one
(target <= 1.5 for both).

The three "hosts" share this machine's CPUs: each host's doctor takes CPU time of its own here, which
separate machines would not share; on a machine with fewer than ~3 idle cores the ratio measures that
sharing too. Usage: python perf/fleet.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.envs import make_venv  # noqa: E402
from tests.integration.sshd import make_fleet  # noqa: E402 - the same hosts as the tests
from tests.integration.test_fleet_build import built  # noqa: E402 - a finished build, as rebuilt records it

BUILD = ["--recipe", "sgl-kernel,flashinfer", "--no-build", "--force"]


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode not in (0, 3):
        sys.exit(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is shown)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fleet-perf-"))
    fleet = make_fleet(root / "hosts")
    try:
        envs = {n: make_venv(root / "envs" / n) for n in fleet.hosts}
        hosts = {n: {"host": n, "python": str(envs[n]), "workdir": str(h.workdir)} for n, h in fleet.hosts.items()}
        for recipe, dist in (("sgl-kernel", "sgl-kernel"), ("flashinfer", "flashinfer-python")):
            payload = {f"{dist.replace('-', '_')}/blob{i}.py": os.urandom(100_000).hex() for i in range(10)}
            built(root / "wd", recipe, dist, "1.0", payload)
        env = fleet.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts))
        inv = [sys.executable, "-m", "invoke"]
        wd = ["-w", str(root / "wd")]
        commands = {
            "inv doctor (here)": [*inv, "doctor", "--offline", "--json", *wd],
            "fleet.doctor, 1 host": [*inv, "fleet.doctor", "--hosts", "alpha", "--offline", "--force", *wd],
            "fleet.doctor, 3 hosts": [*inv, "fleet.doctor", "--hosts", "alpha,beta,gamma", "--offline", "--force", *wd],
            "fleet.build, 1 host": [*inv, "fleet.build", "--hosts", "alpha", *BUILD, *wd],
            "fleet.build, 3 hosts": [*inv, "fleet.build", "--hosts", "alpha,beta,gamma", *BUILD, *wd],
        }
        timed(commands["fleet.build, 3 hosts"], env)  # ships rebuilt and the wheels to every host once
        medians = {}
        for name, argv in commands.items():
            runs = [timed(argv, env) for _ in range(args.repeat)]
            medians[name] = statistics.median(runs)
            print(f"{name:<24} median {medians[name]:.2f} s  (runs: {', '.join(f'{r:.2f}' for r in runs)})")
        for what in ("fleet.build", "fleet.doctor"):
            ratio = medians[f"{what}, 3 hosts"] / medians[f"{what}, 1 host"]
            print(f"{what}: 3 hosts / 1 host: {ratio:.2f} (target <= 1.5)")
        print(f"fleet.doctor, 3 hosts / local doctor: {medians['fleet.doctor, 3 hosts'] / medians['inv doctor (here)']:.2f}; "
              f"{os.cpu_count()} CPUs here")
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
