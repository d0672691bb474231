"""The runner through the real CLI: progress, logs, failure reports, Ctrl-C, the work-dir lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
RECIPES = f"{ROOT / 'tests' / 'fixtures' / 'recipes'}{os.pathsep}{ROOT / 'recipes'}"


def env() -> dict:
    return {**os.environ, "REBUILT_RECIPES_DIR": RECIPES}


def inv(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, timeout: float = 60) -> None:
    wait_until(predicate, timeout, step=0.1)


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


def _lock(wd: Path) -> dict:
    text = (wd / "state" / "build.lock").read_text().strip()
    return json.loads(text) if text else {}


def _start_sleeper(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "build.sleeper", "--workdir", str(tmp_path / "wd"),
                             "--no-checks", "--set", f"sleeper.pidfile={pidfile}"],
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    return proc, int(pidfile.read_text())


def test_sigterm_and_sighup_stop_the_group_and_the_manifest_says_interrupted(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGHUP):
        run_dir = tmp_path / sig.name
        run_dir.mkdir()
        proc, grandchild = _start_sleeper(run_dir)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        assert f"interrupted during [2/2] sleeper:sleep ({sig.name})" in err and "Traceback" not in err
        wait_for(lambda pid=grandchild: not alive(pid), timeout=15)
        [manifest] = (run_dir / "wd" / "manifests").glob("*-sleeper.json")
        assert json.loads(manifest.read_text())["status"] == "interrupted"
        assert _lock(run_dir / "wd") == {}


def test_after_kill_9_the_steps_group_is_stopped_and_the_work_dir_is_free(tmp_path):
    """rebuilt's warden ends the step's group when rebuilt dies, even by SIGKILL (no handler runs then)."""
    proc, grandchild = _start_sleeper(tmp_path)
    pgid = os.getpgid(grandchild)
    record = _lock(tmp_path / "wd")
    assert record["pid"] == proc.pid and record["pgid"] == pgid and record["step"] == "[2/2] sleeper:sleep"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    try:
        wait_for(lambda: not alive(grandchild) or open(f"/proc/{grandchild}/stat").read().split(") ")[1][0] == "Z",
                 timeout=15)
    finally:
        if alive(grandchild):
            os.killpg(pgid, signal.SIGKILL)
    assert _lock(tmp_path / "wd")["pgid"] == pgid  # the killed run could not clear its record
    second = inv("build.failing", "--workdir", str(tmp_path / "wd"), "--no-checks")
    assert second.returncode == 1 and "failing:boom" in second.stderr  # the group is gone: the lock is free


def test_capture_with_check_raises_on_a_non_zero_exit():
    from rebuilt.core import runner
    from rebuilt.errors import StepFailed

    try:
        runner.capture(["sh", "-c", "echo doomed >&2; exit 7"], check=True)
    except StepFailed as exc:
        assert "exited 7" in str(exc) and "doomed" in str(exc)
    else:
        raise AssertionError("capture(check=True) returned although the command exited 7")
    assert runner.capture(["sh", "-c", "exit 7"]).returncode == 7  # without check: the status, no exception


def test_a_capture_that_times_out_leaves_no_process_of_its_group(tmp_path):
    from rebuilt.core import runner

    pidfile = tmp_path / "child.pid"
    r = runner.capture(["sh", "-c", f"sleep 600 & echo $! > {pidfile}; wait"], timeout=1)
    assert r.returncode == 124 and "timed out after 1s" in r.stderr
    child = int(pidfile.read_text())
    assert not alive(child) or open(f"/proc/{child}/stat").read().split(") ")[1][0] == "Z"
