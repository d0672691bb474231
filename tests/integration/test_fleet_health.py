"""bench.health --hosts over real SSH: every GPU of every host measured, the slow GPU and host flagged.

The hosts have no GPU here: each host's target interpreter is a wrapper that answers the health script
(``rebuilt/tools/bench/gpu_health.py --json``, the one shipped to the host) with a report per
``CUDA_VISIBLE_DEVICES``, and runs everything else with this interpreter; nvidia-smi is the fixture's fake.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration import sshd
from tests.integration.test_fleet import ROOT

fleet_hosts = sshd.fleet_hosts  # the fixture

REPORT = ('{"matmul": {"tflops": TF}, "copy": {"gbps": GB}, "harness_ok": true, '
          '"device": {"name": "x"}}')


def python_of(fleet, host: str, slow_gpu: str | None, tflops=700.0, slow=450.0, gbps=4000.0) -> str:
    """A target interpreter for ``host`` whose health script reports ``tflops`` (``slow`` on ``slow_gpu``)."""
    path = fleet.hosts[host].root / "health-python"
    fast = REPORT.replace("TF", str(tflops)).replace("GB", str(gbps))
    slowed = REPORT.replace("TF", str(slow)).replace("GB", str(gbps))
    path.write_text(f"""#!/bin/sh
case "$1" in
  */rebuilt/tools/bench/gpu_health.py)
    echo "$@" >> {fleet.hosts[host].root}/health-calls
    if [ "$CUDA_VISIBLE_DEVICES" = "{slow_gpu}" ]; then echo '{slowed}'; else echo '{fast}'; fi; exit 0;;
esac
exec {sys.executable} "$@"
""")
    path.chmod(0o755)
    return str(path)


def run(fleet, hosts: dict, *args):
    env = fleet.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts))
    return subprocess.run([sys.executable, "-m", "invoke", "bench.health", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_slow_gpu_of_one_host_is_flagged(fleet_hosts, tmp_path):
    hosts = {n: {"host": n, "workdir": str(h.workdir),
                 "python": python_of(fleet_hosts, n, "1" if n == "gamma" else None)}
             for n, h in fleet_hosts.hosts.items() if n in ("alpha", "beta", "gamma")}
    r = run(fleet_hosts, hosts, "--hosts", "alpha,beta,gamma")
    assert r.returncode == 3, r.stdout + r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith(("alpha ", "beta ", "gamma "))
            and "NVIDIA" in line]
    assert len(rows) == 6  # every GPU of every host
    flagged = [(row[0], row[1]) for row in rows if row[-1] == "tflops"]
    assert flagged == [("gamma", "1")]
    assert "! gamma GPU 1 (NVIDIA H100 80GB HBM3): 450.0 TFLOP/s, 36% below the fleet's median (700.0)" in r.stdout
    # gamma's median of its two GPUs (575) is more than 10% below the fleet's (700): the host is flagged too
    assert "! host gamma: tflops median 575.0 TFLOP/s, 18% below the fleet's median (700.0)" in r.stdout
    assert "! host alpha" not in r.stdout and "gbps" not in r.stdout
    for n in ("alpha", "gamma"):
        calls = (fleet_hosts.hosts[n].root / "health-calls").read_text().splitlines()
        assert len(calls) == 2 and all(c.endswith("--json") for c in calls)


def test_a_whole_slow_host_is_flagged_in_json(fleet_hosts, tmp_path):
    hosts = {n: {"host": n, "workdir": str(fleet_hosts.hosts[n].workdir),
                 "python": python_of(fleet_hosts, n, None, tflops=400.0 if n == "beta" else 700.0)}
             for n in ("alpha", "beta", "gamma")}
    r = run(fleet_hosts, hosts, "--hosts", "alpha,beta,gamma", "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["medians"]["tflops"] == 700.0
    assert any(line.startswith("host beta: tflops median 400.0") for line in data["flagged"])
    assert [g["gpu"] for g in data["hosts"]["beta"]["gpus"]] == ["0", "1"]


def test_the_threshold_comes_from_the_bench_spec(fleet_hosts, tmp_path):
    """gamma's GPU 1 is 36% below the median: flagged at the setting's 10%, not at a spec's 40%."""
    hosts = {n: {"host": n, "workdir": str(fleet_hosts.hosts[n].workdir),
                 "python": python_of(fleet_hosts, n, "1" if n == "gamma" else None)} for n in ("alpha", "gamma")}
    lenient = tmp_path / "lenient.toml"
    lenient.write_text('kind = "one_batch"\nhealth_slower = 0.4\n')
    r = run(fleet_hosts, hosts, "--hosts", "alpha,gamma", "--spec", str(lenient))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"flagged: more than 40% below (health_slower of bench spec {lenient})" in r.stdout
    assert "!" not in r.stdout
    r = run(fleet_hosts, hosts, "--hosts", "alpha,gamma")  # the default spec declares none: the setting
    assert r.returncode == 3 and "more than 10% below (setting fleet.health_slower, from defaults" in r.stdout, r.stdout
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('kind = "one_batch"\nhealth_slower = 10\n')
    r = run(fleet_hosts, hosts, "--hosts", "alpha,gamma", "--spec", str(wrong))
    assert r.returncode == 2 and "health_slower" in r.stderr and "a fraction between 0 and 1" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
