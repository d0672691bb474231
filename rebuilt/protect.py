"""The guard during builds: constraints for installing steps, a check after every step, restore on change.

Before each step the protected distributions (settings ``protected``) present in
the target are snapshotted; an installing step gets a constraints file pinning
each to its exact installed version (except what the step is meant to replace).
After the step the snapshot is taken again: a protected distribution that
changed is restored from its backup wheel (made automatically before the first
installing step when none exists) and the step fails, naming the step and the
package that pulled the change in.
"""

from __future__ import annotations

import re
from pathlib import Path

from rebuilt import builder, guard
from rebuilt.errors import GuardViolation, RebuiltError
from rebuilt.util.fs import write_text

_COLLECTING = re.compile(r"Collecting (?P<dist>[A-Za-z0-9_.\-]+)\S*(?: \(from (?P<by>[^)]+)\))?")


def culprit(log: Path, dist: str) -> str | None:
    """Who asked for ``dist``, from pip's 'Collecting torch==2.5.1 (from foo==1.0)' lines in a step log."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    want = guard.canonical(dist)
    for m in _COLLECTING.finditer(text):
        if guard.canonical(m.group("dist")) == want:
            return m.group("by") or "the step's own requirement"
    return None


class Guard:
    """A builder hook (see builder.HOOKS)."""

    def __init__(self, settings, workdir: Path, console, opts):
        self.python = settings.python()
        self.protected = list(settings["protected"])
        self.workdir = Path(workdir)
        self.console = console
        self.constraints = self.workdir / "state" / "constraints.txt"
        self.backups = Path(settings["backup_dir"]) if settings["backup_dir"] else self.workdir / "backups"
        self.auto_backup = settings["auto_backup"]
        self.before: dict = {}

    def before_step(self, step, env) -> None:
        if not self.protected:
            return
        self.before = guard.snapshot(self.python, self.protected)
        if step.installs:
            if self.auto_backup:
                self._ensure_backups(step)
            pinned = {k: v for k, v in self.before.items() if guard.canonical(k) not in self._replaces(step)}
            write_text(self.constraints, guard.constraints_text(pinned))

    def after_step(self, step, result) -> None:
        if not self.protected:
            return
        after = guard.snapshot(self.python, self.protected)
        changed = [d for d in guard.diff(self.before, after) if guard.canonical(d) not in self._replaces(step)]
        if not changed:
            return
        lines = []
        for dist in changed:
            was, now = self.before.get(dist), after.get(dist)
            by = culprit(Path(result.log), dist) if result.log else None
            restored = self._restore(dist, was)
            lines.append(f"{dist} {getattr(was, 'version', 'absent')} -> {getattr(now, 'version', 'removed')}"
                         f"{f' (pulled in by {by})' if by else ''}; {restored}")
        raise GuardViolation(f"step {step.title} changed protected distributions:\n  " + "\n  ".join(lines),
                             hint="install such packages through a pip-protected step, or add the distribution "
                                  "to the step's `replaces` if the change is intended")

    def _replaces(self, step) -> set[str]:
        return {guard.canonical(d) for d in step.replaces}

    def _ensure_backups(self, step) -> None:
        from rebuilt.wheel import backup

        for dist, state in self.before.items():
            if guard.canonical(dist) in self._replaces(step) or backup.find_backup(self.backups, dist, state.version):
                continue
            self.console.say(f"      guard: backing up {dist} {state.version} before the first installing step")
            try:
                path = backup.backup(self.python, dist, self.backups)
                self.console.say(f"      guard: {path}")
            except RebuiltError as exc:  # an editable torch cannot be packed: say so, keep going
                self.console.say(f"      ! guard: no backup of {dist}: {exc}")

    def _restore(self, dist: str, was) -> str:
        from rebuilt.wheel import backup, restore

        if was is None:
            return "it was not installed before; uninstall it if unwanted"
        wheel = backup.find_backup(self.backups, dist, was.version)
        if not wheel:
            return f"no backup wheel of {dist} {was.version} to restore from (inv torch.restore)"
        restore.restore(self.python, wheel)
        return f"restored from {wheel}"


builder.HOOKS.append(Guard)
