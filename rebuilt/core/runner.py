"""The one place that starts processes.

``capture`` runs a short probe or helper command and returns its output;
``stream`` (below) runs one build step's command with its log and progress (rebuilt/build/builder.py
drives the plan); ``shielded``, ``spawn_detached`` and ``pipe_lines`` start the few others.
Nothing else in rebuilt calls ``subprocess`` directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rebuilt.core import signals, warden, worklock
from rebuilt.core.secret import redact, reveal, reveal_args, reveal_env
from rebuilt.core.text import expand_env, fmt_seconds
from rebuilt.errors import Interrupted, StepFailed, ToolMissing


def _argv(argv: Sequence) -> list[str]:
    """Arguments as text; a secret setting (rebuilt.core.secret.Secret) is handed over as its real value."""
    return reveal_args(argv)


def which(program: str, path: str | None = None) -> str | None:
    """Absolute path of ``program`` on PATH (or ``path``), or None."""
    return shutil.which(program, path=path)


# A step's process waits behind this gate (a /bin/sh that reads one line, then execs the command
# with stdin from /dev/null) until its group is in the lock record and with the warden: a rebuilt
# killed in between leaves no step running unrecorded (the gate reads end-of-file and exits 125).
_GATE = ["/bin/sh", "-c", 'read _ || exit 125; exec "$@" </dev/null', "rebuilt-step"]


def _behind_gate(argv: Sequence[str]) -> list[str]:
    return _GATE + list(argv)


def _open_gate(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:  # it is gone already: its exit code tells
        pass


def _findable(program: str, env: Mapping[str, str] | None, cwd: str | Path) -> bool:
    """Would exec find ``program`` (PATH from ``env``, as subprocess looks it up; a path is taken from ``cwd``)?"""
    if os.sep in program:
        return os.access(os.path.join(cwd, program), os.X_OK)
    return which(program, path=os.pathsep.join(os.get_exec_path(env))) is not None


def capture(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 60,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a short command and capture stdout/stderr as text.

    ``env`` replaces the environment when given. A missing program raises ToolMissing (exit 2);
    a time-out stops the command's whole process group and returns returncode 124 with a note
    in stderr; ``check`` raises StepFailed on a non-zero exit. The command runs in a session of
    its own (the terminal's Ctrl-C reaches rebuilt only): Ctrl-C, SIGTERM or SIGHUP to rebuilt
    stop its whole group, and so does rebuilt's death (the warden).
    """
    argv = _argv(argv)
    warden_ready()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=None if env is None else reveal_env(env), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from None
    guard_group(proc.pid)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGTERM)
        out, _ = _rest_of_output(proc)
        return subprocess.CompletedProcess(argv, 124, out, f"timed out after {timeout}s")
    except KeyboardInterrupt as exc:
        _kill_group(proc, signal.SIGTERM if isinstance(exc, signals.Terminated) else signal.SIGINT)
        raise
    finally:
        release_group(proc.pid)
    proc = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise StepFailed(f"`{' '.join(argv)}` exited {proc.returncode}:\n{tail}")
    return proc


def _rest_of_output(proc: subprocess.Popen) -> tuple[str, str]:
    """What a stopped command had written, without waiting on a pipe some escaped process still holds."""
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return "", ""
    return out or "", err or ""


def version_of_all(argv: Sequence[str], timeout: float = 15) -> str | None:
    """Everything a tool prints for its version flag (stdout + stderr), or None when absent or failing."""
    if not (os.path.isabs(argv[0]) or which(argv[0])):
        return None
    try:
        proc = capture(argv, timeout=timeout)
    except ToolMissing:
        return None
    return (proc.stdout + proc.stderr) if proc.returncode == 0 else None


def version_of(argv: Sequence[str], timeout: float = 15) -> str | None:
    """First line a tool prints for its version flag, or None when it is absent or fails."""
    text = (version_of_all(argv, timeout) or "").strip()
    return text.splitlines()[0] if text else None


# --------------------------------------------------------------------------- plan execution

TAIL_LINES = 30
HEARTBEAT_S = 60  # without a TTY, a line every minute shows a long step is alive


_warden: subprocess.Popen | None = None
_warden_lock = threading.Lock()


def warden_ready() -> None:
    """Start the warden if it is not running: called before a command starts, so that registering the
    command right after its start is a write to a pipe, not the start of another process."""
    global _warden
    with _warden_lock:
        if _warden is None or _warden.poll() is not None:
            try:
                _warden = subprocess.Popen([sys.executable, "-I", warden.__file__], stdin=subprocess.PIPE,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True, cwd="/")
            except OSError:
                _warden = None


def _to_warden(line: str) -> None:
    """Send one registration to the warden; a warden that could not start is not fatal."""
    warden_ready()
    with _warden_lock:
        if _warden is None:
            return
        try:
            _warden.stdin.write(line.encode())
            _warden.stdin.flush()
        except OSError:
            pass


def guard_group(pgid: int) -> None:
    """From now until ``release_group``, the warden ends group ``pgid`` if rebuilt dies (kill -9 included)."""
    ticks = warden.start_ticks(pgid)
    _to_warden(f"+ {pgid} {ticks if ticks is not None else '-'}\n")


def release_group(pgid: int) -> None:
    """Group ``pgid`` has been dealt with: the warden forgets it."""
    _to_warden(f"- {pgid}\n")


class Console:
    """Progress on the terminal: one line per step, a live elapsed counter on a TTY."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = self.stream.isatty()

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def status(self, text: str) -> None:
        if self.tty and not self.verbose:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()

    def end_status(self) -> None:
        if self.tty and not self.verbose:
            self.stream.write("\r\033[K")
            self.stream.flush()


@dataclass
class StepResult:
    name: str
    status: str  # done | failed | interrupted | skipped
    seconds: float = 0.0
    returncode: int | None = None
    log: str = ""
    details: dict = field(default_factory=dict)


def _kill_group(proc: subprocess.Popen, first: int = signal.SIGINT) -> None:
    """SIGINT (or ``first``), then SIGTERM, then SIGKILL to the child's whole process group, until no
    member is left.

    Background children of a non-interactive shell ignore SIGINT, so the group is checked
    again after the child itself has exited. Another Ctrl-C, SIGTERM or SIGHUP meanwhile
    does not stop this: it skips straight to SIGKILL.
    """
    pgid = proc.pid
    hurry: list[int] = []

    def escalate(signum, _frame):
        hurry.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    ladder = [(sig, 5) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)][0 if first == signal.SIGINT else 1:]
    on_main = threading.current_thread() is threading.main_thread()
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, escalate) for s in sigs} if on_main else {}
    try:
        for sig, grace in ladder:
            if hurry:
                sig = signal.SIGKILL
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                proc.poll()
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                proc.poll()
                if not worklock.group_alive(pgid):
                    return
                time.sleep(0.05)
    finally:
        for s_, handler in previous.items():
            signal.signal(s_, handler)


def stream(
    argv: Sequence[str] | str,
    *,
    cwd: str,
    env: Mapping[str, str],
    log: TextIO,
    console: Console | None = None,
    label: str = "",
    shell: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Run one command in its own process group, its output into ``log``; returns the exit code.

    Shows elapsed time on a TTY (or every line with ``console.verbose``). Ctrl-C
    stops the whole group and raises Interrupted.
    """
    console = console or Console()
    warden_ready()
    command = _argv(argv) if not shell else ["/bin/bash", "-c", str(argv)]
    if not os.path.isdir(cwd):
        raise StepFailed(f"step {label}: working directory {cwd} does not exist")
    if not _findable(command[0], env, cwd):
        raise ToolMissing(f"{command[0]} is not installed or not on PATH (step {label})")
    try:
        proc = subprocess.Popen(
            _behind_gate(command), cwd=cwd, env=dict(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, bufsize=0,
        )
    except (FileNotFoundError, NotADirectoryError):  # the folder went away in between
        raise StepFailed(f"step {label}: working directory {cwd} does not exist") from None

    def pump():
        for raw in iter(proc.stdout.readline, b""):
            line = redact(raw.decode("utf-8", "replace"))  # a step that prints its env leaks no proxy password
            log.write(line)
            log.flush()
            if console.verbose:
                console.stream.write(line)
            if on_line:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    start = last_beat = time.monotonic()
    try:
        guard_group(proc.pid)
        worklock.note_group(proc.pid, label)
        _open_gate(proc)
        reader.start()
        while proc.poll() is None:
            now = time.monotonic()
            console.status(f"{label}  {fmt_seconds(now - start)}")
            if not console.tty and not console.verbose and now - last_beat >= HEARTBEAT_S:
                console.say(f"      ... still running ({fmt_seconds(now - start)})")
                last_beat = now
            time.sleep(0.25)
    except KeyboardInterrupt as exc:
        console.end_status()
        by = signal.Signals(exc.signum).name if isinstance(exc, signals.Terminated) else "Ctrl-C"
        _kill_group(proc, signal.SIGTERM if isinstance(exc, signals.Terminated) else signal.SIGINT)
        worklock.note_group(None)
        release_group(proc.pid)
        if reader.is_alive():
            reader.join(timeout=2)
        raise Interrupted(f"interrupted during {label} ({by}); its process group was stopped") from None
    worklock.note_group(None)
    release_group(proc.pid)
    reader.join(timeout=5)
    console.end_status()
    return proc.returncode


def shielded(argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None,
             note: str = "it finishes first") -> int:
    """Run a command that must not stop halfway (pip replacing torch); returns its exit code.

    It gets its own session, so the terminal's Ctrl-C never reaches it; its output goes to
    ``log`` (a file: it outlives a killed rebuilt without a broken pipe). Ctrl-C, SIGTERM and
    SIGHUP to rebuilt are honoured once it has ended. Its group is recorded in the held lock.
    """
    argv = _argv(argv)
    if not _findable(argv[0], env, "."):
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH")
    with open(log, "ab") as out, signals.deferred_signals(note):
        proc = subprocess.Popen(_behind_gate(argv), env=None if env is None else dict(env), stdin=subprocess.PIPE,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        worklock.note_group(proc.pid, " ".join(argv[:4]))
        _open_gate(proc)
        try:
            return proc.wait()
        finally:
            worklock.note_group(None)


def tail(path: Path, n: int = TAIL_LINES) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(deque(f, maxlen=n))


def step_environment(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """Apply a step's env changes (``${VAR}`` expanded against the base) to a copy of ``base``."""
    env = dict(base)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = expand_env(reveal(value), base)  # a Secret (proxy URL) in clear for the process
    return env


# --------------------------------------------------------------------------- long-running servers


def spawn_detached(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], log: Path | str) -> subprocess.Popen:
    """Start a long-running program (a server) in its own session and return at once.

    stdin is closed; stdout and stderr go to ``log`` (appended). Its pid is its process
    group and session id, so ``os.killpg(pid, sig)`` reaches every process it starts.
    """
    argv = _argv(argv)
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(argv, cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except (FileNotFoundError, NotADirectoryError):
            if not os.path.isdir(cwd):  # a missing folder is a FileNotFoundError too
                raise StepFailed(f"working directory {cwd} does not exist") from None
            raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from None


def pipe_lines(argv: Sequence[str], *, env: Mapping[str, str], sink: Callable[[bytes], None]) -> int:
    """Run ``argv`` in this process group, each output line (stdout and stderr) to ``sink``; its exit code.

    SIGINT, SIGTERM and SIGHUP sent to this process reach the child through the group; this
    process keeps reading until the child's output ends, so no line is lost on the way down.
    """
    argv = _argv(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # before the start: no window that kills this one
        signal.signal(sig, lambda *_: None)  # the group signal reaches the child; keep draining its output
    try:
        proc = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, bufsize=0)
    except FileNotFoundError:
        sink(f"rebuilt: {argv[0]} is not installed or not on PATH\n".encode())
        return 127
    for raw in iter(proc.stdout.readline, b""):
        sink(raw)
    return proc.wait()
