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


def ours(sid: int, ticks: int | None) -> list[int]:
    """Members of session ``sid`` that belong to the role whose leader started at ``ticks``.

    None when the number now leads another program's session (the leader alive, or a zombie,
    with another start time), or when the start time is unknown: such a pid is never signalled.
    Members left after the leader exited are still the role's (Linux reuses no pid that is a
    live session or group id); each must have started no earlier than the role.
    """
    if ticks is None:
        return []
    leader = _stat(sid)
    if leader and int(leader[19]) != ticks:
        return []
    return [pid for pid in members(sid) if (start_ticks(pid) or 0) >= ticks]


def _signal(pid: int, sid: int, ticks: int, sig: int) -> None:
    """Signal ``pid`` through a pidfd, after checking (on the process the pidfd holds) that it is the role's."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None  # no pidfd (an old kernel): checked just before the signal instead
    try:
        fields = _stat(pid)
        if not fields or int(fields[19]) < ticks or sid not in (int(fields[2]), int(fields[3])):
            return
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    finally:
        if fd is not None:
            os.close(fd)


def stop(sid: int, *, ticks: int | None, grace: float = 10.0, say=None) -> str:
    """SIGINT, then SIGTERM, then SIGKILL to every member of the role's session; the signal that ended it.

    Which processes are the role's (``ours``) is decided again before every signal, so a
    number reused meanwhile by another program is never signalled.
    """
    last = None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not ours(sid, ticks):
            break
        if say and last is not None:
            say(f"    still running {grace:g}s after {last.name}: {sig.name}")
        for pid in ours(sid, ticks):
            _signal(pid, sid, ticks, sig)
        last = sig
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and ours(sid, ticks):
            time.sleep(0.1)
    if ours(sid, ticks):
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
