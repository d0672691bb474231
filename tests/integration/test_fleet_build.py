"""fleet.build over real SSH: wheels of a finished build shipped to each host's own environment, installed
through the guard and verified file by file; a failing host named with its log, --fail-fast, torch refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.fakewheels import wheel_of_files
from tests.integration import sshd
from tests.integration.test_fleet import ROOT

fleet_hosts, spare_host = sshd.fleet_hosts, sshd.spare_host  # the fixtures


@pytest.fixture(scope="module")
def envs(tmp_path_factory, fleet_hosts):
    """A target environment per host (alpha, beta), and one without pip (broken)."""
    root = tmp_path_factory.mktemp("envs")
    out = {name: make_venv(root / name) for name in ("alpha", "beta")}
    venv.EnvBuilder(with_pip=False).create(root / "nopip")
    out["nopip"] = root / "nopip" / "bin" / "python"
    return out


def built(wd: Path, recipe: str, dist: str, version: str, files: dict | None = None) -> Path:
    """A finished build of ``recipe`` as rebuilt records it: its wheel in the wheelhouse, a manifest."""
    from rebuilt.core import fs

    files = {f"{dist.replace('-', '_')}/__init__.py": f"V = {version!r}\n", **(files or {})}
    whl = wheel_of_files(wd / "wheels", dist, version, files)
    data = {"schema_version": 1, "kind": "build", "run_id": "20260101-000000-1", "recipe": recipe,
            "status": "done", "artifacts": [{"path": str(whl), "sha256": fs.sha256_file(whl)}]}
    (wd / "manifests").mkdir(parents=True, exist_ok=True)
    (wd / "manifests" / f"20260101-000000-1-{recipe}.json").write_text(json.dumps(data))
    return whl


def inv(fleet, hosts: dict, *args, timeout=300):
    env = fleet.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts), INVOKE_REBUILT_AUTO_BACKUP="false")
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def entry(fleet, name, python, alias=None):
    return {"host": alias or name, "python": str(python), "workdir": str(fleet.hosts[alias or name].workdir)}


def test_build_installs_the_same_files_on_every_host(fleet_hosts, envs, tmp_path):
    wd = tmp_path / "wd"
    whl = built(wd, "sgl-kernel", "sgl-kernel", "0.3.16")
    hosts = {"alpha": entry(fleet_hosts, "alpha", envs["alpha"]), "beta": entry(fleet_hosts, "beta", envs["beta"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha,beta", "--recipe", "sgl-kernel", "--no-build",
            "-w", str(wd))
    assert r.returncode == 0, r.stdout + r.stderr
    from rebuilt.core import fs

    sha = fs.sha256_file(whl)[:12]
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines() if line.startswith(("alpha ", "beta "))
            and sha in line}
    assert rows == {"alpha": ["0.3.16", sha, "ok"], "beta": ["0.3.16", sha, "ok"]}, r.stdout
    for name in ("alpha", "beta"):
        out = subprocess.run([str(envs[name]), "-c", "import sgl_kernel; print(sgl_kernel.V, sgl_kernel.__file__)"],
                             capture_output=True, text=True, cwd="/")
        assert out.stdout.startswith("0.3.16 " + str(envs[name].parent.parent)), out.stderr
        assert list((wd / "fleet").glob(f"*/{name}/install.log"))  # each host's pip log came back


def test_a_failing_host_is_named_with_its_log_and_the_others_finish(fleet_hosts, envs, tmp_path):
    wd = tmp_path / "wd"
    built(wd, "sgl-kernel", "sgl-kernel", "0.3.17")
    hosts = {"alpha": entry(fleet_hosts, "alpha", envs["alpha"]), "beta": entry(fleet_hosts, "beta", envs["nopip"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha,beta", "--recipe", "sgl-kernel", "--no-build",
            "-w", str(wd))
    assert r.returncode == 1, r.stdout + r.stderr
    beta = next(line for line in r.stdout.splitlines() if line.startswith("beta "))
    assert "failed" in beta and "pip exited 1" in beta
    assert "install.log: " in r.stdout and "No module named pip" in r.stdout  # the log's lines, named
    assert any(line.startswith("alpha ") and "ok" in line for line in r.stdout.splitlines())
    assert "1 host(s) did not finish: beta (failed)" in r.stderr


def test_fail_fast_stops_the_other_hosts(fleet_hosts, envs, spare_host, tmp_path):
    wd = tmp_path / "wd"
    built(wd, "sgl-kernel", "sgl-kernel", "0.3.18")
    slow = spare_host.root / "slow-python"
    slow.write_text(f"#!/bin/sh\nsleep 120\nexec {envs['alpha']} \"$@\"\n")
    slow.chmod(0o755)
    hosts = {"beta": entry(fleet_hosts, "beta", envs["nopip"]),
             spare_host.name: entry(fleet_hosts, spare_host.name, slow)}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", f"beta,{spare_host.name}", "--recipe", "sgl-kernel",
            "--no-build", "--fail-fast", "-w", str(wd), timeout=100)
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith(spare_host.name))
    assert "stopped" in line and "--fail-fast" in line and "after beta failed" in line
    deadline = time.monotonic() + 10  # gone within seconds: the stopping shell itself may still be exiting
    while spare_host.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert spare_host.processes() == []


def test_a_protected_torch_is_never_installed_on_a_host(fleet_hosts, envs, tmp_path):
    wd = tmp_path / "wd"
    built(wd, "torch", "torch", "9.9.9")
    hosts = {"alpha": entry(fleet_hosts, "alpha", envs["alpha"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha", "--recipe", "torch", "--no-build", "-w", str(wd))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "refused: torch is protected on every host" in r.stdout
    out = subprocess.run([str(envs["alpha"]), "-c", "import torch; print(torch.__version__)"], capture_output=True,
                         text=True, cwd="/")
    assert not out.stdout.startswith("9.9.9")
