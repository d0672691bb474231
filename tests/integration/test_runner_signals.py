"""The runner under Ctrl-C, SIGTERM and SIGHUP, called in-process: held signals, the group kill and its
escalation, the work-directory lock with its orphan check, and the warden that ends a group when rebuilt dies.

Signals are sent to this very process (as the terminal or ``kill`` would); SIGTERM and SIGHUP fall back to a
handler that fails the test instead of ending pytest."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rebuilt.core import runner, signals, worklock
from rebuilt.errors import Interrupted, RebuiltError
from tests.waiting import wait_until

PY = sys.executable


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class UnexpectedSignal(Exception):
    pass


def _unexpected(signum, _frame):
    raise UnexpectedSignal(signal.Signals(signum).name)


@pytest.fixture(autouse=True)
def handlers():
    """SIGTERM/SIGHUP raise UnexpectedSignal unless the code under test handles them; all three restored after."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set from the main thread")
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in sigs}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _unexpected)
    signal.signal(signal.SIGHUP, _unexpected)
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


@pytest.fixture(autouse=True)
def no_shell_left(tmp_path):
    """A test that fails halfway leaves no signal-recording shell (see trapping) running."""
    yield
    pidfile = tmp_path / "pid"
    if pidfile.exists() and pidfile.read_text().strip():
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture
def groups():
    """Process groups a test started; every one still running is killed at the end."""
    started: list[int] = []
    yield started
    for pgid in started:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def send_when(predicate, sig: int) -> threading.Thread:
    """Send ``sig`` to this process once ``predicate()`` holds (from a thread, like a signal from outside)."""
    def run():
        wait_until(predicate)
        os.kill(os.getpid(), sig)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def has_text(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""


def trapping(tmp_path: Path, *, int_exits: bool = True, term_exits: bool = True) -> tuple[list[str], Path, Path]:
    """A shell that writes each INT/TERM it gets to a file (and exits on it, or not), its pid to another."""
    seen, pidfile = tmp_path / "signals", tmp_path / "pid"
    on_int = f"echo INT >> {seen}" + ("; exit 1" if int_exits else "")
    on_term = f"echo TERM >> {seen}" + ("; exit 1" if term_exits else "")
    script = f"trap '{on_int}' INT; trap '{on_term}' TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done"
    return ["/bin/sh", "-c", script], seen, pidfile


def signals_seen(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# --------------------------------------------------------------------------- deferred_signals, terminate_as_interrupt


def test_a_held_ctrl_c_is_raised_when_the_block_ends_with_one_note(capfd):
    finished = False
    with pytest.raises(KeyboardInterrupt) as caught:
        with signals.deferred_signals("the restore finishes first"):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            finished = True
    assert finished and type(caught.value) is KeyboardInterrupt
    assert capfd.readouterr().err == "rebuilt: SIGINT received; the restore finishes first\n"


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGHUP])
def test_the_first_held_signal_is_the_one_raised(first, capfd):
    with pytest.raises(signals.Terminated) as caught:
        with signals.deferred_signals():
            os.kill(os.getpid(), first)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
    assert caught.value.signum == first and str(caught.value) == first.name
    assert capfd.readouterr().err == ""  # no note given, none printed


def test_a_block_without_signals_ends_normally_and_the_handlers_are_back():
    with signals.deferred_signals("note"):
        value = 1
    assert value == 1
    with pytest.raises(UnexpectedSignal):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)


def test_nested_blocks_raise_once_when_the_outermost_ends():
    after_inner = False
    with pytest.raises(KeyboardInterrupt):
        with signals.deferred_signals():
            with signals.deferred_signals():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
            after_inner = True
    assert after_inner
    with pytest.raises(KeyboardInterrupt):  # the next block holds again
        with signals.deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)


def test_off_the_main_thread_the_blocks_change_nothing():
    errors: list[BaseException] = []

    def body():
        try:
            with signals.deferred_signals("x"), signals.terminate_as_interrupt():
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert errors == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_become_terminated_while_asked(sig):
    with pytest.raises(signals.Terminated) as caught:
        with signals.terminate_as_interrupt():
            os.kill(os.getpid(), sig)
            time.sleep(0.1)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.signum == sig and str(caught.value) == sig.name
    with pytest.raises(UnexpectedSignal):  # the previous handler is back
        os.kill(os.getpid(), sig)
        time.sleep(0.1)


# --------------------------------------------------------------------------- interrupted commands and the group kill


def test_ctrl_c_during_capture_interrupts_the_command_first_then_raises(tmp_path):
    argv, seen, pidfile = trapping(tmp_path)
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as caught:
        runner.capture(argv, timeout=120)
    assert type(caught.value) is KeyboardInterrupt
    assert signals_seen(seen) == ["INT"] and gone(int(pidfile.read_text()))


def test_sigterm_during_capture_terminates_the_command_then_raises(tmp_path):
    argv, seen, pidfile = trapping(tmp_path)
    send_when(lambda: has_text(pidfile), signal.SIGTERM)
    with pytest.raises(signals.Terminated), signals.terminate_as_interrupt():
        runner.capture(argv, timeout=120)
    assert signals_seen(seen) == ["TERM"] and gone(int(pidfile.read_text()))


def test_ctrl_c_during_a_step_stops_its_group_and_says_so(tmp_path):
    argv, seen, pidfile = trapping(tmp_path)
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    terminal = TTY()
    with pytest.raises(Interrupted, match=r"^interrupted during \[1/2\] a:b \(Ctrl-C\); its process group was stopped$"):
        runner.stream(argv, cwd="/", env={"PATH": os.environ["PATH"]}, log=open(os.devnull, "w"),
                      console=runner.Console(terminal), label="[1/2] a:b")
    assert signals_seen(seen) == ["INT"] and gone(int(pidfile.read_text()))
    assert terminal.getvalue().endswith("\r\033[K")  # the status line is cleared before the message


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_during_a_step_terminates_its_group_and_says_which(tmp_path, sig):
    argv, seen, pidfile = trapping(tmp_path)
    send_when(lambda: has_text(pidfile), sig)
    with pytest.raises(Interrupted, match=rf"^interrupted during lbl \({sig.name}\); its process group was stopped$"):
        with signals.terminate_as_interrupt():
            runner.stream(argv, cwd="/", env={"PATH": os.environ["PATH"]}, log=open(os.devnull, "w"),
                          console=runner.Console(open(os.devnull, "w")), label="lbl")
    assert signals_seen(seen) == ["TERM"] and gone(int(pidfile.read_text()))


def test_ctrl_c_returns_although_an_escaped_process_holds_the_steps_output(tmp_path):
    """A process that left the step's group (setsid) keeps the pipe open: the interrupt does not wait for it."""
    pidfile = tmp_path / "escaped.pid"
    script = (f"import subprocess, time; p = subprocess.Popen(['sleep', '600'], start_new_session=True); "
              f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(600)")
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    try:
        with pytest.raises(Interrupted):
            runner.stream([PY, "-c", script], cwd="/", env={}, log=open(os.devnull, "w"),
                          console=runner.Console(open(os.devnull, "w")), label="escaping")
    finally:
        if has_text(pidfile):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_step_that_ignores_ctrl_c_and_sigterm_is_killed(tmp_path):
    argv, seen, pidfile = trapping(tmp_path, int_exits=False, term_exits=False)
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    with pytest.raises(Interrupted):
        runner.stream(argv, cwd="/", env={"PATH": os.environ["PATH"]}, log=open(os.devnull, "w"),
                      console=runner.Console(open(os.devnull, "w")), label="stubborn")
    assert signals_seen(seen) == ["INT", "TERM"] and gone(int(pidfile.read_text()))


def test_a_timed_out_capture_terminates_first_and_kills_what_stays(tmp_path):
    argv, seen, pidfile = trapping(tmp_path, int_exits=False, term_exits=False)
    r = runner.capture(argv, timeout=1)
    assert r.returncode == 124 and r.stdout == ""
    wait_until(lambda: has_text(seen))
    assert signals_seen(seen) == ["TERM"] and gone(int(pidfile.read_text()))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_another_signal_while_stopping_a_group_kills_it_at_once(tmp_path, sig):
    argv, seen, pidfile = trapping(tmp_path, int_exits=False)
    proc = subprocess.Popen(argv, start_new_session=True)
    wait_until(lambda: has_text(pidfile))
    send_when(lambda: signals_seen(seen) == ["INT"], sig)
    runner._kill_group(proc)  # no exception: the signal only hurries it
    assert proc.wait(timeout=30) == -signal.SIGKILL and signals_seen(seen) == ["INT"]  # never reached SIGTERM
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is _unexpected and signal.getsignal(signal.SIGHUP) is _unexpected


def test_stopping_a_group_from_another_thread_works_too(tmp_path):
    argv, seen, pidfile = trapping(tmp_path)
    proc = subprocess.Popen(argv, start_new_session=True)
    wait_until(lambda: has_text(pidfile))
    t = threading.Thread(target=runner._kill_group, args=(proc, signal.SIGTERM))
    t.start()
    t.join()
    assert gone(proc.pid) and proc.wait(timeout=30) == 1 and signals_seen(seen) == ["TERM"]


def test_stopping_a_group_that_has_ended_returns_its_status():
    proc = subprocess.Popen(["/bin/sh", "-c", "exit 3"], start_new_session=True)
    wait_until(lambda: gone(proc.pid))
    runner._kill_group(proc)
    assert proc.returncode == 3


def test_ctrl_c_stops_background_children_of_a_shell_step(tmp_path):
    """A non-interactive shell's background children ignore SIGINT: the group kill goes on until they are gone."""
    pidfile = tmp_path / "bg.pid"
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    with pytest.raises(Interrupted):
        runner.stream(f"sleep 600 & echo $! > {pidfile}; wait", shell=True, cwd="/", env={"PATH": os.environ["PATH"]},
                      log=open(os.devnull, "w"), console=runner.Console(open(os.devnull, "w")), label="bg")
    assert gone(int(pidfile.read_text()))


@pytest.mark.parametrize("note, said", [({"note": "pip finishes first"}, "pip finishes first"), ({}, "it finishes first")])
def test_signals_during_a_shielded_command_wait_until_it_has_finished(tmp_path, capfd, note, said):
    log, ready = tmp_path / "log", tmp_path / "ready"
    send_when(ready.exists, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        runner.shielded(["/bin/sh", "-c", f"touch {ready}; sleep 1; echo finished"], log=log, **note)
    assert log.read_text() == "finished\n"
    assert capfd.readouterr().err == f"rebuilt: SIGINT received; {said}\n"


# --------------------------------------------------------------------------- process groups and the orphan check


def test_a_group_of_zombies_is_not_alive(groups):
    proc = subprocess.Popen(["/bin/sh", "-c", "exit 0"], start_new_session=True)
    groups.append(proc.pid)
    wait_until(lambda: gone(proc.pid))
    assert os.path.exists(f"/proc/{proc.pid}")  # the zombie is still there, unreaped
    assert not worklock.group_alive(proc.pid)
    assert not worklock.orphan_alive({"pgid": proc.pid})
    proc.wait()
    assert not worklock.group_alive(proc.pid)


def test_a_running_group_is_an_orphan_unless_its_leader_is_another_process(groups):
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    groups.append(proc.pid)
    assert worklock.group_alive(proc.pid)
    assert worklock.orphan_alive({"pgid": proc.pid, "pgid_start": ticks(proc.pid)})
    assert worklock.orphan_alive({"pgid": proc.pid})  # a record without the start time
    assert not worklock.orphan_alive({"pgid": proc.pid, "pgid_start": ticks(proc.pid) + 1})  # the number was reused
    assert not worklock.orphan_alive({"pgid": str(proc.pid)})


def test_members_left_after_their_leader_are_still_the_orphan(tmp_path, groups):
    pidfile = tmp_path / "bg.pid"
    leader = subprocess.Popen(["/bin/sh", "-c", f"sleep 600 & echo $! > {pidfile}"], start_new_session=True)
    groups.append(leader.pid)
    leader.wait()
    assert not gone(int(pidfile.read_text()))
    assert worklock.orphan_alive({"pgid": leader.pid, "pgid_start": 12345})


def test_a_group_that_is_not_a_session_of_its_own_is_seen_running(groups):
    proc = subprocess.Popen(["sleep", "600"], process_group=0)
    groups.append(proc.pid)
    assert os.getsid(proc.pid) != proc.pid
    assert worklock.group_alive(proc.pid)
    assert worklock.orphan_alive({"pgid": proc.pid, "pgid_start": ticks(proc.pid)})


def test_a_member_whose_name_holds_a_parenthesis_is_seen_running(tmp_path, groups):
    """/proc/PID/stat puts the name in parentheses: a name with ') Z' in it must not read as a zombie."""
    ready = tmp_path / "ready"
    script = (f"open('/proc/self/comm', 'w').write('t) Z 1 1 1'); open({str(ready)!r}, 'w').close(); "
              f"import time; time.sleep(600)")
    proc = subprocess.Popen([PY, "-c", script], start_new_session=True)
    groups.append(proc.pid)
    wait_until(ready.exists)
    assert Path(f"/proc/{proc.pid}/comm").read_text() == "t) Z 1 1 1\n"
    assert worklock.group_alive(proc.pid)
    assert worklock.orphan_alive({"pgid": proc.pid, "pgid_start": ticks(proc.pid)})


def test_records_without_a_usable_group_are_not_orphans():
    for record in ({}, {"pgid": None}, {"pgid": 0}, {"pgid": 1}, {"pgid": 2 ** 22 + 7}, {"text": "x"}):
        assert not worklock.orphan_alive(record), record


# --------------------------------------------------------------------------- the work-directory lock


def lock_path(wd: Path) -> Path:
    return wd / "state" / "build.lock"


def record(wd: Path) -> dict:
    text = lock_path(wd).read_text()
    return json.loads(text) if text.strip() else {}


def can_lock(wd: Path) -> bool:
    """Could another run take the lock now?"""
    with open(lock_path(wd), "r+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_the_lock_names_this_process_while_held_and_is_empty_and_free_after(tmp_path):
    wd = tmp_path / "wd"
    with worklock.workdir_lock(wd):
        held = record(wd)
        assert not can_lock(wd)
    assert held["pid"] == os.getpid() and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", held["since"])
    assert held["pgid"] is None and held["pgid_start"] is None and held["step"] is None
    assert lock_path(wd).read_text() == "" and can_lock(wd)


def test_the_lock_is_re_entrant_and_held_until_the_outermost_block_ends(tmp_path):
    wd = tmp_path / "wd"
    with worklock.workdir_lock(wd):
        with worklock.workdir_lock(tmp_path / "other" / ".." / "wd"):
            assert not can_lock(wd)
        assert not can_lock(wd) and record(wd)["pid"] == os.getpid()
        with worklock.workdir_lock(tmp_path / "second"):  # another work directory: its own lock
            assert not can_lock(tmp_path / "second")
        assert can_lock(tmp_path / "second")
    assert can_lock(wd)


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    wd = tmp_path / "wd"
    with pytest.raises(ValueError):
        with worklock.workdir_lock(wd):
            raise ValueError("boom")
    assert can_lock(wd) and lock_path(wd).read_text() == ""
    with worklock.workdir_lock(wd):
        assert not can_lock(wd)


@pytest.mark.parametrize("content, holder", [
    ('{"pid": 4242, "since": "2026-01-01 10:00:00"}', "pid 4242 since 2026-01-01 10:00:00"),
    ('{"pid": 4242}', "pid 4242 since ?"),
    ("held by the nightly job", "held by the nightly job"),
    ("[1, 2]", "[1, 2]"),
    ("", "another process"),
    ("{}", "another process"),
])
def test_a_busy_work_directory_names_the_holder(tmp_path, content, holder):
    wd = tmp_path / "wd"
    lock_path(wd).parent.mkdir(parents=True)
    with open(lock_path(wd), "w+") as other:
        other.write(content)
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(RebuiltError) as caught:
            with worklock.workdir_lock(wd):
                raise AssertionError("the lock was taken twice")
        assert str(caught.value) == f"another build is running in {wd} ({holder})"
        assert caught.value.hint == "wait for it to finish, or use another --workdir"
        assert lock_path(wd).read_text() == content  # the holder's record is left as it was


def test_processes_left_by_a_killed_run_keep_the_work_directory(tmp_path, groups):
    wd = tmp_path / "wd"
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    groups.append(proc.pid)
    left = {"pid": 999999, "since": "2026-01-01 10:00:00", "pgid": proc.pid, "pgid_start": ticks(proc.pid),
            "step": "[2/3] torch:build"}
    lock_path(wd).parent.mkdir(parents=True)
    lock_path(wd).write_text(json.dumps(left))
    with pytest.raises(RebuiltError) as caught:
        with worklock.workdir_lock(wd):
            raise AssertionError("the lock was taken while the group runs")
    p = proc.pid
    assert str(caught.value) == (
        f"processes of an earlier run are still running in {wd}: process group {p} (step [2/3] torch:build, "
        f"started by pid 999999, which is gone); nothing starts while they may still write there")
    assert caught.value.hint == (f"stop them: kill -TERM -- -{p} (then kill -KILL -- -{p} if they stay), "
                                 f"or wait for them to finish; then run the command again")
    assert record(wd) == left and can_lock(wd)
    lock_path(wd).write_text(json.dumps({"pgid": p}))
    with pytest.raises(RebuiltError, match=rf"process group {p} \(step \?, started by pid \?, which is gone\)"):
        with worklock.workdir_lock(wd):
            pass
    proc.kill()
    proc.wait()
    with worklock.workdir_lock(wd):
        assert record(wd)["pid"] == os.getpid()


def test_a_reused_group_number_does_not_keep_the_work_directory(tmp_path, groups):
    wd = tmp_path / "wd"
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    groups.append(proc.pid)
    lock_path(wd).parent.mkdir(parents=True)
    lock_path(wd).write_text(json.dumps({"pid": 999999, "pgid": proc.pid, "pgid_start": ticks(proc.pid) - 1}))
    with worklock.workdir_lock(wd):
        assert record(wd)["pid"] == os.getpid()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_while_the_lock_is_held_is_an_interrupt_even_in_a_nested_block(tmp_path, sig):
    with pytest.raises(signals.Terminated):
        with worklock.workdir_lock(tmp_path / "wd"):
            with worklock.workdir_lock(tmp_path / "wd"):
                os.kill(os.getpid(), sig)
                time.sleep(0.1)
    assert can_lock(tmp_path / "wd")
    with pytest.raises(UnexpectedSignal):
        os.kill(os.getpid(), sig)
        time.sleep(0.1)


def test_every_held_lock_names_the_running_step_and_forgets_it_after(tmp_path):
    seen: list[tuple[dict, dict]] = []
    with worklock.workdir_lock(tmp_path / "a"), worklock.workdir_lock(tmp_path / "b"):
        rc = runner.stream(["/bin/sh", "-c", "echo $$; sleep 0.3"], cwd="/", env={}, log=open(os.devnull, "w"),
                           console=runner.Console(open(os.devnull, "w")), label="[1/1] x:y",
                           on_line=lambda line: seen.append((int(line), record(tmp_path / "a"), record(tmp_path / "b"))))
        after = record(tmp_path / "a"), record(tmp_path / "b")
    [(pid, a, b)] = seen
    assert rc == 0 and a == b
    assert a["pgid"] == pid and a["step"] == "[1/1] x:y" and a["pid"] == os.getpid()
    assert isinstance(a["pgid_start"], int) and a["pgid_start"] > 0
    for r in after:
        assert r["pgid"] is None and r["pgid_start"] is None and r["step"] is None and r["pid"] == os.getpid()


def test_a_step_interrupted_is_forgotten_by_the_lock(tmp_path):
    argv, seen, pidfile = trapping(tmp_path)
    send_when(lambda: has_text(pidfile), signal.SIGINT)
    with worklock.workdir_lock(tmp_path / "wd"):
        with pytest.raises(Interrupted):
            runner.stream(argv, cwd="/", env={"PATH": os.environ["PATH"]}, log=open(os.devnull, "w"),
                          console=runner.Console(open(os.devnull, "w")), label="s")
        r = record(tmp_path / "wd")
    assert r["pgid"] is None and r["step"] is None


def test_the_lock_names_a_shielded_command_while_it_runs(tmp_path):
    wd, log = tmp_path / "wd", tmp_path / "log"
    with worklock.workdir_lock(wd):
        lock = lock_path(wd)
        script = (f'for i in $(seq 100); do grep -q "\\"pgid\\": $$" {lock} && break; sleep 0.05; done; '
                  f'cat {lock}; echo; echo $$')
        rc = runner.shielded(["/bin/sh", "-c", script, "sh", "more"], log=log)
        after = record(wd)
    during, pid = log.read_text().splitlines()
    during = json.loads(during)
    assert rc == 0 and during["pgid"] == int(pid) and during["step"] == f"/bin/sh -c {script} sh"
    assert isinstance(during["pgid_start"], int) and during["pgid_start"] > 0
    assert after["pgid"] is None and after["pgid_start"] is None and after["step"] is None


# --------------------------------------------------------------------------- the warden


@pytest.fixture
def dying_rebuilt(monkeypatch):
    """Call the returned function to make the warden see rebuilt's end (its pipe closed), as after kill -9.

    A fresh warden is started for the commands that follow. ``registered(pid)`` says whether the runner has
    told the warden about group ``pid`` yet (what it sends is recorded on the way)."""
    runner.warden_ready()
    old = runner._warden
    sent: list[str] = []
    to_warden = runner._to_warden

    def recording(line: str) -> None:
        sent.append(line)
        to_warden(line)

    monkeypatch.setattr(runner, "_to_warden", recording)

    def die():
        with runner._warden_lock:
            runner._warden = None
        old.stdin.close()

    die.warden = old
    die.registered = lambda pid: any(line.startswith(f"+ {pid} ") for line in sent)
    yield die
    if runner._warden is None:  # the test did not call die()
        old.stdin.close()
    old.wait(timeout=30)


def test_the_warden_ends_a_running_capture_when_rebuilt_dies(tmp_path, dying_rebuilt):
    pidfile = tmp_path / "pid"
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(
        r=runner.capture(["/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 600"], timeout=120)))
    t.start()
    wait_until(lambda: has_text(pidfile) and dying_rebuilt.registered(int(pidfile.read_text())))
    dying_rebuilt()
    t.join(timeout=60)
    assert result["r"].returncode == -signal.SIGTERM


def test_the_warden_ends_a_running_step_when_rebuilt_dies(tmp_path, dying_rebuilt):
    pidfile = tmp_path / "pid"
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(rc=runner.stream(
        ["/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 600"], cwd="/", env={}, log=open(os.devnull, "w"),
        console=runner.Console(open(os.devnull, "w")))))
    t.start()
    wait_until(lambda: has_text(pidfile) and dying_rebuilt.registered(int(pidfile.read_text())))
    dying_rebuilt()
    t.join(timeout=60)
    assert result["rc"] == -signal.SIGTERM


def test_a_dead_warden_is_started_again_before_the_next_command():
    runner.warden_ready()
    first = runner._warden
    first.kill()
    first.wait()
    runner.capture(["true"])
    assert runner._warden is not first and runner._warden.poll() is None
    runner.warden_ready()
    assert runner._warden.poll() is None


def test_after_a_normal_end_the_warden_leaves_what_a_finished_command_started(tmp_path, dying_rebuilt, groups):
    """Only running commands are the warden's: a daemon a finished command left behind outlives rebuilt."""
    r = runner.capture(["/bin/sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"])
    daemon = int(r.stdout)
    groups.append(os.getpgid(daemon))
    pidfile = tmp_path / "pid"
    rc = runner.stream(["/bin/sh", "-c", f"sleep 600 >/dev/null 2>&1 & echo $! > {pidfile}"], cwd="/", env={},
                       log=open(os.devnull, "w"), console=runner.Console(open(os.devnull, "w")))
    step_daemon = int(pidfile.read_text())
    groups.append(os.getpgid(step_daemon))
    assert rc == 0
    dying_rebuilt()
    old_warden = dying_rebuilt.warden
    old_warden.wait(timeout=30)
    assert not gone(daemon) and not gone(step_daemon)


def test_the_warden_is_out_of_the_terminals_reach_and_holds_no_folder(tmp_path):
    runner.warden_ready()
    pid = runner._warden.pid
    assert os.getsid(pid) == pid
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    assert os.readlink(f"/proc/{pid}/fd/1") == os.readlink(f"/proc/{pid}/fd/2") == "/dev/null"


def test_a_warden_that_cannot_start_is_not_fatal(monkeypatch):
    runner.warden_ready()
    with runner._warden_lock:
        old, runner._warden = runner._warden, None
    old.stdin.close()
    old.wait(timeout=30)
    monkeypatch.setattr(runner.sys, "executable", "/nonexistent/python")
    assert runner.capture(["/bin/sh", "-c", "echo still works"]).stdout == "still works\n"
    assert runner._warden is None
    monkeypatch.undo()
    runner.warden_ready()
    assert runner._warden is not None and runner._warden.poll() is None


def test_a_warden_that_stopped_reading_is_not_fatal():
    runner.warden_ready()
    deaf = subprocess.Popen(["/bin/sh", "-c", "exec 0<&-; exec sleep 600"], stdin=subprocess.PIPE,
                            start_new_session=True)
    with runner._warden_lock:
        real, runner._warden = runner._warden, deaf
    try:
        time.sleep(0.2)
        assert runner.capture(["/bin/sh", "-c", "echo still works"]).stdout == "still works\n"
    finally:
        with runner._warden_lock:
            runner._warden = real
        deaf.kill()
        deaf.wait()
        try:
            deaf.stdin.close()
        except OSError:
            pass


def start_with_pid(pid: int) -> subprocess.Popen | None:
    """Start ``sleep 600`` in a session of its own with the process id ``pid`` (a number given out again)."""
    for _ in range(200):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_the_warden_leaves_alone_a_group_whose_number_was_given_out_again(dying_rebuilt, groups):
    first = subprocess.Popen(["sleep", "600"], start_new_session=True)
    groups.append(first.pid)
    runner.guard_group(first.pid)  # registered while it runs, as every command is
    registered = ticks(first.pid)
    first.kill()
    first.wait()
    time.sleep(0.1)  # start times are counted in ticks of 10 ms: the new process must start in a later one
    reused = start_with_pid(first.pid)
    assert reused is not None, "could not get the same process id again (other processes took it)"
    groups.append(reused.pid)
    assert ticks(reused.pid) != registered
    dying_rebuilt()
    dying_rebuilt.warden.wait(timeout=30)
    assert reused.poll() is None  # another program's group: not the warden's to end
