"""No process rebuilt starts outlives it: `kill -9` of `inv` mid-step, Ctrl-C and `kill -9` during a
bisect command (`inv bisect --cmd` runs it through rebuilt.tools.bisect.verdict.run_command), a step
that ignores SIGINT and SIGTERM; and the work directory's lock tells an orphaned group from a
reused process-group number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.faults.conftest import ROOT, Inv, inv_run, lock_record, manifest_status, members, wait_for

GONE_S = 10  # "within seconds": the warden's SIGTERM, then SIGKILL after 3 s


def alive(pid: int) -> bool:
    """Running and not a zombie (nothing may reap orphans in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def sleeper(tmp_path, recipe="sleeper") -> tuple[Inv, int, Path]:
    pidfile = tmp_path / "child.pid"
    run = Inv(f"build.{recipe}", "--no-checks", "--workdir", tmp_path / "wd", "--set", f"{recipe}.pidfile={pidfile}",
              folder=tmp_path / "out")
    wait_for(lambda: (pidfile.exists() and pidfile.read_text().strip()) or run.proc.poll() is not None,
             what="the step's child")
    assert run.proc.poll() is None, run.stdout + run.stderr
    return run, int(pidfile.read_text()), tmp_path / "wd"


def test_kill_9_of_inv_mid_step_stops_the_steps_group_within_seconds(bare_probe, tmp_path):
    run, child, wd = sleeper(tmp_path)
    pgid = os.getpgid(child)
    bare_probe.expect("wrong", (lock_record(wd) or {}).get("pgid") == pgid, f"lock {lock_record(wd)}")
    run.signal(signal.SIGKILL)
    run.wait()
    try:
        wait_for(lambda: not alive(child) and not members(pgid), timeout=GONE_S, what="the step's group to end")
    except AssertionError:
        bare_probe.expect("leaked", False, f"process group {pgid} still has {members(pgid)} after kill -9 of inv")
    again = inv_run("build.failing", "--workdir", wd, "--no-checks")  # the group is gone: the work dir is free
    bare_probe.clean_output(again.stderr)
    bare_probe.expect("wrong", again.returncode == 1 and "failing:boom" in again.stderr, again.stderr[-2000:])


def test_a_step_that_ignores_sigint_and_sigterm_is_gone_after_ctrl_c(bare_probe, tmp_path):
    run, child, wd = sleeper(tmp_path, "deaf")
    pgid = os.getpgid(child)
    run.ctrl_c()
    rc = run.wait(timeout=120)
    bare_probe.clean_output(run.stderr)
    bare_probe.expect("leaked", not alive(child) and not members(pgid),
                      f"after inv ended, process group {pgid} still has {members(pgid)}")
    bare_probe.expect("wrong", rc == 130 and manifest_status(wd, "deaf") == "interrupted", f"exit {rc}: {run.stderr}")


BISECT_CMD = """
import sys
from pathlib import Path
from rebuilt.tools.bisect import verdict
verdict.run_command(sys.argv[1], cwd=sys.argv[2], python=sys.executable, commit="0" * 40, log=Path(sys.argv[3]))
"""


def bisect_command(tmp_path) -> tuple[subprocess.Popen, int]:
    """A process running a bisect --cmd command whose shell starts a child; (it, the child's pid)."""
    pidfile = tmp_path / "child.pid"
    cmd = f"sleep 600 & echo $! > {pidfile}; wait"
    proc = subprocess.Popen([sys.executable, "-c", BISECT_CMD, cmd, str(tmp_path), str(tmp_path / "cmd.log")],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: (pidfile.exists() and pidfile.read_text().strip()) or proc.poll() is not None,
             what="the command's child")
    assert proc.poll() is None, proc.stderr.read()
    return proc, int(pidfile.read_text())


def test_ctrl_c_during_a_bisect_command_ends_the_commands_children(bare_probe, tmp_path):
    proc, child = bisect_command(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the command runs in a session of its own
    proc.communicate(timeout=60)
    bare_probe.expect("leaked", not alive(child), f"the command's child {child} still runs after Ctrl-C")


def test_kill_9_during_a_bisect_command_ends_the_command_within_seconds(bare_probe, tmp_path):
    proc, child = bisect_command(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    try:
        wait_for(lambda: not alive(child), timeout=GONE_S, what="the command's child to end")
    except AssertionError:
        bare_probe.expect("leaked", False, f"the command's child {child} still runs after kill -9 of rebuilt")


def orphan_record(wd: Path, pgid: int, ticks: int) -> None:
    """The lock record a killed rebuilt leaves behind, naming the group of the step it ran."""
    (wd / "state").mkdir(parents=True, exist_ok=True, mode=0o700)
    (wd / "state" / "build.lock").write_text(json.dumps(
        {"pid": 999999, "since": "2026-12-01 21:40:02", "pgid": pgid, "pgid_start": ticks, "step": "[1/1] x:y"}))


def test_an_orphaned_group_keeps_the_work_dir_but_a_reused_number_does_not(bare_probe, tmp_path):
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)  # leads a live process group
    try:
        wd = tmp_path / "wd"
        orphan_record(wd, other.pid, start_ticks(other.pid))  # the recorded group itself: still running
        blocked = inv_run("build.failing", "--workdir", wd, "--no-checks")
        bare_probe.clean_output(blocked.stderr)
        bare_probe.expect("wrong", blocked.returncode == 2 and f"process group {other.pid}" in blocked.stderr,
                          blocked.stderr[-2000:])
        orphan_record(wd, other.pid, start_ticks(other.pid) - 1)  # same number, another start: reused
        free = inv_run("build.failing", "--workdir", wd, "--no-checks")
        bare_probe.expect("wrong", free.returncode == 1 and "failing:boom" in free.stderr, free.stderr[-2000:])
        bare_probe.expect("wrong", other.poll() is None, "the program that reused the number was signalled")
    finally:
        other.kill()
        other.wait()


def test_a_failing_ccache_clear_fails_loudly(bare_probe, tmp_path):
    """`cache.clear` runs `ccache -C -z` with check=True: its failure is the command's failure."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ccache"
    fake.write_text("#!/bin/sh\necho 'ccache: error: Permission denied (fake)' >&2\nexit 1\n")
    fake.chmod(0o755)
    r = inv_run("cache.clear", "--workdir", tmp_path / "wd", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    bare_probe.clean_output(r.stderr)
    bare_probe.expect("wrong", r.returncode == 1 and "`ccache -C -z` exited 1" in r.stderr
                      and "Permission denied (fake)" in r.stderr and "cleared" not in r.stdout, r.stdout + r.stderr)
