"""The runner's ways of starting a program, called in-process: what the program gets (argv, environment,
working directory, stdin, a session of its own) and what the caller gets back (output, exit status, messages)."""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from rebuilt.core import runner, secret, worklock
from rebuilt.errors import StepFailed, ToolMissing
from tests.waiting import wait_until

PY = sys.executable
SESSION_PROBE = "import os; print(os.getsid(0) == os.getpid() == os.getpgid(0))"


@pytest.fixture(autouse=True)
def _clean_registry():
    secret.forget_secrets()
    yield
    secret.forget_secrets()


@pytest.fixture
def stdin_is_a_pipe():
    """rebuilt's own stdin is a pipe (as under a terminal it is a TTY): a program must not be handed it."""
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    yield
    os.dup2(saved, 0)
    for fd in (saved, read_end, write_end):
        os.close(fd)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def gone(pid: int) -> bool:
    """No such process, or only its zombie is left."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --------------------------------------------------------------------------- which, version_of


def test_which_finds_a_program_on_path_or_in_the_given_folders(tmp_path):
    assert runner.which("sh") and os.path.isabs(runner.which("sh"))
    assert runner.which("sh", path=str(tmp_path)) is None
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert runner.which("mytool", path=str(tmp_path)) == str(tool)
    assert runner.which("mytool") is None


def _tool(tmp_path: Path, body: str) -> Path:
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(0o755)
    return tool


def test_version_of_all_is_stdout_and_stderr_of_a_succeeding_tool(tmp_path):
    tool = _tool(tmp_path, "echo 'tool 1.2'\necho 'built by x' >&2\n")
    assert runner.version_of_all([str(tool), "--version"]) == "tool 1.2\nbuilt by x\n"
    assert runner.version_of([str(tool), "--version"]) == "tool 1.2"


def test_version_of_is_none_for_a_failing_tool_or_one_that_prints_nothing(tmp_path):
    tool = _tool(tmp_path, "echo 'tool 1.2'\nexit 1\n")
    assert runner.version_of_all([str(tool)]) is None
    assert runner.version_of([str(tool)]) is None
    silent = _tool(tmp_path, "echo '  '\n")
    assert runner.version_of([str(silent)]) is None


def test_version_of_finds_a_tool_by_name_on_path(tmp_path, monkeypatch):
    _tool(tmp_path, "echo '\n  tool 3.1 \nmore'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert runner.version_of(["tool", "--version"]) == "tool 3.1 "


def test_version_of_an_absent_tool_is_none(tmp_path):
    assert runner.version_of_all(["no-such-tool-anywhere", "--version"]) is None
    assert runner.version_of_all([str(tmp_path / "missing"), "--version"]) is None
    assert runner.version_of([str(tmp_path / "missing")]) is None


# --------------------------------------------------------------------------- capture


def test_capture_gives_stdout_and_stderr_apart_as_text():
    r = runner.capture(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert r.args == ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]


def test_capture_runs_in_the_given_folder_with_the_given_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_INHERITED", "from-rebuilt")
    r = runner.capture(["/bin/sh", "-c", 'pwd; echo "[$RUNNER_INHERITED][$ONLY]"'], cwd=tmp_path,
                       env={"ONLY": "this", "PATH": "/usr/bin:/bin"})
    assert r.stdout == f"{tmp_path}\n[][this]\n"
    r = runner.capture(["/bin/sh", "-c", 'echo "[$RUNNER_INHERITED]"'])
    assert r.stdout == "[from-rebuilt]\n"  # without env: rebuilt's own environment


def test_capture_feeds_input_or_else_an_empty_stdin(stdin_is_a_pipe):
    assert runner.capture(["cat"], input="line one\nline two\n").stdout == "line one\nline two\n"
    r = runner.capture(["/bin/sh", "-c", "readlink /proc/self/fd/0; cat"])
    assert r.stdout == "/dev/null\n"


def test_capture_runs_the_command_in_a_session_of_its_own():
    assert runner.capture([PY, "-c", SESSION_PROBE]).stdout == "True\n"


def test_capture_of_a_missing_program_says_it_is_not_installed():
    with pytest.raises(ToolMissing, match="^no-such-tool-anywhere is not installed or not on PATH$"):
        runner.capture(["no-such-tool-anywhere", "--version"])


def test_capture_with_check_quotes_the_command_and_the_last_30_lines():
    script = "for i in $(seq 1 40); do echo line-$i; done; echo last-words >&2; exit 5"
    with pytest.raises(StepFailed) as caught:
        runner.capture(["/bin/sh", "-c", script], check=True)
    text = str(caught.value)
    assert text.startswith(f"`/bin/sh -c {script}` exited 5:\n")
    assert "line-12\n" in text and "line-40\nlast-words" in text and "line-11\n" not in text
    ok = runner.capture(["/bin/sh", "-c", "echo fine"], check=True)
    assert (ok.returncode, ok.stdout) == (0, "fine\n")


def test_a_capture_that_times_out_keeps_what_was_written_and_ends_the_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    r = runner.capture(["/bin/sh", "-c", f"echo partial; sleep 600 & echo $! > {pidfile}; wait"], timeout=1)
    assert r.returncode == 124 and r.stdout == "partial\n" and r.stderr == "timed out after 1s"
    assert r.args == ["/bin/sh", "-c", f"echo partial; sleep 600 & echo $! > {pidfile}; wait"]
    assert gone(int(pidfile.read_text()))


def test_a_capture_that_times_out_returns_although_an_escaped_process_holds_its_output(tmp_path):
    """A process that left the group (setsid) keeps the pipe open: the runner does not wait for it."""
    pidfile = tmp_path / "escaped.pid"
    script = (f"import os, subprocess, time; p = subprocess.Popen(['sleep', '600'], start_new_session=True); "
              f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(600)")
    try:
        r = runner.capture([PY, "-c", script], timeout=2)
        assert r.returncode == 124 and r.stderr == "timed out after 2s"
        assert r.stdout in ("", "started\n")
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


# --------------------------------------------------------------------------- stream


def test_stream_writes_stdout_and_stderr_to_the_log_and_returns_the_exit_status(tmp_path):
    log = io.StringIO()
    lines: list[str] = []
    rc = runner.stream(["/bin/sh", "-c", "pwd; echo \"[$ONLY][$HOME]\"; echo oops >&2; exit 4"], cwd=str(tmp_path),
                       env={"ONLY": "this"}, log=log, console=runner.Console(io.StringIO()), label="s",
                       on_line=lines.append)
    assert rc == 4
    assert log.getvalue() == f"{tmp_path}\n[this][]\noops\n"
    assert lines == [f"{tmp_path}\n", "[this][]\n", "oops\n"]


def test_stream_has_every_line_in_the_log_when_it_returns(tmp_path):
    log = io.StringIO()
    rc = runner.stream([PY, "-c", "import sys\nfor i in range(3000): sys.stdout.write(f'row {i}\\n')"],
                       cwd=str(tmp_path), env={}, log=log, console=runner.Console(io.StringIO()))
    assert rc == 0 and log.getvalue().splitlines()[-1] == "row 2999" and len(log.getvalue().splitlines()) == 3000


def test_a_process_that_keeps_a_steps_output_open_does_not_keep_rebuilt_from_exiting(tmp_path):
    """The step ended but its background child still holds the pipe: the reading thread must not block exit."""
    import threading

    def blocking() -> set:
        return {t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon}

    pidfile = tmp_path / "bg.pid"
    before = blocking()
    try:
        rc = runner.stream(["/bin/sh", "-c", f"sleep 600 & echo $! > {pidfile}; echo done"], cwd="/", env={},
                           log=io.StringIO(), console=runner.Console(io.StringIO()))
        assert rc == 0
        assert blocking() - before == set()
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_stream_with_shell_runs_the_text_with_bash(tmp_path):
    log = io.StringIO()
    rc = runner.stream('echo "$BASH_VERSION" | cut -c1; [[ a == a ]] && echo bash-only', shell=True, cwd=str(tmp_path),
                       env={}, log=log, console=runner.Console(io.StringIO()))
    assert rc == 0 and log.getvalue().splitlines()[1] == "bash-only" and log.getvalue()[0].isdigit()


def test_stream_gives_the_step_no_stdin_and_a_session_of_its_own(tmp_path, stdin_is_a_pipe):
    log = io.StringIO()
    runner.stream(["/bin/sh", "-c", "readlink /proc/self/fd/0"], cwd="/", env={}, log=log,
                  console=runner.Console(io.StringIO()))
    runner.stream([PY, "-c", SESSION_PROBE], cwd="/", env={}, log=log, console=runner.Console(io.StringIO()))
    assert log.getvalue() == "/dev/null\nTrue\n"


def test_stream_masks_secrets_and_survives_bytes_that_are_not_utf8(tmp_path):
    secret.register_secret("hunter2-pass-value")
    log = io.StringIO()
    rc = runner.stream(["/bin/sh", "-c", r"echo pw=hunter2-pass-value; printf 'bad \377 byte\n'"], cwd="/", env={},
                       log=log, console=runner.Console(io.StringIO()))
    assert rc == 0 and log.getvalue() == "pw=***\nbad \ufffd byte\n"


def test_a_verbose_console_shows_every_line_and_no_status(tmp_path):
    out = TTY()
    log = io.StringIO()
    runner.stream(["/bin/sh", "-c", "echo one; sleep 0.6; echo two"], cwd="/", env={}, log=log,
                  console=runner.Console(out, verbose=True), label="lbl")
    assert out.getvalue() == "one\ntwo\n"


def test_a_tty_console_shows_the_label_with_the_elapsed_time_then_clears_it(tmp_path):
    out = TTY()
    runner.stream(["/bin/sh", "-c", "sleep 0.6"], cwd="/", env={}, log=io.StringIO(), console=runner.Console(out),
                  label="[1/1] a:b")
    assert out.getvalue().startswith("\r\033[K[1/1] a:b  0.")
    assert out.getvalue().endswith("s\r\033[K") and "still running" not in out.getvalue()


def test_a_step_without_a_label_shows_only_the_elapsed_time():
    out = TTY()
    runner.stream(["/bin/sh", "-c", "sleep 0.3"], cwd="/", env={}, log=io.StringIO(), console=runner.Console(out))
    assert out.getvalue().startswith("\r\033[K  0.")


def test_without_a_tty_a_long_step_prints_a_line_now_and_then(monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_S", 1.0)
    out = io.StringIO()
    started = time.monotonic()
    runner.stream(["/bin/sh", "-c", "sleep 2.5"], cwd="/", env={}, log=io.StringIO(), console=runner.Console(out),
                  label="x")
    intervals = (time.monotonic() - started) / runner.HEARTBEAT_S
    lines = out.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"      \.\.\. still running \(\d+\.\ds\)", line) for line in lines), lines
    assert len(lines) <= intervals  # one per interval, not one per look at the step
    for quiet in (TTY(), io.StringIO()):  # verbose: the step's own lines show it is alive
        runner.stream(["/bin/sh", "-c", "sleep 0.6"], cwd="/", env={}, log=io.StringIO(),
                      console=runner.Console(quiet, verbose=True), label="x")
        assert quiet.getvalue() == ""


def test_stream_of_a_missing_program_or_folder_says_which(tmp_path):
    console = runner.Console(io.StringIO())
    with pytest.raises(ToolMissing, match=r"^no-such-tool-anywhere is not installed or not on PATH \(step lbl\)$"):
        runner.stream(["no-such-tool-anywhere"], cwd="/", env={}, log=io.StringIO(), console=console, label="lbl")
    a_file = tmp_path / "file"
    a_file.write_text("")
    for cwd in (a_file, tmp_path / "missing"):
        with pytest.raises(StepFailed, match=f"^step lbl: working directory {cwd} does not exist$"):
            runner.stream(["/bin/true"], cwd=str(cwd), env={}, log=io.StringIO(), console=console, label="lbl")


def test_stream_finds_a_program_given_as_a_path_from_the_steps_folder(tmp_path):
    tool = tmp_path / "configure"
    tool.write_text("#!/bin/sh\necho configured\n")
    tool.chmod(0o755)
    log = io.StringIO()
    console = runner.Console(io.StringIO())
    assert runner.stream(["./configure"], cwd=str(tmp_path), env={}, log=log, console=console) == 0
    assert log.getvalue() == "configured\n"
    with pytest.raises(ToolMissing, match=r"^\./configure is not installed or not on PATH \(step s\)$"):
        runner.stream(["./configure"], cwd="/", env={}, log=io.StringIO(), console=console, label="s")


@pytest.mark.parametrize("call", ["stream", "shielded"])
def test_a_program_is_looked_up_on_the_steps_path_and_a_relative_one_from_its_folder(tmp_path, monkeypatch, call):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("only-on-the-steps-path", "here-tool"):
        (tools / name).write_text(f"#!/bin/sh\necho {name}\n")
        (tools / name).chmod(0o755)
    monkeypatch.chdir(tools)  # shielded runs in rebuilt's own folder

    def go(argv, env):
        if call == "stream":
            log = io.StringIO()
            rc = runner.stream(argv, cwd=str(tools), env=env, log=log, console=runner.Console(io.StringIO()))
            return rc, log.getvalue()
        log = tmp_path / f"log-{len(argv[0])}-{len(env.get('PATH', ''))}"
        return runner.shielded(argv, env=env, log=log), log.read_text()

    assert go(["only-on-the-steps-path"], {"PATH": str(tools)}) == (0, "only-on-the-steps-path\n")
    assert go(["./here-tool"], {}) == (0, "here-tool\n")
    with pytest.raises(ToolMissing):  # on rebuilt's PATH, not on the step's
        go(["sh"], {"PATH": str(tmp_path / "empty")})


@pytest.mark.parametrize("call", ["stream", "shielded"])
def test_a_step_runs_only_once_its_group_is_in_the_lock_record(tmp_path, monkeypatch, call):
    """kill -9 between starting a step and recording its group must not leave an unrecorded step running:
    the command waits behind a gate the runner opens after recording."""
    marker = tmp_path / "ran"
    seen: list[tuple[int | None, bool]] = []
    recorded = worklock.note_group

    def note_then_look(pgid, label=""):
        recorded(pgid, label)
        if pgid:
            time.sleep(0.5)  # a slow parent: the step would have run by now without the gate
        seen.append((pgid, marker.exists()))

    monkeypatch.setattr(worklock, "note_group", note_then_look)
    argv = ["/bin/sh", "-c", f"touch {marker}"]
    if call == "stream":
        rc = runner.stream(argv, cwd="/", env={}, log=io.StringIO(), console=runner.Console(io.StringIO()))
    else:
        rc = runner.shielded(argv, log=tmp_path / "log")
    assert rc == 0 and marker.exists()
    assert seen[0][0] and seen[0][1] is False and seen[-1] == (None, True)


def test_a_step_whose_runner_died_before_opening_the_gate_runs_nothing(tmp_path):
    import subprocess

    marker = tmp_path / "ran"
    proc = subprocess.Popen(runner._behind_gate(["touch", str(marker)]), stdin=subprocess.PIPE)
    proc.stdin.close()  # what the kernel does to the pipe of a rebuilt killed with -9
    assert proc.wait(timeout=10) == 125 and not marker.exists()


def test_a_steps_folder_removed_between_the_check_and_the_start_is_named(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: str(p) == str(gone) or real_isdir(p))  # it was there at the check
    with pytest.raises(StepFailed, match=f"^step lbl: working directory {gone} does not exist$"):
        runner.stream(["/bin/true"], cwd=str(gone), env={}, log=io.StringIO(), console=runner.Console(io.StringIO()),
                      label="lbl")


def test_console_says_lines_and_shows_status_only_on_a_terminal():
    plain = io.StringIO()
    console = runner.Console(plain)
    console.say("hello")
    console.status("busy")
    console.end_status()
    assert plain.getvalue() == "hello\n" and not console.tty
    tty = TTY()
    console = runner.Console(tty)
    console.status("busy")
    console.end_status()
    assert tty.getvalue() == "\r\033[Kbusy\r\033[K"


def test_a_line_said_reaches_the_file_at_once(tmp_path):
    """Heartbeats and step lines are not held in a buffer: whoever watches the output sees them now."""
    with open(tmp_path / "out", "w") as f:
        runner.Console(f).say("step 1 done")
        assert (tmp_path / "out").read_text() == "step 1 done\n"


def test_console_writes_to_stdout_by_default(capsys):
    runner.Console().say("to stdout")
    assert capsys.readouterr().out == "to stdout\n"


# --------------------------------------------------------------------------- shielded, spawn_detached, pipe_lines


def test_shielded_appends_the_output_to_the_log_and_returns_the_status(tmp_path, stdin_is_a_pipe):
    log = tmp_path / "pip.log"
    log.write_bytes(b"earlier\n")
    rc = runner.shielded(["/bin/sh", "-c", 'echo "[$ONLY]"; echo err >&2; readlink /proc/self/fd/0; exit 6'], log=log,
                         env={"ONLY": "this"})
    assert rc == 6 and log.read_text() == "earlier\n[this]\nerr\n/dev/null\n"


def test_shielded_without_env_inherits_rebuilts_and_runs_in_its_own_session(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_INHERITED", "yes")
    log = tmp_path / "log"
    assert runner.shielded(["/bin/sh", "-c", 'echo "[$RUNNER_INHERITED]"'], log=log) == 0
    assert runner.shielded([PY, "-c", SESSION_PROBE], log=log) == 0
    assert log.read_text() == "[yes]\nTrue\n"


def test_shielded_hands_a_secret_over_in_clear(tmp_path):
    log = tmp_path / "log"
    assert runner.shielded(["/bin/sh", "-c", 'echo "$1"', "sh", secret.Secret("tok-shield-31")], log=log) == 0
    assert log.read_text() == "tok-shield-31\n"


def test_shielded_of_a_missing_program_says_it_is_not_installed(tmp_path):
    with pytest.raises(ToolMissing, match="^no-such-tool-anywhere is not installed or not on PATH$"):
        runner.shielded(["no-such-tool-anywhere"], log=tmp_path / "log")


def test_spawn_detached_returns_at_once_with_the_server_in_its_own_session(tmp_path, stdin_is_a_pipe):
    log = tmp_path / "server.log"
    log.write_bytes(b"earlier\n")
    script = ("import os, sys; print(os.getcwd(), os.environ.get('ONLY'), os.environ.get('RUNNER_X'), "
              "os.readlink('/proc/self/fd/0'), flush=True); print('err', file=sys.stderr, flush=True); "
              "print(os.getsid(0) == os.getpid() == os.getpgid(0), flush=True); sys.stdin.read(); import time; "
              "time.sleep(600)")
    proc = runner.spawn_detached([PY, "-c", script], cwd=tmp_path, env={"ONLY": "this"}, log=str(log))
    try:
        assert proc.poll() is None
        wait_until(lambda: log.read_text().count("\n") >= 4)
        assert log.read_text() == f"earlier\n{tmp_path} this None /dev/null\nerr\nTrue\n"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_spawn_detached_of_a_missing_program_or_folder_says_which(tmp_path):
    with pytest.raises(ToolMissing, match="^no-such-tool-anywhere is not installed or not on PATH$"):
        runner.spawn_detached(["no-such-tool-anywhere"], cwd=tmp_path, env={}, log=tmp_path / "log")
    a_file = tmp_path / "file"
    a_file.write_text("")
    for cwd in (a_file, tmp_path / "missing"):
        with pytest.raises(StepFailed, match=f"^working directory {cwd} does not exist$"):
            runner.spawn_detached(["/bin/true"], cwd=cwd, env={}, log=tmp_path / "log")


@pytest.fixture
def restore_handlers():
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in sigs}
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_pipe_lines_hands_every_line_to_the_sink_and_returns_the_status(restore_handlers, stdin_is_a_pipe):
    seen: list[bytes] = []
    rc = runner.pipe_lines(["/bin/sh", "-c", 'echo "[$ONLY][$HOME]"; echo err >&2; readlink /proc/self/fd/0; '
                            'ps -o pgid= -p $$; exit 9'], env={"ONLY": "this", "PATH": os.environ["PATH"]},
                           sink=seen.append)
    assert rc == 9
    assert seen[:3] == [b"[this][]\n", b"err\n", b"/dev/null\n"]
    assert int(seen[3]) == os.getpgid(0)  # in this process group: signals to the group reach it


def test_pipe_lines_of_a_missing_program_tells_the_sink(restore_handlers):
    seen: list[bytes] = []
    assert runner.pipe_lines(["no-such-tool-anywhere"], env={}, sink=seen.append) == 127
    assert seen == [b"rebuilt: no-such-tool-anywhere is not installed or not on PATH\n"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_pipe_lines_keeps_reading_after_a_signal_to_this_process(tmp_path, restore_handlers, sig):
    ready = tmp_path / "ready"
    seen: list[bytes] = []
    script = f"echo before; touch {ready}; sleep 1; echo after"

    def send():
        wait_until(ready.exists)
        os.kill(os.getpid(), sig)

    import threading

    threading.Thread(target=send, daemon=True).start()
    rc = runner.pipe_lines(["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"]}, sink=seen.append)
    assert rc == 0 and seen == [b"before\n", b"after\n"]


# --------------------------------------------------------------------------- small helpers


def test_tail_is_the_last_lines_of_a_log(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"".join(b"l%d\n" % i for i in range(50)) + b"bad \xff\n")
    assert runner.tail(log) == "".join(f"l{i}\n" for i in range(21, 50)) + "bad \ufffd\n"
    assert runner.tail(log, 2) == "l49\nbad \ufffd\n"


def test_step_environment_sets_expands_and_removes_without_touching_the_base():
    base = {"PATH": "/usr/bin", "DROP": "x", "KEEP": "k"}
    env = runner.step_environment(base, {"PATH": "/opt/bin:${PATH}", "DROP": None, "ABSENT": None,
                                         "TOKEN": secret.Secret("tok-env-77")})
    assert env == {"PATH": "/opt/bin:/usr/bin", "KEEP": "k", "TOKEN": "tok-env-77"}
    assert base == {"PATH": "/usr/bin", "DROP": "x", "KEEP": "k"}


def test_the_state_folder_and_lock_file_are_the_users_only(tmp_path):
    with worklock.workdir_lock(tmp_path / "wd"):
        pass
    assert stat.S_IMODE((tmp_path / "wd" / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "wd" / "state" / "build.lock").stat().st_mode) == 0o600
