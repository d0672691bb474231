"""fleet.build --build-on over real SSH: the build runs on one host (a real rebuilt build of a fixture recipe
from a git checkout), its manifest, logs and wheel come back here, and every host gets that wheel installed
and verified; with --bundle the build host gets an src.bundle made here and builds --offline; mistakes in
the flags are bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.gitrepo import commit, git, make_repo
from tests.integration import sshd
from tests.integration.test_fleet import ROOT
from tests.integration.test_fleet_build import entry, envs  # noqa: F401 - envs is a fixture

fleet_hosts = sshd.fleet_hosts  # the fixture
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'fleet_recipes'}{os.pathsep}{ROOT / 'recipes'}"
MAKE_WHEEL = '''import base64, hashlib, pathlib, zipfile
files = {"fleet_wheel/__init__.py": "V = 'VERSION'\\n",
         "fleet_wheel-VERSION.dist-info/METADATA": "Metadata-Version: 2.1\\nName: fleet-wheel\\nVersion: VERSION\\n",
         "fleet_wheel-VERSION.dist-info/WHEEL": "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
rec = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},{len(t)}"
       for n, t in files.items()]
files["fleet_wheel-VERSION.dist-info/RECORD"] = "\\n".join(rec + ["fleet_wheel-VERSION.dist-info/RECORD,,"]) + "\\n"
pathlib.Path("dist").mkdir(exist_ok=True)
with zipfile.ZipFile("dist/fleet_wheel-VERSION-py3-none-any.whl", "w") as z:
    for n, t in files.items():
        z.writestr(n, t)
print("built on", pathlib.Path.home())
'''


def source(tmp_path: Path, version: str) -> Path:
    repo = make_repo(tmp_path / "fleet_wheel", {"make_wheel.py": MAKE_WHEEL.replace("VERSION", version)})
    commit(repo, "v1")
    git(repo, "tag", "v1")
    return repo


def inv(fleet, hosts, *args, timeout=300):
    env = fleet.env(INVOKE_REBUILT_FLEET_HOSTS=json.dumps(hosts), INVOKE_REBUILT_AUTO_BACKUP="false",
                    REBUILT_RECIPES_DIR=RECIPES)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def installed(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import fleet_wheel; print(fleet_wheel.V)"], capture_output=True,
                          text=True, cwd="/").stdout.strip()


def test_build_on_the_first_host_then_install_it_everywhere(fleet_hosts, envs, tmp_path):  # noqa: F811
    wd = tmp_path / "wd"
    repo = source(tmp_path, "1.0.1")
    hosts = {"alpha": entry(fleet_hosts, "alpha", envs["alpha"]), "beta": entry(fleet_hosts, "beta", envs["beta"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha,beta", "--build-on", "first", "--recipe",
            "fleet-wheel", "-w", str(wd), "--set", f"fleet-wheel.url={repo}", "--set", "checks=false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "building fleet-wheel on alpha" in r.stdout
    assert not (wd / "manifests").exists()  # nothing was built here
    back = list((wd / "fleet").glob("*/alpha/manifests/*-fleet-wheel.json"))
    assert len(back) == 1  # the build host's manifest came back
    assert list((wd / "fleet").glob("*/alpha/wheels/fleet_wheel-1.0.1-py3-none-any.whl"))
    logs = list((wd / "fleet").glob("*/alpha/logs/*"))
    assert any("built on " + str(fleet_hosts.hosts["alpha"].home) in p.read_text() for p in logs), logs
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith(("alpha ", "beta ")) and "1.0.1" in line]
    assert [(x[0], x[1], x[3]) for x in rows] == [("alpha", "1.0.1", "ok"), ("beta", "1.0.1", "ok")], r.stdout
    assert installed(envs["alpha"]) == installed(envs["beta"]) == "1.0.1"
    assert list((wd / "fleet").glob("*/beta/install.log"))


def test_build_on_a_host_without_network_from_a_bundle(fleet_hosts, envs, tmp_path):  # noqa: F811
    wd = tmp_path / "wd"
    repo = source(tmp_path, "1.0.2")
    bundle = tmp_path / "fw.bundle.tar"
    env = {**fleet_hosts.env(REBUILT_RECIPES_DIR=RECIPES)}
    made = subprocess.run([sys.executable, "-m", "invoke", "src.bundle", "--recipe", "fleet-wheel", "-o", str(bundle),
                           "-w", str(tmp_path / "bundlewd"), "--set", f"fleet-wheel.url={repo}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    repo.rename(tmp_path / "gone")  # the build host cannot fetch the source: only the bundle has it
    hosts = {"beta": entry(fleet_hosts, "beta", envs["beta"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "beta", "--build-on", "beta", "--bundle", str(bundle),
            "--recipe", "fleet-wheel", "-w", str(wd), "--set", f"fleet-wheel.url={repo}", "--set", "checks=false")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "from fw.bundle.tar (offline)" in r.stdout
    assert installed(envs["beta"]) == "1.0.2"
    assert list((wd / "fleet").glob("*/beta/src.unbundle.log"))


def test_a_failed_build_on_the_build_host_is_named_and_nothing_is_installed(fleet_hosts, envs, tmp_path):  # noqa: F811
    wd = tmp_path / "wd"
    repo = make_repo(tmp_path / "fleet_wheel", {"make_wheel.py": "raise SystemExit('error: no compiler for vfail')\n"})
    commit(repo, "broken")
    git(repo, "tag", "vfail")
    hosts = {"alpha": entry(fleet_hosts, "alpha", envs["alpha"]), "beta": entry(fleet_hosts, "beta", envs["beta"])}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha,beta", "--build-on", "beta", "--recipe",
            "fleet-wheel", "-w", str(wd), "--set", f"fleet-wheel.url={repo}", "--set", "fleet-wheel.ref=vfail",
            "--set", "checks=false")
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(line for line in r.stdout.splitlines() if line.startswith("beta "))
    assert "failed" in line and "build.fleet-wheel exited" in line
    assert "no compiler for vfail" in r.stdout  # the build's first error lines, named
    assert "1 host(s) did not finish: beta (failed)" in r.stderr
    assert not list((wd / "fleet").glob("*/alpha/install.log"))


def test_build_on_flag_mistakes_are_bad_input(fleet_hosts, tmp_path):
    hosts = {"alpha": "alpha", "beta": "beta"}
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha", "--bundle", str(tmp_path / "x.tar"))
    assert r.returncode == 2 and "--bundle needs --build-on HOST" in r.stderr, r.stderr
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha", "--build-on", "alpha", "--bundle",
            str(tmp_path / "x.tar"))
    assert r.returncode == 2 and "no such file" in r.stderr, r.stderr
    r = inv(fleet_hosts, hosts, "fleet.build", "--hosts", "alpha", "--build-on", "alpha,beta")
    assert r.returncode == 2 and "names 2 hosts" in r.stderr, r.stderr
