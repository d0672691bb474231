"""Kill, interrupt and fail `inv torch.backup` and `inv torch.restore` on the real torch 2.13.0."""

from __future__ import annotations

import os
import signal
import zipfile

import pytest

from tests.faults.conftest import (
    Inv,
    inv_run,
    lock_record,
    make_wheel,
    members,
    pgid_of,
    pips_running,
    stash_left,
    wait_for,
)


def parts(folder):
    return sorted(folder.glob(".*.part")) if folder.exists() else []


def big_part(folder, size=5_000_000):
    return any(p.stat().st_size > size for p in parts(folder))


# --------------------------------------------------------------------------- backup

def test_backup_killed_leaves_a_part_that_the_next_command_removes(torch_env, tmp_path, probe):
    out = tmp_path / "bk"
    run = Inv("torch.backup", "--python", torch_env["python"], "-o", out, "--fast", folder=tmp_path / "out")
    wait_for(lambda: big_part(out) or run.proc.poll() is not None, what="the backup to write")
    run.signal(signal.SIGKILL)
    run.wait()
    probe.expect("wrong", parts(out) and not list(out.glob("*.whl")), f"{list(out.iterdir())}")
    check = inv_run("torch.check", "--python", torch_env["python"], "--workdir", tmp_path / "wd",
                    env={"INVOKE_REBUILT_BACKUP_DIR": str(out)})
    probe.clean_output(check.stdout + check.stderr)
    probe.no_parts(out)
    probe.expect("wrong", check.returncode == 0, check.stdout + check.stderr)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_backup_interrupted_leaves_nothing(torch_env, tmp_path, probe, sig):
    out = tmp_path / "bk"
    run = Inv("torch.backup", "--python", torch_env["python"], "-o", out, "--fast", folder=tmp_path / "out")
    wait_for(lambda: big_part(out) or run.proc.poll() is not None, what="the backup to write")
    run.ctrl_c() if sig == "SIGINT" else run.signal(signal.SIGTERM)
    rc = run.wait()
    probe.no_parts(out)
    probe.clean_output(run.stderr)
    probe.expect("wrong", rc in (130, 143, -15) and not list(out.glob("*.whl")), f"exit {rc}: {run.stderr}")


def test_a_live_backup_is_not_cleaned_by_a_concurrent_command(torch_env, tmp_path, probe):
    out = tmp_path / "bk"
    run = Inv("torch.backup", "--python", torch_env["python"], "-o", out, "--fast", folder=tmp_path / "out")
    wait_for(lambda: big_part(out, 1_000_000) or run.proc.poll() is not None, what="the backup to write")
    os.killpg(run.proc.pid, signal.SIGSTOP)  # the backup is live (its .part half-written) while the check runs
    try:
        live = parts(out)
        probe.expect("wrong", live and run.proc.poll() is None, "the backup ended before the check: nothing tested")
        check = inv_run("torch.check", "--python", torch_env["python"], "--workdir", tmp_path / "wd",
                        env={"INVOKE_REBUILT_BACKUP_DIR": str(out)})
        probe.expect("wrong", parts(out) == live, f"the live backup's {live} was touched: {parts(out)}")
    finally:
        os.killpg(run.proc.pid, signal.SIGCONT)
    rc = run.wait()
    probe.clean_output(run.stderr + check.stderr)
    probe.expect("wrong", rc == 0 and len(list(out.glob("torch-*.whl"))) == 1, run.stdout + run.stderr)
    probe.no_parts(out)
    with zipfile.ZipFile(next(out.glob("torch-*.whl"))) as zf:
        probe.expect("wrong", zf.testzip() is None, "the backup is damaged")


# --------------------------------------------------------------------------- restore

def restore_env(torch_env):
    return {"INVOKE_REBUILT_BACKUP_DIR": str(torch_env["backups"])}


@pytest.mark.parametrize("sig", ["SIGINT"])  # SIGTERM/SIGHUP take the same path (and cost a restore each)
def test_restore_interrupted_while_pip_runs_finishes_first(torch_env, tmp_path, probe, sig):
    """A bare `inv torch.restore` (the newest backup); the signal arrives while pip replaces torch."""
    wd = tmp_path / "wd"
    run = Inv("torch.restore", "--python", torch_env["python"], "--workdir", wd, env=restore_env(torch_env),
              folder=tmp_path / "out")
    wait_for(lambda: stash_left(torch_env["site"]) or run.proc.poll() is not None, what="pip to move torch aside")
    probe.expect("wrong", run.proc.poll() is None, "the restore ended before the signal: nothing was tested")
    run.ctrl_c() if sig == "SIGINT" else run.signal(signal.SIGTERM)
    rc = run.wait()
    probe.torch_kept(torch_env)
    probe.clean_output(run.stderr)
    probe.expect("wrong", rc == 130 and "the restore finishes first" in run.stderr, f"exit {rc}: {run.stderr}")
    probe.expect("wrong", str(torch_env["wheel"]) in run.stdout, run.stdout)  # the newest backup
    probe.expect("wrong", lock_record(wd) == {}, f"lock {lock_record(wd)}")


def test_restore_killed_pip_finishes_and_holds_the_work_dir(torch_env, tmp_path, probe):
    wd = tmp_path / "wd"
    run = Inv("torch.restore", "--wheel", torch_env["wheel"], "--python", torch_env["python"], "--workdir", wd,
              folder=tmp_path / "out")
    wait_for(lambda: stash_left(torch_env["site"]) or run.proc.poll() is not None, what="pip to move torch aside")
    pips = pips_running(str(torch_env["wheel"]))
    probe.expect("wrong", pips and run.proc.poll() is None, "pip was not running: nothing was tested")
    wait_for(lambda: (lock_record(wd) or {}).get("pgid") == pgid_of(pips[0]) or run.proc.poll() is not None,
             what="the lock to name pip's group")
    pgid = pgid_of(pips[0])
    os.killpg(pgid, signal.SIGSTOP)  # pip cannot finish before the checks below: the scenario is certain
    try:
        run.signal(signal.SIGKILL)
        run.wait()
        probe.expect("wrong", members(pgid), "pip died with inv: a restore must finish")
        probe.expect("wrong", lock_record(wd).get("pgid") == pgid,
                     f"lock {lock_record(wd)} does not name pip ({pgid})")
        again = inv_run("torch.restore", "--python", torch_env["python"], "--workdir", wd,
                        env=restore_env(torch_env))
        probe.expect("wrong", again.returncode == 2 and f"process group {pgid}" in again.stderr,
                     again.stdout + again.stderr)
    finally:
        os.killpg(pgid, signal.SIGCONT)
    wait_for(lambda: not members(pgid), timeout=180, what="pip to finish on its own")
    probe.torch_kept(torch_env)


@pytest.mark.parametrize("algo", ["md5", "sha1"])
def test_weak_record_hashes_are_refused_before_anything_is_touched(torch_env, tmp_path, probe, algo):
    wheel = make_wheel(tmp_path, "torch", "2.13.0+cpu", {"torch/__init__.py": "__version__ = 'weak'\n"}, algo=algo)
    r = inv_run("torch.restore", "--wheel", wheel, "--python", torch_env["python"], "--workdir", tmp_path / "wd")
    probe.torch_kept(torch_env)
    probe.clean_output(r.stderr)
    probe.expect("wrong", r.returncode == 2 and f"RECORD uses {algo} hash" in r.stderr
                 and "only sha256 or stronger" in r.stderr, r.stderr)


def test_restore_that_cannot_finish_leaves_the_previous_torch(torch_env, tmp_path, probe):
    """pip fails halfway (a file where the wheel needs a folder): its rollback puts torch back."""
    wheel = make_wheel(tmp_path, "torch", "2.13.0+cpu", {"torch/__init__.py": "", "torch/clash": "a file\n",
                                                         "torch/clash/inner.py": "a folder\n"})
    r = inv_run("torch.restore", "--wheel", wheel, "--python", torch_env["python"], "--workdir", tmp_path / "wd")
    probe.torch_kept(torch_env)
    probe.clean_output(r.stderr)
    probe.expect("wrong", r.returncode == 1 and "pip could not install" in r.stderr, r.stdout + r.stderr)
