"""`torch.check` where torch is gone: it names the newest backup that fits the interpreter and the
`torch.restore` command that brings it back (the same program name the user typed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.envs import make_venv

ROOT = Path(__file__).resolve().parents[2]


def test_check_without_torch_names_the_newest_fitting_backup(tmp_path):
    py = make_venv(tmp_path / "env", with_pip=False)
    for pth in (tmp_path / "env" / "lib").glob("python3*/site-packages/_rebuilt_tests_parent.pth"):
        pth.unlink()  # this environment sees no torch at all
    backups = tmp_path / "backups"
    backups.mkdir()
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    names = [f"torch-2.7.0-{tag}-{tag}-linux_x86_64.whl", f"torch-2.8.0-{tag}-{tag}-linux_x86_64.whl",
             "torch-2.9.0-cp39-cp39-linux_x86_64.whl"]  # the newest is for another Python
    for age, name in zip((300, 200, 100), names):
        (backups / name).write_bytes(b"PK")
        os.utime(backups / name, (time.time() - age, time.time() - age))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_REBUILT_", "REBUILT_"))}
    env.update(INVOKE_REBUILT_BACKUP_DIR=str(backups), HOME=str(tmp_path))
    for prog in (["inv"], ["rebuilt"]):
        argv = [sys.executable, "-m", "invoke"] if prog == ["inv"] else [sys.executable, "-m", "rebuilt.cli"]
        r = subprocess.run([*argv, "torch.check", "--python", str(py), "--workdir", str(tmp_path / "wd")], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert f"torch is not installed in {py}" in r.stderr
        assert f"the newest backup that fits it is {backups / names[1]} (1 older in {backups})" in r.stderr, r.stderr
        assert f"-> bring it back: {prog[0]} torch.restore --wheel {backups / names[1]} --python {py}" in r.stderr
    for name in names[:2]:
        (backups / name).unlink()
    r = subprocess.run([sys.executable, "-m", "invoke", "torch.check", "--python", str(py)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"{backups} holds no backup of it for {tag}" in r.stderr, r.stderr
