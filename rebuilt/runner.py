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


def version_of(argv: Sequence[str], timeout: float = 15) -> str | None:
    """First line a tool prints for its version flag, or None when it is absent or fails."""
    if not (os.path.isabs(argv[0]) or which(argv[0])):
        return None
    try:
        proc = capture(argv, timeout=timeout)
    except ToolMissing:
        return None
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if proc.returncode == 0 and text else None
