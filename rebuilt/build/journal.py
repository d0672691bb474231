"""The guard's journal: what a step may change, written before it runs, removed once checked.

``<workdir>/state/guard-journal.json`` (0600, written atomically) holds, for the step
about to run, the target interpreter, the protected distributions as they were (version,
RECORD hash, folder, and what of theirs was missing or stashed by pip) and the backup wheel
of each. After the step ends (success, failure or interrupt) the guard compares, restores and
removes it. When rebuilt itself was killed (``kill -9``, power loss), the journal is still
there: the next build, or ``inv torch.restore`` / ``inv torch.check``, finds it, compares
again, and restores from the backup wheel or says exactly which command does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from rebuilt.build import guard
from rebuilt.core import shape
from rebuilt.core.fs import read_json, write_json
from rebuilt.errors import ConfigError, GuardViolation, RebuiltError

NAME = "guard-journal.json"


def path(workdir: Path | str) -> Path:
    return Path(workdir) / "state" / NAME


def write(workdir: Path | str, *, step: str, python: str, before: dict, backups: dict, replaces=()) -> Path:
    """Say, before a step runs, what it must leave as it is (and where each backup is)."""
    data = {"step": step, "python": python, "pid": os.getpid(), "written": time.strftime("%Y-%m-%d %H:%M:%S"),
            "replaces": sorted(replaces),
            "dists": {name: {"version": st.version, "record": st.record, "path": st.path,
                             "missing": list(st.missing), "stash": list(st.stash),
                             "backup": str(backups[name]) if backups.get(name) else None}
                      for name, st in before.items()}}
    return write_json(path(workdir), data, mode=0o600, durable=True)


_TEXT = shape.nullable(shape.STR)
SHAPE = shape.Obj({
    "step": shape.STR, "python": shape.STR, "pid": shape.opt(shape.INT), "written": shape.opt(shape.STR),
    "replaces": shape.opt(shape.ListOf(shape.STR)),
    "dists": shape.MapOf(shape.Obj({"version": shape.STR, "record": shape.STR, "path": shape.opt(shape.STR),
                                    "missing": shape.opt(shape.ListOf(shape.STR)),
                                    "stash": shape.opt(shape.ListOf(shape.STR)), "backup": shape.opt(_TEXT)})),
})


def read(workdir: Path | str) -> dict | None:
    """The pending journal (checked against ``SHAPE``), or None. A damaged one is an error naming the file,
    the key and what to do."""
    p = path(workdir)
    return read_json(p, SHAPE, missing=None, what="guard journal",
                     hint=f"a killed build left it: check that environment's torch (`PYTHON -m pip show torch`), "
                          f"restore it with `inv torch.restore --wheel BACKUP` if needed, then delete {p}")


def clear(workdir: Path | str) -> None:
    try:
        path(workdir).unlink()
    except FileNotFoundError:
        pass


def before(data: dict) -> dict[str, guard.DistState]:
    """The protected distributions as the journal recorded them before the step."""
    return {n: guard.DistState(d["version"], d["record"], d.get("path", ""), missing=tuple(d.get("missing", ())),
                               stash=tuple(d.get("stash", ()))) for n, d in data["dists"].items()}


def changed(data: dict, now: dict) -> list[str]:
    """Protected distributions of a journal whose version or files differ from ``now`` (a snapshot)."""
    before_step = before(data)
    skip = {guard.canonical(r) for r in data.get("replaces", [])}
    return [d for d in guard.diff(before_step, {n: s for n, s in now.items() if n in before_step})
            if guard.canonical(d) not in skip]


def restore_command(data: dict, dist: str) -> str:
    wheel = data["dists"][dist].get("backup") or "<backup wheel>"
    return f"inv torch.restore --wheel {wheel} --dist {dist} --python {data['python']}"


def settle(workdir: Path | str, data: dict, say: Callable[[str], None], *, why: str, done=()) -> list[str]:
    """Compare the journal with the environment now, restore what changed, remove the journal.

    Returns one line per restored distribution. Raises GuardViolation (the journal stays)
    naming the exact command when a restore is impossible or fails. ``done``: distributions
    just restored by the caller (not compared again).
    """
    from rebuilt.build.wheel import restore

    python = data["python"]
    try:
        now = guard.snapshot(python, list(data["dists"]))
    except ConfigError as exc:
        raise ConfigError(f"{path(workdir)} names {python}, which cannot be inspected: {exc}",
                          hint=f"if that environment is gone, delete {path(workdir)}") from None
    lines, failed = [], []
    for dist in [d for d in changed(data, now) if guard.canonical(d) not in {guard.canonical(x) for x in done}]:
        was = data["dists"][dist]
        wheel = data["dists"][dist].get("backup")
        wheel = Path(wheel) if wheel and Path(wheel).is_file() else None
        what = guard.change_text(dist, before(data)[dist], now.get(dist))
        if wheel is None:
            failed.append(f"{what}: no backup wheel of {dist} {was['version']} is known; reinstall it, "
                          f"e.g. {restore_command(data, dist)}")
            continue
        say(f"      guard: {what} ({why}); restoring from {wheel}")
        try:
            restore.restore(python, wheel)
        except RebuiltError as exc:
            failed.append(f"{what}: restoring from {wheel} failed: {exc}\n  run: {restore_command(data, dist)}")
            continue
        lines.append(f"{what}; restored from {wheel}")
    if failed:
        raise GuardViolation(f"step {data['step']} changed protected distributions ({why}) and not all could be "
                             f"restored:\n  " + "\n  ".join(failed),
                             hint=f"the journal {path(workdir)} stays until they are restored")
    clear(workdir)
    return lines


def recover(workdir: Path | str, say: Callable[[str], None], *, done=()) -> list[str]:
    """At the start of a command: settle a journal left by a run that was killed. Returns what was restored."""
    data = read(workdir)
    if data is None:
        return []
    say(f"guard: found {path(workdir)}: step {data['step']} (pid {data.get('pid')}, {data.get('written')}) "
        f"did not finish; checking {', '.join(data['dists']) or 'nothing'} in {data['python']}")
    lines = settle(workdir, data, say, why="found after rebuilt was killed", done=done)
    say("guard: " + ("; ".join(lines) if lines else "nothing was changed; journal removed"))
    return lines
