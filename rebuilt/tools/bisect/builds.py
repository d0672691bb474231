"""One candidate commit built by the build machinery, earlier builds reused, the starting build put back.

A candidate is built exactly as ``inv build.<recipe> --ref <commit>`` builds it
(``rebuilt.builder.build``: checks, guard, shim, ccache, stamps, a manifest). After a
successful build its stamp and wheels are kept under ``<bisect dir>/builds/<commit>/``
(the wheelhouse keeps only the newest wheel of a name, and every commit has the same
one). Visiting that commit again (``--resume``, a second bisection) checks it out,
puts its stamp back and lets the no-op machinery decide: unchanged inputs reinstall
the kept wheel instead of compiling. The same route puts the starting build back at
the end. Folders a recipe lists under ``[bisect] clear`` (FlashInfer's JIT cache) are
removed before every candidate and before the restore.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rebuilt.build import builder, guard, sources
from rebuilt.build import manifest as manifest_mod
from rebuilt.build.features import stamps
from rebuilt.core import recipes, runner
from rebuilt.core.fs import atomic_path, mark_cachedir, sha256_file, write_json
from rebuilt.core.text import expand_env
from rebuilt.errors import ConfigError, StepFailed

# Written as the "installed" version of a stamp put back for reuse: every commit's wheel has the same
# version, so the version alone cannot tell which commit the environment holds; this never matches,
# and the stamps hook reinstalls the kept wheel.
NOT_THIS_BUILD = "(another commit's build may be installed)"


class Builds:
    def __init__(self, *, settings_for: Callable, recipe: str, folder: Path, console: runner.Console,
                 checks: bool, verbose: bool):
        self.settings_for = settings_for  # ref (None: the settings' own) -> Settings
        self.recipe = recipes.get(recipe)
        self.folder = Path(folder)
        self.console = console
        self.checks = checks
        self.verbose = verbose
        owner = recipes.get(self.recipe.source.from_) if self.recipe.source and self.recipe.source.from_ \
            else self.recipe
        if not owner.source:
            raise ConfigError(f"recipe {recipe} has no [source]: there are no commits to bisect")
        self.owner = owner
        self._last_start = 0

    # ------------------------------------------------------------------ paths
    def ref_key(self) -> str:
        return f"{self.owner.name}.ref"

    def source_dir(self) -> Path:
        return self.settings_for(None).workdir() / "src" / self.owner.source.dir

    def _stamp_path(self, settings) -> Path:
        return settings.workdir() / "state" / "stamps" / f"{self.recipe.name}.json"

    # ------------------------------------------------------------------ building
    def clear_caches(self) -> None:
        for raw in self.recipe.bisect_clear:
            text = os.path.expanduser(expand_env(raw, os.environ)).strip()
            if not text:  # a ${VAR} that is not set: nothing to clear
                continue
            path = Path(text)
            if not path.is_absolute():
                raise ConfigError(f"{self.recipe.path} [bisect] clear: {raw!r} is not an absolute path ({text})",
                                  hint="start it with ~ or / (or a ${VAR} holding an absolute path)")
            path = path.resolve()
            if len(path.parts) < 3 or path == Path.home().resolve():
                raise ConfigError(f"{self.recipe.path} [bisect] clear: refusing to remove {path}",
                                  hint="name the cache folder itself, e.g. ~/.cache/flashinfer")
            if path.exists():
                shutil.rmtree(path)
                self.console.say(f"  removed {path} ([bisect] clear of {self.recipe.path.name})")

    def _opts(self, **kw) -> builder.Options:
        return builder.Options(checks=self.checks, verbose=self.verbose, **kw)

    def _new_second(self) -> None:
        """Build run ids have one-second resolution: never start two builds in the same second."""
        wait = self._last_start + 1.05 - time.time()
        if wait > 0:
            time.sleep(wait)
        self._last_start = time.time()

    def _checkout(self, settings) -> None:
        self._new_second()
        builder.build(settings, [self.recipe.name], builder.Options(source_only=True, checks=False,
                                                                   verbose=self.verbose), self.console)

    def fetch(self, ref: str) -> None:
        """Check ``ref`` out (fetched when the checkout lacks it); nothing is built."""
        self._checkout(self.settings_for(ref))

    def _put_stamp(self, settings, saved: Path) -> None:
        stamp = stamps.read_stamp(saved)
        stamp["installed"] = {dist: NOT_THIS_BUILD for dist in stamp.get("installed", {})}
        write_json(self._stamp_path(settings), stamp)

    def _settle_stamp(self, settings, saved: Path) -> None:
        """After a reuse the environment does hold that build: its stamp, as it was written, is true again."""
        write_json(self._stamp_path(settings), stamps.read_stamp(saved))

    def build(self, commit: str, ref: str | None = None) -> dict:
        """Build (or reuse) ``commit`` (named ``ref`` when given: a tag builds as `--ref <tag>` does).

        Returns {status: built | reused | up to date | failed, manifest, ...}.
        """
        self.clear_caches()
        settings = self.settings_for(ref or commit)
        saved = self.folder / "builds" / commit / "stamp.json"
        self._checkout(settings)  # the stamps compare the checkout as it is: put the candidate there first
        if saved.exists():
            self._put_stamp(settings, saved)
        self._new_second()
        started = time.time()
        try:
            out = builder.build(settings, [self.recipe.name], self._opts(), self.console)
        except StepFailed as exc:
            return {"status": "failed", "manifest": self._manifest_since(settings, started),
                    "error": str(exc).splitlines()[0]}
        if self.recipe.name in out.skipped:
            reason = out.skipped[self.recipe.name]
            if saved.exists():
                self._settle_stamp(settings, saved)
            else:  # built before the bisection (the good ref, often): keep it too
                self._keep(settings, commit)
            return {"status": "reused" if reason.startswith("reused") else "up to date", "reason": reason}
        manifest = out.manifests[-1]
        self._keep(settings, commit, manifest_mod.read(manifest).get("run_id"))
        return {"status": "built", "manifest": str(manifest)}

    def _manifest_since(self, settings, started: float) -> str | None:
        found = [p for p in (settings.workdir() / "manifests").glob(f"*-{self.recipe.name}.json")
                 if p.stat().st_mtime >= started - 1]
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None

    def _keep(self, settings, commit: str, run_id: str | None = None) -> None:
        """Copy the current stamp (of build ``run_id`` when given) and its wheels under builds/<commit>/.

        Nothing is kept for editable installs (no wheel), for a stamp of another commit, or when a
        wheel's bytes are no longer the stamp's (the wheelhouse holds one wheel per name).
        """
        path = self._stamp_path(settings)
        if not path.exists():
            return
        stamp = stamps.read_stamp(path)
        if (run_id and stamp.get("run_id") != run_id) or \
                (stamp.get("inputs", {}).get("source") or {}).get("head") != commit or not _intact(stamp):
            return
        self._save_stamp(stamp, self.folder / "builds" / commit)

    def _save_stamp(self, stamp: dict, dest: Path) -> Path | None:
        artifacts = stamp.get("artifacts", [])
        if not any(a["path"].endswith(".whl") for a in artifacts):
            return None
        mark_cachedir(dest.parent)
        for a in artifacts:
            target = dest / Path(a["path"]).name
            with atomic_path(target) as tmp:
                shutil.copyfile(a["path"], tmp)
            a["path"] = str(target)
        return write_json(dest / "stamp.json", stamp)

    # ------------------------------------------------------------------ the starting build
    def snapshot_start(self) -> dict:
        """What the environment holds now: the checkout's ref and commit, and the last build's stamp and wheels."""
        settings = self.settings_for(None)
        src = self.source_dir()
        if not (src / ".git").exists():
            return {"ref": None, "head": None, "stamp": None, "installed": {}}
        rc, head = sources.git(src, "rev-parse", "HEAD")
        head = head if rc == 0 and head else None
        start = {"ref": sources.read_state(src).get("ref"), "head": head, "stamp": None, "installed": {}}
        path = self._stamp_path(settings)
        if not path.exists():
            return start
        stamp = stamps.read_stamp(path)
        want = stamp.get("installed", {})
        have = {k: v.version for k, v in guard.snapshot(settings.python(), list(want)).items()} if want else {}
        if (stamp.get("inputs", {}).get("source") or {}).get("head") == head and have == want and _intact(stamp):
            saved = self._save_stamp(stamp, self.folder / "start")
            start.update(stamp=str(saved) if saved else None, installed=want)
        return start

    def put_back(self, start: dict) -> None:
        """The checkout back at the commit it held before a bisection that was refused (nothing was built)."""
        src = self.source_dir()
        if not start.get("head") or not (src / ".git").exists():
            return  # no checkout before: the one fetched now holds nothing of anyone's
        rc, head = sources.git(src, "rev-parse", "HEAD")
        if rc == 0 and head == start["head"]:
            return
        self._checkout(self.settings_for(start["head"] if start["ref"] in (None, "HEAD") else start["ref"]))

    def restore(self, start: dict, fast_only: bool = False) -> str:
        """Put the starting build back; returns what was done, for the user."""
        if not start.get("ref"):
            return ("there was no checkout before the bisection, so no earlier build to put back: "
                    "the environment keeps the last candidate")
        if fast_only and not start.get("stamp"):
            return (f"the environment holds a candidate build; `inv bisect --resume` finishes and then rebuilds "
                    f"the starting ref {start['ref']}")
        self.clear_caches()
        checkout = start["head"] if start["ref"] == "HEAD" else start["ref"]
        settings = self.settings_for(start["ref"])
        if start.get("stamp") and Path(start["stamp"]).exists():
            self._checkout(self.settings_for(checkout))
            self._put_stamp(settings, Path(start["stamp"]))
        elif start["ref"] == "HEAD":
            self._checkout(self.settings_for(checkout))
        self._new_second()
        out = builder.build(settings, [self.recipe.name], self._opts(), self.console)
        if self.recipe.name in out.skipped and start.get("stamp"):
            self._settle_stamp(settings, Path(start["stamp"]))
        how = out.skipped.get(self.recipe.name) or f"rebuilt, manifest {out.manifests[-1]}"
        return f"the environment holds the starting build again ({self.recipe.name} at {start['ref']}: {how})"


def _intact(stamp: dict) -> bool:
    """Every artifact of the stamp still exists with the bytes it was built with."""
    return all(Path(a["path"]).exists() and sha256_file(a["path"]) == a.get("sha256")
               for a in stamp.get("artifacts", []))
