"""nox for real: a Python 3.11 virtualenv per session, the fixture stack built into it, wheels reused
on the second run; h200_bench's no-GPU exit and dry run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gitrepo import GIT_ENV
from tests.integration.test_fixture_builds import repo_of

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"
pytestmark = pytest.mark.slow


def nox(tmp_path, *args, env=None, timeout=900) -> subprocess.CompletedProcess:
    full = {**os.environ, **GIT_ENV, "REBUILT_RECIPES_DIR": RECIPES, "REBUILT_NOX_SYSTEM_SITE": "1",
            "REBUILT_NOX_STACK": "fixture", "INVOKE_REBUILT_AUTO_BACKUP": "false", "PIP_NO_INDEX": "1",
            **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    return subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "--envdir",
                           str(tmp_path / ".nox"), *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)


def test_build_session_builds_then_reuses_wheels(tmp_path):
    repo = repo_of(tmp_path, "sglang_like", "sglang", "v0.5.4")
    env = {"INVOKE_REBUILT_SGLANG_URL": str(repo)}
    args = ("-s", "build(stack='fixture')", "--", "--jobs", "2", "--no-checks", "--workdir", str(tmp_path / "wd"))
    first = nox(tmp_path, *args, env=env)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-3000:]
    assert "sgl-kernel: built in" in out and "torch:keep" in out
    venv_python = next((tmp_path / ".nox").glob("build*/bin/python"))
    assert subprocess.run([str(venv_python), "-c", "import sys, sgl_kernel; print(sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip() == "(3, 11)"
    second = nox(tmp_path, *args, env=env)  # nox recreates the venv: the wheel comes from the wheelhouse
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "sgl-kernel: reused" in out and "sgl_kernel-0.3.16.post3" in out and "sgl-kernel: built in" not in out
    assert subprocess.run([str(venv_python), "-c", "import sgl_kernel"]).returncode == 0


def test_h200_bench_without_gpu_exits_fast_with_one_message(tmp_path):
    start = time.monotonic()
    r = nox(tmp_path, "-s", "h200_bench", "--", "--model-path", str(tmp_path), "--workdir", str(tmp_path / "wd"),
            env={"REBUILT_PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0
    assert time.monotonic() - start < 30
    out = r.stdout + r.stderr
    assert "nvidia-smi" in out and "Traceback" not in out


def test_h200_bench_dry_run_prints_every_command(tmp_path):
    r = nox(tmp_path, "-s", "h200_bench", "--", "--dry-run", "--model-path", "/models/Llama-3.1-8B-Instruct",
            "--workdir", str(tmp_path / "wd"), env={"REBUILT_PYTHON": sys.executable})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "gpu_health.py --json" in out and "sglang.bench_one_batch" in out
    assert "--batch-size 64" in out and "--mem-fraction-static 0.6" in out and "--disable-cuda-graph" in out
