"""Kill, interrupt and fail a build before, during and after an installing step that replaces torch.

The `faults` fixture recipe runs three steps: `before`, `swap` (an installing step that
force-installs a fake torch 2.5.1 over the real one, bypassing the constraints) and
`after`; each can hold (run until stopped) or fail on request. After every probe: torch's
files are the ones it had, no process of the run is alive, the lock is free (or held by
what still runs), the manifest says what happened, no journal is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.conftest import (
    Inv,
    inv_run,
    journal_of,
    lock_record,
    manifest_status,
    members,
    pgid_of,
    pips_running,
    wait_for,
)

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


def build_args(env, wd, marks, **options):
    args = ["build.faults", "--no-checks", "--workdir", wd, "--python", env["python"], "--set", f"faults.marks={marks}"]
    for key, value in options.items():
        args += ["--set", f"faults.{key}={value}"]
    return args


def settings_env(env):
    return {"INVOKE_REBUILT_BACKUP_DIR": str(env["backups"]), "PIP_NO_INDEX": "1"}


def start(env, tmp_path, **options):
    wd, marks = tmp_path / "wd", tmp_path / "marks"
    marks.mkdir()
    run = Inv(*build_args(env, wd, marks, **options), env=settings_env(env), folder=tmp_path / "out")
    return run, wd, marks


def held_group(marks, step, run) -> int:
    """Wait until ``step`` holds; its process group id."""
    wait_for(lambda: (marks / f"{step}.held").exists() or run.proc.poll() is not None, what=f"{step} to hold")
    assert run.proc.poll() is None, run.stdout + run.stderr
    pgid = pgid_of(int((marks / f"{step}.pid").read_text()))
    assert pgid and pgid != os.getpgid(run.proc.pid)  # the step has a group of its own
    return pgid


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sigint_pending(pid: int) -> bool:
    """Is a SIGINT waiting for ``pid`` (it is stopped: /proc/<pid>/status ShdPnd or SigPnd has bit 2)?"""
    try:
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    except OSError:
        return True  # gone
    return any(int(status.get(key, "0").strip(), 16) & (1 << (signal.SIGINT - 1)) for key in ("ShdPnd", "SigPnd"))


def deliver(run, name: str) -> None:
    if name == "SIGINT":
        run.ctrl_c()  # as a terminal does: to inv's whole foreground group
    else:
        run.signal(SIGNALS[name])


def check_ended(probe, env, run, rc, wd, *, code, status, pgids=()):
    out = run.stdout + run.stderr
    probe.torch_kept(env, out)
    probe.no_process(*pgids)
    probe.clean_output(out)
    probe.expect("wrong", rc == code, f"exit {rc}, expected {code}:\n{out[-3000:]}")
    probe.expect("wrong", manifest_status(wd) == status, f"manifest {manifest_status(wd)}, expected {status}")
    probe.expect("wrong", lock_record(wd) == {}, f"lock not released: {lock_record(wd)}")
    probe.expect("wrong", not journal_of(wd).exists(), "the guard journal was left behind")


@pytest.mark.parametrize("stage", ["before", "swap", "after"])
def test_step_fails(torch_env, tmp_path, probe, stage):
    """A failing step at each stage; failing after the swap: the guard restores torch and the step's failure stands."""
    opts = {"wheel": torch_env["fake"]} if stage == "swap" else {}  # a swap fails the build at once (exit 4)
    run, wd, marks = start(torch_env, tmp_path, fail=stage, **opts)
    rc = run.wait()
    check_ended(probe, torch_env, run, rc, wd, code=1, status="failed")
    probe.expect("wrong", f"faults:{stage} failed" in run.stderr, run.stderr[-2000:])
    if stage == "swap":
        probe.expect("wrong", "guard: step faults:swap changed protected distributions before it failed"
                     in run.stdout and "restored from" in run.stdout, run.stdout[-2000:])


HALFWAY = Path(__file__).resolve().parent.parent / "fixtures" / "pip" / "uninstall_halfway.py"


@pytest.mark.parametrize("entry, said", [
    ("functorch", "torchrun missing"),  # only torch's scripts moved (to pip's temporary folder)
    # functorch moved, the metadata's stash folder made, the metadata itself not moved: it reads the same
    ("torch-2.13.0+cpu.dist-info made", "functorch missing and pip's stash ~orch-2.13.0+cpu.dist-info, ~unctorch"),
    ("torch", "comes first now"),  # metadata moved too: the test interpreter's torch 2.13.0 shows through
])
def test_a_step_whose_pip_stopped_halfway_through_torchs_uninstall(torch_env, tmp_path, probe, entry, said):
    """pip's own uninstall of torch stopped (KeyboardInterrupt) before one of its moves, then the step fails:
    whatever pip moved aside so far, the guard sees it, restores torch and clears pip's stash."""
    run, wd, marks = start(torch_env, tmp_path, halfway=f"{HALFWAY} torch {entry}")
    entry = entry.split()[0]
    rc = run.wait()
    check_ended(probe, torch_env, run, rc, wd, code=1, status="failed")
    probe.expect("wrong", f"pip stopped before moving {entry} aside" in run.stdout + run.stderr,
                 f"pip's uninstall was not stopped where the test meant:\n{run.stdout[-3000:]}")
    probe.expect("wrong", "guard: step faults:swap changed protected distributions before it failed" in run.stdout
                 and said in run.stdout and "restored from" in run.stdout, run.stdout[-3000:])


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_while_a_step_runs_before_the_swap(torch_env, tmp_path, probe, sig):
    run, wd, marks = start(torch_env, tmp_path, hold="before")
    pgid = held_group(marks, "before", run)
    deliver(run, sig)
    rc = run.wait()
    check_ended(probe, torch_env, run, rc, wd, code=130, status="interrupted", pgids=[pgid])
    probe.expect("wrong", "interrupted during [1/3] faults:before" in run.stderr, run.stderr[-2000:])


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_after_the_swap_and_again_during_the_guards_restore(torch_env, tmp_path, probe, sig):
    """Torch was replaced; the step is interrupted; a second signal arrives while the guard restores torch."""
    run, wd, marks = start(torch_env, tmp_path, wheel=torch_env["fake"], hold="swap")
    pgid = held_group(marks, "swap", run)
    deliver(run, sig)
    wait_for(lambda: "guard: reinstalling torch" in run.stdout or run.proc.poll() is not None,
             what="the guard's restore")
    deliver(run, sig)  # pip runs in its own session: this waits for it
    rc = run.wait()
    check_ended(probe, torch_env, run, rc, wd, code=130, status="interrupted", pgids=[pgid])
    probe.expect("wrong", "before it was interrupted" in run.stdout and "restored from" in run.stdout, run.stdout)
    probe.expect("wrong", f"{sig} received; the guard checks (and restores) the protected distributions first"
                 in run.stderr, run.stderr[-2000:])


def test_second_ctrl_c_stops_a_stubborn_group_at_once(torch_env, tmp_path, probe):
    """A background child ignores Ctrl-C; the second Ctrl-C within the grace period kills the group."""
    run, wd, marks = start(torch_env, tmp_path, stubborn="before")
    pgid = held_group(marks, "before", run)
    child = int((marks / "child.pid").read_text())
    run.ctrl_c()
    wait_for(lambda: not os.path.exists(f"/proc/{int((marks / 'before.pid').read_text())}")
             or run.proc.poll() is not None, what="the step's shell to stop")
    run.ctrl_c()
    rc = run.wait(timeout=60)
    check_ended(probe, torch_env, run, rc, wd, code=130, status="interrupted", pgids=[pgid])
    probe.expect("leaked", not os.path.exists(f"/proc/{child}") or child not in members(pgid), "child alive")


@pytest.mark.parametrize("stage", ["before", "swap"])
def test_kill_9_stops_the_steps_group_then_the_journal_restores(torch_env, tmp_path, probe, stage):
    """No handler runs on SIGKILL: rebuilt's warden (a watcher holding the other end of a pipe) ends the
    step's group within seconds; the journal the killed run left is settled by the next run."""
    opts = {"wheel": torch_env["fake"]} if stage == "swap" else {}
    run, wd, marks = start(torch_env, tmp_path, hold=stage, **opts)
    pgid = held_group(marks, stage, run)
    run.signal(signal.SIGKILL)
    run.wait()
    probe.no_process(pgid)
    record = lock_record(wd)
    probe.expect("wrong", record and record.get("pgid") == pgid, f"lock record {record} does not name {pgid}")
    probe.expect("wrong", journal_of(wd).exists(), "no journal after a kill mid-step")
    probe.expect("wrong", journal_of(wd).stat().st_mode & 0o777 == 0o600, "the journal is not 0600")
    probe.expect("wrong", json.loads(journal_of(wd).read_text())["step"] == f"faults:{stage}", "journal step")

    check = inv_run("torch.check", "--python", torch_env["python"], "--workdir", wd, env=settings_env(torch_env))
    probe.expect("wrong", f"step faults:{stage} of a killed run" in check.stdout, check.stdout + check.stderr)

    again = inv_run(*build_args(torch_env, wd, marks), env=settings_env(torch_env))
    out = again.stdout + again.stderr
    probe.torch_kept(torch_env)
    probe.clean_output(out)
    probe.expect("wrong", again.returncode == 0, out[-3000:])
    probe.expect("wrong", "did not finish" in again.stdout, again.stdout)
    if stage == "swap":
        probe.expect("wrong", "torch 2.13.0+cpu -> 2.5.1 (found after rebuilt was killed)" in again.stdout
                     and "restored from" in again.stdout, again.stdout)
    else:
        probe.expect("wrong", "nothing was changed" in again.stdout, again.stdout)
    probe.expect("wrong", manifest_status(wd) == "done" and lock_record(wd) == {}
                 and not journal_of(wd).exists(), f"{manifest_status(wd)} {lock_record(wd)}")


def test_kill_9_during_the_guards_restore_pip_finishes_and_the_next_run_waits(torch_env, tmp_path, probe):
    run, wd, marks = start(torch_env, tmp_path, wheel=torch_env["fake"], fail="swap")
    wait_for(lambda: "guard: reinstalling torch" in run.stdout or run.proc.poll() is not None,
             what="the guard's restore")
    wait_for(lambda: pips_running(str(torch_env["wheel"])) or run.proc.poll() is not None, what="pip")
    pips = pips_running(str(torch_env["wheel"]))
    # kill once the lock names pip's group (the milliseconds between its start and the record are not covered)
    wait_for(lambda: (lock_record(wd) or {}).get("pgid") == pgid_of(pips[0]) or run.proc.poll() is not None,
             what="the lock to name pip's group")
    probe.expect("wrong", pips and run.proc.poll() is None, "pip was not running when inv was to be killed")
    pgid = pgid_of(pips[0])
    os.killpg(pgid, signal.SIGSTOP)  # pip cannot finish before the checks below: the scenario is certain
    try:
        run.signal(signal.SIGKILL)
        run.wait()
        record = lock_record(wd)
        probe.expect("wrong", members(pgid), "the guard's pip died with inv: a restore must finish")
        probe.expect("wrong", record.get("pgid") == pgid, f"lock record {record} does not name pip's group {pgid}")
        blocked = inv_run(*build_args(torch_env, wd, marks), env=settings_env(torch_env))
        probe.expect("wrong", blocked.returncode == 2 and f"process group {pgid}" in blocked.stderr,
                     blocked.stdout + blocked.stderr)
    finally:
        os.killpg(pgid, signal.SIGCONT)
    wait_for(lambda: not members(pgid), timeout=180, what="pip to finish on its own")
    again = inv_run(*build_args(torch_env, wd, marks), env=settings_env(torch_env))
    out = again.stdout + again.stderr
    probe.torch_kept(torch_env)
    probe.clean_output(out)
    probe.expect("wrong", again.returncode == 0 and "did not finish" in again.stdout, out[-3000:])
    probe.expect("wrong", manifest_status(wd) == "done" and lock_record(wd) == {}
                 and not journal_of(wd).exists(), f"{manifest_status(wd)} {lock_record(wd)}")
    statuses = [json.loads(p.read_text())["status"] for p in sorted((wd / "manifests").glob("*-faults.json"))]
    probe.expect("wrong", statuses == ["done"], f"manifests {statuses}: the killed run cannot write one")


def test_ctrl_c_while_the_steps_pip_replaces_torch(torch_env, tmp_path, probe):
    """Ctrl-C reaches the step's pip halfway (its stash of the real torch is in site-packages): pip stops
    without its rollback; the guard restores torch and clears pip's leftovers."""
    from tests.faults.conftest import stash_left

    run, wd, marks = start(torch_env, tmp_path, wheel=torch_env["fake"], hold="swap")
    fake, site = str(torch_env["fake"]), torch_env["site"]
    wait_for(lambda: pips_running(fake) or (marks / "swap.held").exists() or run.proc.poll() is not None,
             what="the step's pip to start")
    pips = pips_running(fake)
    for pid in pips:
        os.kill(pid, signal.SIGSTOP)
    # pip runs in 10 ms steps until torch is moved aside: then it is halfway, and held there until the
    # Ctrl-C has reached it (a poll alone can miss that moment on a busy machine)
    while pips and running(pips[0]) and not stash_left(site):
        os.kill(pips[0], signal.SIGCONT)
        time.sleep(0.01)
        os.kill(pips[0], signal.SIGSTOP)
    try:
        probe.expect("wrong", pips and stash_left(torch_env["site"]) and run.proc.poll() is None,
                     "the step's pip was not caught halfway (torch moved aside): nothing was tested")
        pgid = pgid_of(int((marks / "swap.pid").read_text()))
        run.ctrl_c()
        wait_for(lambda: all(sigint_pending(pid) for pid in pips) or run.proc.poll() is not None,
                 what="the group's SIGINT to reach the stopped pip")
    finally:
        for pid in pips:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    rc = run.wait()
    check_ended(probe, torch_env, run, rc, wd, code=130, status="interrupted", pgids=[pgid])
    probe.expect("wrong", "before it was interrupted" in run.stdout and "restored from" in run.stdout,
                 run.stdout[-2000:])
