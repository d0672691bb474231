"""The `rebuilt` program: works from any folder, finds the project's invoke.yaml and work dir the same
way from a subfolder, and a non-editable install (what pipx makes) carries the recipes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs import make_venv

ROOT = Path(__file__).resolve().parents[2]


def rebuilt(*args: str, cwd: Path, exe: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    return subprocess.run([*(exe or [sys.executable, "-m", "rebuilt.cli"]), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_lists_tasks_outside_any_project(tmp_path):
    r = rebuilt("--list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "build.sgl-kernel" in r.stdout and "Can't find any collection" not in r.stderr


def test_a_subfolder_uses_the_project_invoke_yaml_and_work_dir(tmp_path):
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  jobs: 3\n")
    deeper = tmp_path / "notes" / "today"
    deeper.mkdir(parents=True)
    for cwd in (tmp_path, deeper):
        r = rebuilt("build.sgl-kernel", "--dry-run", cwd=cwd)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"workdir  {tmp_path / '.rebuilt'}" in r.stdout
        assert "sgl-kernel: 3 (" in r.stdout
    # the checkout itself is a project too (tasks.py): inv and rebuilt agree from its subfolders
    r = rebuilt("build.sgl-kernel", "--dry-run", cwd=ROOT / "docs")
    assert f"workdir  {ROOT / '.rebuilt'}" in r.stdout, r.stdout


def test_a_malformed_invoke_yaml_is_one_message(tmp_path):
    (tmp_path / "invoke.yaml").write_text("rebuilt: [unclosed\n")
    r = rebuilt("config", cwd=tmp_path)
    assert r.returncode == 2 and "invoke.yaml" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_a_non_editable_install_carries_recipes_and_specs(tmp_path):
    env_dir = tmp_path / "pipx-like"
    py = make_venv(env_dir)  # sees invoke and the other dependencies of this interpreter
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    exe = [str(env_dir / "bin" / "rebuilt")]
    share = env_dir / "share" / "rebuilt"
    assert (share / "recipes" / "sgl-kernel.toml").is_file() and (share / "recipes" / "stacks" / "aiak.toml").is_file()
    # the target named outside the checkout: the active environment (nox's, under CI) may live inside it
    r = rebuilt("build.stack", "--dry-run", "--stack", "sglang-0.5.4", "--python", str(py), cwd=tmp_path, exe=exe)
    assert r.returncode == 0 and "sgl-kernel:fetch" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    assert str(ROOT) not in r.stdout.split("workdir")[0]  # not reading this checkout's recipes
    h = rebuilt("bench.run", "--help", cwd=tmp_path, exe=exe)
    assert h.returncode == 0 and "bench.run" in h.stdout


def test_malformed_user_config_files_are_one_message(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    for name in (".rebuilt.yaml", ".invoke.yaml"):
        (home / name).write_text("rebuilt: [unclosed\n")
        r = subprocess.run([sys.executable, "-m", "rebuilt.cli", "config"], cwd=tmp_path, env={**env, "HOME": str(home)},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and name in r.stderr and "Traceback" not in r.stderr, r.stderr
        (home / name).unlink()
