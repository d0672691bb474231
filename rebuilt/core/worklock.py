"""One build at a time per work directory: ``state/build.lock``, its record of the holder and of the
process group of the step it runs, and whether a group named there outlived a killed rebuilt.

The runner (rebuilt/core/runner.py) records each step's group here (``note_group``) before the step may
run; the next command refuses to start while such a group lives (``orphan_alive``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import TextIO

from rebuilt.core import signals, warden
from rebuilt.errors import RebuiltError

_lock_depth: dict[str, int] = {}
_lock_files: dict[str, TextIO] = {}


def group_alive(pgid: int) -> bool:
    """Has process group ``pgid`` a member that is not a zombie?

    Zombies count as gone: where nothing reaps orphans (a container whose first process
    is not an init), a dead step stays in the process table as a zombie forever. The
    process table is read by the warden's own reader (rebuilt/core/warden.py).
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed owner; treat as alive
        return True
    try:
        return bool(warden.group_members(pgid))
    except OSError:  # pragma: no cover - no procfs (macOS): the signal test is all there is
        return True


def orphan_alive(record: dict) -> bool:
    """Is the process group a lock record names still running (and still the same group)?"""
    pgid = record.get("pgid")
    if not isinstance(pgid, int) or pgid <= 1 or not group_alive(pgid):
        return False
    ticks = warden.start_ticks(pgid)
    # The leader alive with another start time: the number was reused, not our group. The leader
    # gone but members left: ours (Linux never hands out a pid still in use as a group id).
    return ticks is None or record.get("pgid_start") in (None, ticks)


def _read_record(f) -> dict:
    import json

    f.seek(0)
    text = f.read().strip()
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {"text": text}
    return data if isinstance(data, dict) else {"text": text}


def _write_record(f, record: dict) -> None:
    import json

    f.seek(0)
    f.truncate()
    f.write(json.dumps(record, sort_keys=True))
    f.flush()


def _holder(record: dict) -> str:
    if "pid" in record:
        return f"pid {record['pid']} since {record.get('since', '?')}"
    return record.get("text") or "another process"


def note_group(pgid: int | None, label: str = "") -> None:
    """Record in every held lock the process group now running (None: it ended), for the next start."""
    for f in _lock_files.values():
        record = _read_record(f)
        record.update(pgid=pgid, pgid_start=warden.start_ticks(pgid) if pgid else None, step=label if pgid else None)
        _write_record(f, record)


@contextlib.contextmanager
def workdir_lock(workdir: Path):
    """One build at a time per work directory; re-entrant within this process (chained tasks).

    The lock file (state/build.lock) names the holder's pid and the process group of the
    step it runs. A group that outlived a killed rebuilt keeps the lock: nothing starts
    while it lives.
    """
    from rebuilt.core.fs import private_dir

    state = private_dir(Path(workdir) / "state")  # 0700: the lock and state files are the user's only
    key = str(state.resolve())
    if _lock_depth.get(key, 0) == 0:
        fd = os.open(state / "build.lock", os.O_RDWR | os.O_CREAT, 0o600)
        f = os.fdopen(fd, "r+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(_read_record(f))
            f.close()
            raise RebuiltError(f"another build is running in {workdir} ({holder})",
                               hint="wait for it to finish, or use another --workdir") from None
        record = _read_record(f)
        if orphan_alive(record):
            f.close()
            pgid = record["pgid"]
            raise RebuiltError(
                f"processes of an earlier run are still running in {workdir}: process group {pgid} "
                f"(step {record.get('step') or '?'}, started by pid {record.get('pid', '?')}, which is gone); "
                f"nothing starts while they may still write there",
                hint=f"stop them: kill -TERM -- -{pgid} (then kill -KILL -- -{pgid} if they stay), "
                     f"or wait for them to finish; then run the command again")
        _write_record(f, {"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                          "pgid": None, "pgid_start": None, "step": None})
        _lock_files[key] = f
    _lock_depth[key] = _lock_depth.get(key, 0) + 1
    try:
        if _lock_depth[key] == 1:
            with signals.terminate_as_interrupt():
                yield
        else:
            yield
    finally:
        _lock_depth[key] -= 1
        if _lock_depth[key] == 0:
            f = _lock_files.pop(key)
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
