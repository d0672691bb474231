"""Where a profile's state lives: ``<workdir>/serve/<profile>/state.json`` (mode 0600) and its logs.

Per role: the pid (= process group = session), its start time in clock ticks (a reused
pid is never taken for the role), port, URL, log, start time, status, and the resolved argv
and env, redacted before they are written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from rebuilt.core import shape
from rebuilt.core.fs import atomic_path, read_json
from rebuilt.core.secret import Redactor
from rebuilt.errors import ConfigError
from rebuilt.tools.serve import procs


def serve_dir(workdir: Path, profile: str) -> Path:
    """``<workdir>/serve/<profile>`` (a profile given as a path: its file name without .toml)."""
    return Path(workdir) / "serve" / (Path(profile).stem if profile.endswith(".toml") else profile)


_ROLE = shape.Obj({
    "pid": shape.INT, "port": shape.INT, "url": shape.STR, "log": shape.STR, "status": shape.STR,
    "pgid": shape.opt(shape.INT), "start_ticks": shape.opt(shape.nullable(shape.INT)),
    "started": shape.opt(shape.STR), "started_epoch": shape.opt(shape.NUM), "health": shape.opt(shape.STR),
    "ready": shape.opt(shape.ListOf(shape.STR)), "argv": shape.opt(shape.ListOf(shape.STR)),
    "env": shape.opt(shape.MapOf(shape.nullable(shape.STR))),
})
STATE = shape.Obj({
    "roles": shape.opt(shape.MapOf(_ROLE)), "order": shape.opt(shape.ListOf(shape.STR)),
    **{k: shape.opt(shape.nullable(shape.STR)) for k in ("profile", "path", "entry", "python", "host_ip", "model",
                                                        "updated")},
})


def load_state(workdir: Path, profile: str) -> dict:
    """The profile's state file checked against ``STATE`` ({} when it was never started)."""
    return read_json(serve_dir(workdir, profile) / "state.json", STATE, missing={}, what="serve state file",
                     hint="serve.up wrote it; check that none of its roles still runs, then remove it")


def save_state(workdir: Path, profile: str, state: dict, red: Redactor) -> Path:
    path = serve_dir(workdir, profile) / "state.json"
    state["updated"] = now()
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_text(json.dumps(red.deep(state), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def last_started(workdir: Path) -> str | None:
    """The profile whose state file changed last in this work directory, or None."""
    states = sorted((Path(workdir) / "serve").glob("*/state.json"), key=lambda p: p.stat().st_mtime)
    return states[-1].parent.name if states else None


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def running(entry: dict) -> bool:
    return bool(entry.get("pid")) and procs.alive(entry["pid"], entry.get("start_ticks"))


def _state_or_fail(workdir: Path, name: str) -> dict:
    state = load_state(workdir, name)
    if not state.get("roles"):
        raise ConfigError(f"profile {name} was never started in {workdir}", hint=f"inv serve.up {name}")
    return state


@contextlib.contextmanager
def locked(workdir: Path, profile: str) -> Iterator[None]:
    """One serve.up or serve.down of a profile at a time in a work directory."""
    folder = serve_dir(workdir, profile)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise ConfigError(f"another serve.up or serve.down of {profile} is running in {workdir} "
                              f"({f.read().strip() or 'pid unknown'})", hint="wait for it, then try again") from None
        f.truncate(0)
        f.write(f"pid {os.getpid()}")
        f.flush()
        yield
