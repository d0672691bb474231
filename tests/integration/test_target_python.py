"""The target interpreter as a pipx user meets it: rebuilt running from its own (not activated) virtual
environment never builds into it unless told to; every plan and `config` say which rule chose the target."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.envs import make_venv

ROOT = Path(__file__).resolve().parents[2]


def run(python: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("INVOKE_REBUILT_", "REBUILT_", "VIRTUAL_ENV", "CONDA"))}
    base["PYTHONPATH"] = str(ROOT)  # this checkout's rebuilt, as if installed into that environment
    return subprocess.run([str(python), "-m", "rebuilt.cli", *args], cwd=cwd, env={**base, **env},
                          capture_output=True, text=True, timeout=300)


def test_rebuilt_s_own_environment_is_a_target_only_when_named(tmp_path):
    tool = make_venv(tmp_path / "pipx" / "venvs" / "rebuilt", with_pip=False)  # rebuilt runs from here
    user = make_venv(tmp_path / "envs" / "sgl", with_pip=False)
    on_path = f"{tool.parent}:/usr/bin:/bin"  # the tool's bin first: its python3 is what PATH finds
    args = ("build.torchvision", "--dry-run", "--no-checks", "--workdir", str(tmp_path / "wd"))

    refused = run(tool, *args, cwd=tmp_path, PATH=on_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"python3 on PATH is {tool.parent / 'python3'}, in rebuilt's own tool environment" in refused.stderr
    assert f"--python {tool.parent / 'python3'} uses rebuilt's own environment on purpose" in refused.stderr
    assert "Traceback" not in refused.stderr and "Plan:" not in refused.stdout

    named = run(tool, *args, "--python", str(tool), cwd=tmp_path, PATH=on_path)
    assert named.returncode == 0, named.stderr
    assert f"  python   {tool} (" in named.stdout and "), chosen by --python" in named.stdout

    active = run(tool, *args, cwd=tmp_path, PATH=on_path, VIRTUAL_ENV=str(user.parent.parent))
    assert active.returncode == 0, active.stderr
    assert f"  python   {user} (" in active.stdout
    assert "chosen by the active virtual environment ($VIRTUAL_ENV)" in active.stdout

    config = run(tool, "config", "--key", "python", cwd=tmp_path, PATH=on_path, CONDA_PREFIX=str(user.parent.parent))
    assert config.returncode == 0, config.stderr
    assert f"target python {user} (chosen by the active conda environment ($CONDA_PREFIX))" in config.stdout
    refused_config = run(tool, "config", "--key", "python", cwd=tmp_path, PATH=on_path)
    assert refused_config.returncode == 0 and "target python none: python3 on PATH is" in refused_config.stdout
