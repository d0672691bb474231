"""The guard during builds: constraints for installing steps, a check after every step, restore on change.

Before each step the protected distributions (settings ``protected``) present in
the target are snapshotted; an installing step gets a constraints file pinning
each to its exact installed version (except what the step is meant to replace).
After the step the snapshot is taken again: a protected distribution that
changed is restored from its backup wheel (made automatically before the first
installing step when none exists) and the step fails, naming the step and the
package that pulled the change in.

This holds on every ending of a step: success, failure and interrupt (the builder
calls ``after_step`` with the step's status), and a kill of rebuilt itself: before
each step a journal (``rebuilt.build.journal``) records what must stay as it is, and the
next build settles a journal left behind before it starts anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from rebuilt.build import guard, journal
from rebuilt.core.fs import write_text
from rebuilt.errors import GuardViolation, RebuiltError

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


def constraints(settings, recipe, step, ctx, workdir, machine) -> dict:
    """Installing steps run with a pip constraints file pinning the protected distributions."""
    if step.installs and settings["protected"]:
        return {"PIP_CONSTRAINT": str(Path(workdir) / "state" / "constraints.txt")}
    return {}


class Guard:
    """The guard's builder hook (rebuilt.build.features.FEATURES)."""

    def __init__(self, settings, workdir: Path, console, opts, machine=None):
        self.python = settings.python()
        self.protected = list(settings["protected"])
        self.workdir = Path(workdir)
        self.console = console
        self.constraints = self.workdir / "state" / "constraints.txt"
        self.backups = Path(settings["backup_dir"]) if settings["backup_dir"] else self.workdir / "backups"
        self.auto_backup = settings["auto_backup"]
        self.before: dict = {}
        self.pending = None  # the step whose journal is open
        if self.protected:
            journal.recover(self.workdir, console.say)  # a run killed mid-step left it

    def before_step(self, step, env) -> None:
        if not self.protected:
            return
        self.before = guard.snapshot(self.python, self.protected)
        if step.installs:
            if self.auto_backup:
                self._ensure_backups(step)
            pinned = {k: v for k, v in self.before.items() if guard.canonical(k) not in self._replaces(step)}
            write_text(self.constraints, guard.constraints_text(pinned))
        self._open_journal(step)

    def _open_journal(self, step) -> None:
        from rebuilt.build.wheel import backup

        wheels = {d: backup.find_backup(self.backups, d, s.version) for d, s in self.before.items()}
        journal.write(self.workdir, step=step.title, python=self.python, before=self.before, backups=wheels,
                      replaces=self._replaces(step))
        self.pending = step.title

    def after_step(self, step, result) -> None:
        """Every ending of a step (result.status done, failed or interrupted): compare, restore, close the journal.

        After a failed or interrupted step the restore is reported and the step's own error
        stands; a restore that failed there becomes the error.
        """
        if not self.protected or self.pending != step.title:
            return
        from rebuilt.core import signals

        with signals.deferred_signals("the guard checks (and restores) the protected distributions first"):
            self._settle(step, result)

    def _settle(self, step, result) -> None:
        after = guard.snapshot(self.python, self.protected)
        changed = [d for d in guard.diff(self.before, after) if guard.canonical(d) not in self._replaces(step)
                   and not guard.appeared_matches(d, self.before, after)]  # e.g. torch's own triton pin
        lines, failed = [], []
        for dist in changed:
            was, now = self.before.get(dist), after.get(dist)
            by = culprit(Path(result.log), dist) if result.log else None
            try:
                restored = self._restore(dist, was, after)
            except RebuiltError as exc:
                restored = f"restoring it failed: {exc}"
                failed.append(dist)
            lines.append(f"{guard.change_text(dist, was, now)}{f' (pulled in by {by})' if by else ''}; {restored}")
        journal.clear(self.workdir)  # checked and reported: what remains to do is in the message
        self.pending = None
        if not lines:
            return
        what = f"step {step.title} changed protected distributions"
        if result.status != "done" and not failed:
            for line in lines:
                ending = "was interrupted" if result.status == "interrupted" else result.status
                self.console.say(f"      guard: {what} before it {ending}: {line}")
            return
        raise GuardViolation(f"{what}{'' if result.status == 'done' else f' and {result.status}'}:\n  "
                             + "\n  ".join(lines),
                             hint="install such packages through a pip-protected step, or add the distribution "
                                  "to the step's `replaces` if the change is intended")

    def _replaces(self, step) -> set[str]:
        return {guard.canonical(d) for d in step.replaces}

    def _ensure_backups(self, step) -> None:
        from rebuilt.build.wheel import backup

        for dist, state in self.before.items():
            if guard.canonical(dist) in self._replaces(step) or backup.find_backup(self.backups, dist, state.version):
                continue
            self.console.say(f"      guard: backing up {dist} {state.version} before the first installing step")
            try:
                path = backup.backup(self.python, dist, self.backups)
                self.console.say(f"      guard: {path}")
            except RebuiltError as exc:  # an editable torch cannot be packed: say so, keep going
                self.console.say(f"      ! guard: no backup of {dist}: {exc}")

    def _restore(self, dist: str, was, after: dict) -> str:
        from rebuilt.build.wheel import backup, restore

        if was is None:  # absent before, at a version that does not match torch: never left installed
            return guard.remove_appeared(self.python, dist, after)
        wheel = backup.find_backup(self.backups, dist, was.version)
        if not wheel:
            return f"no backup wheel of {dist} {was.version} to restore from (inv torch.restore)"
        restore.restore(self.python, wheel, say=lambda m: self.console.say(f"      guard: {m}"))
        return f"restored from {wheel}"
