"""The warden: ends a step's process group when rebuilt itself dies, even by ``kill -9``.

A Python process cannot clean up after SIGKILL, and PR_SET_PDEATHSIG reaches only a direct
child, not the shell's children. So the first step rebuilt starts also starts this small
watcher (``python -m rebuilt.core.warden``) in a session of its own, connected to rebuilt by a
pipe that only rebuilt holds (the write end is not inherited by steps). rebuilt writes
``+ PGID TICKS`` when a step's process group starts and ``- PGID`` when it has ended. When the
pipe reaches end-of-file, rebuilt is gone, however it ended: every group still listed gets
SIGTERM, then SIGKILL after ``GRACE_S``, and the warden exits. After a normal exit nothing is
listed and it exits at once.

A group is signalled only while it is still the one registered: when its leader is alive with
another start time (``/proc/<pid>/stat`` field 22), the number was reused and the group is left
alone. (Linux hands out no pid while it is still a live process group id, so members left after
their leader are still the step's.)

``shielded`` commands (pip replacing torch) are never registered: they must finish.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_S = 3.0


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(int(name))
    return found


def still_ours(pgid: int, ticks: int | None) -> bool:
    """Is ``pgid`` still the group that was registered with leader start time ``ticks``?"""
    now = start_ticks(pgid)
    return now is None or ticks is None or now == ticks


def end_group(pgid: int, ticks: int | None, grace: float = GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``grace``, to group ``pgid`` while it is the registered one and has members."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(pgid) or not still_ours(pgid, ticks):
            return
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        end = time.monotonic() + grace
        while time.monotonic() < end and group_members(pgid):
            time.sleep(0.05)


def watch(stream) -> dict[int, int | None]:
    """Read registrations until end-of-file; the groups still registered then."""
    groups: dict[int, int | None] = {}
    for line in stream:
        parts = line.split()
        try:
            if len(parts) == 3 and parts[0] == b"+":
                groups[int(parts[1])] = None if parts[2] == b"-" else int(parts[2])
            elif len(parts) == 2 and parts[0] == b"-":
                groups.pop(int(parts[1]), None)
        except ValueError:
            continue
    return groups


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    left = watch(sys.stdin.buffer)
    for pgid, ticks in left.items():
        end_group(pgid, ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
