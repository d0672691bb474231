"""The unit tier starts no process: any attempt fails the test that makes it.

Tests that need git, a venv, the `inv`/`rebuilt` program or a server belong in tests/integration.
"""

from __future__ import annotations

import os
import subprocess

import pytest


class ProcessStarted(AssertionError):
    pass


def _refuse(*args, **kwargs):
    raise ProcessStarted("a unit test started a process: move it to tests/integration "
                         f"(or give the code under test a fake): {args[:2]!r}")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve", "execvp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse)
