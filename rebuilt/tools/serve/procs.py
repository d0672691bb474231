"""The process table and listening sockets, read from /proc (Linux), and stopping a session.

A role runs as the leader of its own session and process group; everything it starts
stays in that session unless it calls setsid itself. ``members`` finds them all, so
``stop`` leaves nothing running. A pid is only trusted together with its start time
(/proc/<pid>/stat field 22), so a reused number is never mistaken for a role.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"


def _stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name), or None when gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, ticks: int | None = None) -> bool:
    """``pid`` runs (not a zombie) and, when ``ticks`` is given, is the process started then."""
    fields = _stat(pid)
    if not fields or fields[0] == "Z":
        return False
    return ticks is None or int(fields[19]) == ticks


def cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (or process group ``sid``): the role and all it started."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] != "Z" and (int(fields[2]) == sid or int(fields[3]) == sid):
            found.append(int(entry.name))
    return found


def _signal_all(sid: int, sig: int) -> None:
    for pid in members(sid):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop(sid: int, grace: float = 10.0, say=None) -> str:
    """SIGINT, then SIGTERM, then SIGKILL to every member of the session; returns the signal that ended it."""
    last = None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not members(sid):
            break
        if say and last is not None:
            say(f"    still running {grace:g}s after {last.name}: {sig.name}")
        _signal_all(sid, sig)
        last = sig
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and members(sid):
            time.sleep(0.1)
    if members(sid):
        return "still running after SIGKILL (processes of another user?)"
    return last.name if last is not None else "already gone"


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == LISTEN and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def port_holder(port: int) -> str | None:
    """Who listens on ``port`` on this host ("pid 123 (python3 -m ...)"), or None when it is free."""
    inodes = _listen_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    cmd = cmdline(int(entry.name))
                    return f"pid {entry.name} ({cmd[:120]})"
            except OSError:
                continue
    return "a process of another user (its pid is not visible to you)"
