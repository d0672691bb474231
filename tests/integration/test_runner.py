"""The runner through the real CLI: progress, logs, failure reports, Ctrl-C, the work-dir lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"


def env() -> dict:
    return {**os.environ, "REBUILT_RECIPES_DIR": RECIPES}


def inv(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_failing_step_reports_step_tail_and_log(tmp_path):
    r = inv("build.failing", "--workdir", str(tmp_path), "--no-checks")
    assert r.returncode == 1
    assert "step failing:boom failed: exit status 3" in r.stderr
    assert "line-40" in r.stderr and "line-11" in r.stderr and "line-10\n" not in r.stderr  # last 30 lines
    [log] = (tmp_path / "logs").glob("*/02-failing-boom.log")
    assert f"full log: {log}" in r.stderr and "Traceback" not in r.stderr
    [status] = (tmp_path / "logs").glob("*/failing.status.json")
    steps = json.loads(status.read_text())["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("ok", "done"), ("boom", "failed")]
    [manifest] = (tmp_path / "manifests").glob("*-failing.json")
    assert json.loads(manifest.read_text())["status"] == "failed"
    assert "[1/3] failing:ok" in r.stdout and "[3/3]" not in r.stdout


def test_ctrl_c_stops_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "build.sleeper", "--workdir", str(tmp_path / "wd"),
                             "--no-checks", "--set", f"sleeper.pidfile={pidfile}"],
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    grandchild = int(pidfile.read_text())
    assert alive(grandchild)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted during [2/2] sleeper:sleep" in err and "Traceback" not in err
    wait_for(lambda: not alive(grandchild), timeout=15)
    [status] = (tmp_path / "wd" / "logs").glob("*/sleeper.status.json")
    steps = json.loads(status.read_text())["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("quick", "done"), ("sleep", "interrupted")]
    [manifest] = (tmp_path / "wd" / "manifests").glob("*-sleeper.json")
    assert json.loads(manifest.read_text())["status"] == "interrupted"


def test_two_builds_in_one_workdir_cannot_interleave(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    first = subprocess.Popen([sys.executable, "-m", "invoke", "build.sleeper", "--workdir", str(tmp_path / "wd"),
                              "--no-checks", "--set", f"sleeper.pidfile={pidfile}"],
                             cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
        second = inv("build.failing", "--workdir", str(tmp_path / "wd"), "--no-checks")
        assert second.returncode == 2
        assert "another build is running" in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)


def test_chained_tasks_in_one_call_share_the_lock(tmp_path):
    r = inv("build.sleeper", "--dry-run", "build.failing", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Plan: sleeper" in r.stdout and "Plan: failing" in r.stdout
    r = inv("build.extras", "--workdir", str(tmp_path), "--no-checks", "build.failing", "--workdir", str(tmp_path),
            "--no-checks")
    assert r.returncode == 1 and "failing:boom" in r.stderr  # the second task ran after the first released


def test_unknown_task_argument_is_one_message():
    r = inv("build.sgl-kernel", "--bogus")
    assert r.returncode != 0 and "--bogus" in r.stderr and "Traceback" not in r.stderr


def test_unknown_recipe_stack_and_setting_exit_2(tmp_path):
    r = inv("build.stack", "--stack", "sglang-0.54", "--dry-run")
    assert r.returncode == 2 and "did you mean 'sglang-0.5.4'" in r.stderr
    r = inv("build.torch", "--set", "torch.mdoe=wheel", "--dry-run")
    assert r.returncode == 2 and "did you mean 'torch.mode'" in r.stderr
