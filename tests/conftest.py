"""Shared fixtures: isolated settings, a fake machine (tests/unit/conftest.py keeps the unit tier free of processes)."""

from __future__ import annotations

import pytest

from rebuilt.core import settings as settings_mod
from rebuilt.core.machine import Machine, PythonInfo

H200 = {"name": "NVIDIA H200", "compute_cap": "9.0", "memory_mib": "143771", "driver": "580.159.04"}


def fake_machine(*, gpus=(H200,), nvshmem=None, torch="2.8.0a0+git5228986", cpus=64, mem=512.0, **tools) -> Machine:
    py = PythonInfo(executable="/opt/env/bin/python", version="3.11.9", prefix="/opt/env", base_prefix="/usr",
                    purelib="/opt/env/lib/python3.11/site-packages",
                    packages={"torch": torch, "uv": "0.5.0"}, torch={"version": torch, "cuda": "12.9"},
                    nvshmem=nvshmem)
    base = {"gcc": "12.3.0", "g++": "12.3.0", "cmake": "3.31.0", "ninja": "1.11.1", "make": "4.3", "git": "2.43.0",
            "uv": "0.5.0", "ccache": "4.10"}
    base.update(tools)
    return Machine(python=py, tools=base, cuda_home="/usr/local/cuda-12.9", nvcc_version="12.9", cpus=cpus,
                   mem_available_gb=mem, mem_total_gb=mem * 2, gpus=list(gpus))


@pytest.fixture
def resolve(tmp_path, monkeypatch):
    """settings.resolve isolated from the user's invoke.yaml and env, target python /opt/env/bin/python."""
    monkeypatch.delenv("CONDA_PREFIX", raising=False)

    def _resolve(flags=None, environ=None, **kw):
        flags = {"python": "/opt/env/bin/python", "workdir": str(tmp_path / "wd"), **(flags or {})}
        return settings_mod.resolve(flags, cwd=tmp_path, home=tmp_path / "home", environ=environ or {}, **kw)

    return _resolve
