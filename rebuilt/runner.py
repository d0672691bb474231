"""The one place that starts processes.

``capture`` runs a short probe or helper command and returns its output;
``run_plan`` (below) runs a build plan step by step with logs and progress.
Nothing else in rebuilt calls ``subprocess`` directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from rebuilt.errors import ToolMissing


def which(program: str, path: str | None = None) -> str | None:
    """Absolute path of ``program`` on PATH (or ``path``), or None."""
    return shutil.which(program, path=path)


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

    ``env`` replaces the environment when given. A missing program raises
    ToolMissing (exit 2); a time-out returns returncode 124 with a note in stderr.
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=None if env is None else dict(env), text=True,
            capture_output=True, timeout=timeout, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return subprocess.CompletedProcess(argv, 124, out, f"timed out after {timeout}s")
    if check and proc.returncode != 0:
        from rebuilt.errors import StepFailed

        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise StepFailed(f"`{' '.join(argv)}` exited {proc.returncode}:\n{tail}")
    return proc


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

import contextlib  # noqa: E402
import fcntl  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable, TextIO  # noqa: E402

from rebuilt.errors import Interrupted, RebuiltError, StepFailed  # noqa: E402
from rebuilt.util.text import expand_env, fmt_seconds, redact  # noqa: E402

TAIL_LINES = 30
HEARTBEAT_S = 60  # without a TTY, a line every minute shows a long step is alive
_lock_depth: dict[str, int] = {}
_lock_files: dict[str, TextIO] = {}


@contextlib.contextmanager
def workdir_lock(workdir: Path):
    """One build at a time per work directory; re-entrant within this process (chained tasks)."""
    from rebuilt.util.fs import private_dir

    state = private_dir(Path(workdir) / "state")  # 0700: the lock and state files are the user's only
    key = str(state.resolve())
    if _lock_depth.get(key, 0) == 0:
        f = open(state / "build.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RebuiltError(f"another build is running in {workdir} ({holder})",
                               hint="wait for it to finish, or use another --workdir") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}")
        f.flush()
        _lock_files[key] = f
    _lock_depth[key] = _lock_depth.get(key, 0) + 1
    try:
        yield
    finally:
        _lock_depth[key] -= 1
        if _lock_depth[key] == 0:
            f = _lock_files.pop(key)
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()


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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed owner; treat as alive
        return True
    return True


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the child's whole process group, until no member is left.

    Background children of a non-interactive shell ignore SIGINT, so the group is
    checked again after the child itself has exited.
    """
    pgid = proc.pid
    for sig, grace in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            proc.poll()
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if not _group_alive(pgid):
                return
            time.sleep(0.1)


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
    try:
        proc = subprocess.Popen(
            argv if not shell else ["/bin/bash", "-c", str(argv)], cwd=cwd, env=dict(env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, bufsize=0,
        )
    except FileNotFoundError:
        prog = argv[0] if not shell else "/bin/bash"
        raise ToolMissing(f"{prog} is not installed or not on PATH (step {label})") from None
    except NotADirectoryError:
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
    reader.start()
    start = last_beat = time.monotonic()
    try:
        while proc.poll() is None:
            now = time.monotonic()
            console.status(f"{label}  {fmt_seconds(now - start)}")
            if not console.tty and not console.verbose and now - last_beat >= HEARTBEAT_S:
                console.say(f"      ... still running ({fmt_seconds(now - start)})")
                last_beat = now
            time.sleep(0.25)
    except KeyboardInterrupt:
        console.end_status()
        _kill_group(proc)
        reader.join(timeout=2)
        raise Interrupted(f"interrupted during {label}; its process group was stopped") from None
    reader.join(timeout=5)
    console.end_status()
    return proc.returncode


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
            env[name] = expand_env(value, base)
    return env


# --------------------------------------------------------------------------- long-running servers


def spawn_detached(argv: Sequence[str], *, cwd: str | Path, env: Mapping[str, str], log: Path | str) -> subprocess.Popen:
    """Start a long-running program (a server) in its own session and return at once.

    stdin is closed; stdout and stderr go to ``log`` (appended). Its pid is its process
    group and session id, so ``os.killpg(pid, sig)`` reaches every process it starts.
    """
    argv = [str(a) for a in argv]
    with open(log, "ab") as out:
        try:
            return subprocess.Popen(argv, cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from None
        except NotADirectoryError:
            raise StepFailed(f"working directory {cwd} does not exist") from None


def pipe_lines(argv: Sequence[str], *, env: Mapping[str, str], sink: Callable[[bytes], None]) -> int:
    """Run ``argv`` in this process group, each output line (stdout and stderr) to ``sink``; its exit code.

    SIGINT, SIGTERM and SIGHUP sent to this process reach the child through the group; this
    process keeps reading until the child's output ends, so no line is lost on the way down.
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.Popen(argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, bufsize=0)
    except FileNotFoundError:
        sink(f"rebuilt: {argv[0]} is not installed or not on PATH\n".encode())
        return 127
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # the group signal reaches the child; keep draining its output
    for raw in iter(proc.stdout.readline, b""):
        sink(raw)
    return proc.wait()
