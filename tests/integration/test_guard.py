"""The custom torch is never lost: real venv, real torch 2.13.0, real pip, real wheels.

One venv (seeing the system site-packages for torch's own dependencies) gets its own
copy of torch 2.13.0; the tests back it up, remove it, restore it, and let build
steps try to replace it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.envs import make_venv
from tests.fakewheels import wheel_of_files as make_wheel

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
pytestmark = pytest.mark.slow


def run(*argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=900, **kw)


def inv(*args, env=None) -> subprocess.CompletedProcess:
    full = {**os.environ, "REBUILT_RECIPES_DIR": RECIPES, **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    return run(sys.executable, "-m", "invoke", *args, cwd=ROOT, env=full)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("guard")
    path = base / "venv"
    py = make_venv(path)
    r = run(py, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", "torch==2.13.0")
    assert r.returncode == 0, r.stderr
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    return {"python": py, "site": site, "base": base, "backups": base / "backups"}


def torch_in_venv(env) -> str | None:
    r = run(env["python"], "-c", "import torch; print(torch.__version__, torch.__file__)")
    version, _, where = r.stdout.strip().partition(" ")
    return version if where.startswith(str(env["site"])) else None


def test_backup_uninstall_restore(env):
    r = inv("torch.backup", "--python", env["python"], "-o", env["backups"])
    assert r.returncode == 0, r.stderr
    [wheel] = env["backups"].glob("torch-2.13.0+cpu-cp311-cp311-*.whl")
    assert not wheel.name.endswith("py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert not any("__pycache__" in n or n.endswith((".pyc", "/INSTALLER", "/direct_url.json")) for n in names)
    check = inv("torch.check", "--python", env["python"], env={"INVOKE_REBUILT_BACKUP_DIR": str(env["backups"])})
    assert "matches" in check.stdout and "2.13.0+cpu" in check.stdout, check.stdout + check.stderr
    assert run(env["python"], "-m", "pip", "uninstall", "-y", "torch").returncode == 0
    assert torch_in_venv(env) is None and not (env["site"] / "torch").exists()
    r = inv("torch.restore", "--wheel", str(wheel), "--python", env["python"], "--workdir", env["base"] / "wd")
    assert r.returncode == 0, r.stderr
    assert "version and" in r.stdout and "file hashes verified" in r.stdout
    assert torch_in_venv(env) == "2.13.0+cpu"
    assert run(env["python"], "-c", "import torch; print(torch.ones(2).sum().item())").stdout.strip() == "2.0"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "badhash", "misnamed"])
def test_crafted_wheels_are_refused_before_touching_the_env(env, tmp_path, kind):
    extra, name, version = None, "torch", "2.13.0+cpu"
    if kind == "dotdot":
        extra = [("../../evil.py", "x")]
    elif kind == "absolute":
        extra = [("/tmp/evil.py", "x")]
    elif kind == "symlink":
        info = zipfile.ZipInfo("torch/link")
        info.external_attr = (0o120777 << 16)
        extra = [(info, "/etc/passwd")]
    wheel = make_wheel(tmp_path, name, version, {"torch/__init__.py": "__version__ = 'fake'\n"}, extra=extra)
    if kind == "badhash":
        with zipfile.ZipFile(wheel) as zf:
            items = {n: zf.read(n) for n in zf.namelist()}
        items["torch/__init__.py"] = b"__version__ = 'tampered'\n"
        with zipfile.ZipFile(wheel, "w") as zf:
            for n, data in items.items():
                zf.writestr(n, data)
    if kind == "misnamed":
        wheel = wheel.rename(wheel.with_name("torch-2.5.1-py3-none-any.whl"))
    before = torch_in_venv(env)
    r = inv("torch.restore", "--wheel", str(wheel), "--python", env["python"], "--workdir", env["base"] / "wd")
    assert r.returncode == 2, r.stdout + r.stderr
    expect = {"dotdot": "'..' component", "absolute": "absolute path", "symlink": "symbolic link",
              "badhash": "does not match its RECORD hash", "misnamed": "METADATA says"}[kind]
    assert expect in r.stderr and "Traceback" not in r.stderr
    assert torch_in_venv(env) == before


def test_backup_killed_halfway_leaves_no_wheel(env, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "torch.backup", "--python", str(env["python"]),
                             "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        parts = list(out.glob(".*.part")) if out.exists() else []
        if parts and parts[0].stat().st_size > 20_000_000:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("backup never started writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(out.glob("*.whl"))


def _settings_env(env):
    return {"INVOKE_REBUILT_BACKUP_DIR": str(env["backups"]), "INVOKE_REBUILT_PYTHON": str(env["python"]),
            "PIP_NO_INDEX": "1"}


def test_a_step_pinning_another_torch_is_refused_by_the_constraints(env, tmp_path):
    links = tmp_path / "links"
    make_wheel(links, "torch_pinner", "1.0", {"torch_pinner.py": ""}, requires=["torch==2.5.1"])
    r = inv("build.guard-pin", "--workdir", tmp_path / "wd", "--no-checks", "--set", f"guard-pin.find_links={links}",
            env=_settings_env(env))
    assert r.returncode == 1 and "guard-pin:install failed" in r.stderr, r.stdout + r.stderr
    assert torch_in_venv(env) == "2.13.0+cpu"
    assert "torch==2.13.0+cpu" in (tmp_path / "wd" / "state" / "constraints.txt").read_text()


def test_a_step_that_replaces_torch_is_failed_and_torch_restored(env, tmp_path):
    fake = make_wheel(tmp_path / "fake", "torch", "2.5.1", {"torch/__init__.py": "__version__ = '2.5.1'\n"})
    r = inv("build.guard-swap", "--workdir", tmp_path / "wd", "--no-checks", "--set", f"guard-swap.wheel={fake}",
            env=_settings_env(env))
    assert r.returncode == 4, r.stdout + r.stderr
    assert "step guard-swap:swap changed protected distributions" in r.stderr
    assert "torch 2.13.0+cpu -> 2.5.1" in r.stderr and "restored from" in r.stderr
    assert torch_in_venv(env) == "2.13.0+cpu"


def test_a_torch_pinning_package_installs_through_the_protected_path(env, tmp_path):
    links = tmp_path / "links"
    make_wheel(links, "pinned_helper", "1.0", {"pinned_helper.py": "OK = 1\n"})
    project = tmp_path / "project"
    (project / "proj").mkdir(parents=True)
    (project / "proj" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "proj"\nversion = "0.1"\n'
        'dependencies = ["torch==2.8.0", "torchaudio==2.8.0", "pinned-helper>=1"]\n'
        '[tool.setuptools]\npackages = ["proj"]\n')
    r = inv("build.guard-protected", "--workdir", tmp_path / "wd", "--no-checks",
            "--set", f"guard-protected.project={project}", "--set", f"guard-protected.find_links={links}",
            env={**_settings_env(env), "PIP_NO_BUILD_ISOLATION": "0"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dropped (protected): torch==2.8.0" in r.stdout and "torchaudio==2.8.0" in r.stdout
    assert run(env["python"], "-c", "import proj, pinned_helper; print(pinned_helper.OK)").stdout.strip() == "1"
    assert torch_in_venv(env) == "2.13.0+cpu"


def test_editable_install_is_refused_with_how_to_make_a_wheel(env, tmp_path):
    project = tmp_path / "edit"
    (project / "editme").mkdir(parents=True)
    (project / "editme" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "editme"\nversion = "0.1"\n[tool.setuptools]\npackages = ["editme"]\n')
    r = run(env["python"], "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", project)
    assert r.returncode == 0, r.stderr
    b = inv("torch.backup", "--dist", "editme", "--python", env["python"], "-o", tmp_path / "bk")
    assert b.returncode == 2 and "editable" in b.stderr and "bdist_wheel" in b.stderr, b.stderr
    assert not list((tmp_path / "bk").glob("*.whl")) if (tmp_path / "bk").exists() else True
