"""The upstream tier: the real recipes on the real published sources (marker ``upstream``).

Sources come from ``tests/upstream/sdists.py`` (package index sdists, cached, laid out like their
checkouts, tagged). Targets are venvs made here with this machine's CPU torch 2.13.0 (installed once
from local disk into a cached base venv, copied per test). Tests run the real ``inv`` tasks as far as
a machine without a GPU allows and check that the CPU torch is unchanged (version and RECORD hash).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from rebuilt.build import guard
from tests.upstream.sdists import CACHE, cache_lock

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
TORCH = "torch==2.13.0"
PROTECTED = ["torch", "torchvision", "torchaudio", "triton"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.upstream)


def _base_venv() -> Path:
    """A venv holding only pip and the CPU torch, made once (torch installs from this machine's disk), by one
    test process while the others wait."""
    base = CACHE / "venvs" / f"torch-2.13.0-py{sys.version_info[0]}.{sys.version_info[1]}"
    python = base / "bin" / "python"
    with cache_lock(base.name):
        if python.exists() and subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0:
            return base
        tmp = base.with_name(f"{base.name}.{os.getpid()}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(tmp)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", TORCH], check=True)
        shutil.rmtree(base, ignore_errors=True)
        tmp.rename(base)  # a venv's scripts name their folder: only `python -m pip` is used on copies
    return base


@pytest.fixture
def torch_venv(tmp_path) -> str:
    """A fresh copy of the base venv: the absolute path of its python."""
    target = tmp_path / "venv"
    shutil.copytree(_base_venv(), target, symlinks=True)
    return str(target / "bin" / "python")


@pytest.fixture
def torch_state():
    """(python) -> the protected distributions installed there, with the RECORD hash of each."""
    return lambda python: guard.snapshot(python, PROTECTED)


def inv(*args: str, env: dict | None = None, timeout: int = 1500) -> subprocess.CompletedProcess:
    """The real CLI. Torch backups are off (packing the 900 MB CPU torch would dominate the tier's time);
    the guard still checks every step and the tests compare torch's RECORD hash themselves."""
    full = {**os.environ, "INVOKE_REBUILT_AUTO_BACKUP": "false", **(env or {})}
    full.pop("PIP_CONSTRAINT", None)
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


def pip_list(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    return {k.lower(): v for k, v in (line.split("==", 1) for line in out.split() if "==" in line)}
