"""Local patches to upstream sources: which apply to a recipe, a new one from your edits, and a check.

Patches live in ``<patches dir>/<recipe>/NNNN-short-name.patch`` (the patches dir is the
``patches_dir`` setting, else ``$REBUILT_PATCHES_DIR``, else ``patches/`` of this project) and
are applied in file-name order after each checkout (``git apply``). ``<recipe>.patches = false``
turns them all off for a recipe; ``<recipe>.patches_skip = ["0002-x.patch"]`` turns off some.

Everything here works on scratch index files (``GIT_INDEX_FILE``), never on the checkout's own
index or files, except ``restore`` which puts the checkout back to its pinned commit with the
patches applied, the way a build leaves it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.build import sources
from rebuilt.core import recipes as recipes_mod
from rebuilt.core.fs import atomic_path, sha256_file
from rebuilt.errors import ConfigError, SourceError

PATCHES_DIR = Path(os.environ.get("REBUILT_PATCHES_DIR") or recipes_mod.ROOT / "patches")
CONTEXT_LINES = 5  # more context than git's 3: a patch still finds its place after upstream moves code
NAME_RE = re.compile(r"^(\d{4})-[A-Za-z0-9._-]+\.patch$")


def owner_of(recipe: str) -> recipes_mod.Recipe:
    """The recipe that owns the checkout (sgl-kernel builds inside sglang's)."""
    r = recipes_mod.get(recipe)
    if not r.source:
        raise ConfigError(f"recipe {recipe!r} has no source checkout, so it has no patches")
    return recipes_mod.get(r.source.from_) if r.source.from_ else r


def patches_dir(settings) -> Path:
    return Path(settings.get("patches_dir") or PATCHES_DIR).expanduser()


def for_recipe(settings, recipe: str) -> list[Path]:
    """The patch files a build of ``recipe`` applies, in order (settings may turn some off)."""
    owner = owner_of(recipe)
    folder = patches_dir(settings) / owner.name
    if not settings.get(f"{owner.name}.patches", True) or not folder.is_dir():
        return []
    skip = set(settings.get(f"{owner.name}.patches_skip", []) or [])
    return [p for p in sorted(folder.glob("*.patch")) if p.name not in skip]


def checkout_of(settings, recipe: str) -> Path:
    path = settings.workdir() / "src" / owner_of(recipe).source.dir
    if not (path / ".git").exists():
        raise SourceError(f"{path} is not a checkout yet", hint=f"inv src.fetch --recipe {owner_of(recipe).name}")
    return path


# --------------------------------------------------------------------------- scratch trees


class Scratch:
    """A scratch index file in a checkout: read a tree, apply patches, write a tree."""

    def __init__(self, dest: Path):
        self.dest = dest
        fd, self.index = tempfile.mkstemp(prefix="rebuilt-index-", dir=str(dest / ".git"))
        os.close(fd)
        os.unlink(self.index)  # git wants to create it itself

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        for path in (self.index, self.index + ".lock"):
            if os.path.exists(path):
                os.unlink(path)

    def git(self, *args: str) -> tuple[int, str]:
        return sources.git(self.dest, *args, index=self.index, timeout=600)

    def read(self, treeish: str) -> None:
        rc, out = self.git("read-tree", treeish)
        if rc != 0:
            raise SourceError(f"git read-tree {treeish} failed in {self.dest}: {out}")

    def applies(self, patch: Path, reverse: bool = False) -> bool:
        return self.git("apply", "--cached", "--check", *(["--reverse"] if reverse else []), str(patch))[0] == 0

    def apply(self, patch: Path) -> None:
        rc, out = self.git("apply", "--cached", str(patch))
        if rc != 0:
            raise SourceError(f"patch {patch} does not apply: {out}")

    def tree(self) -> str:
        rc, out = self.git("write-tree")
        if rc != 0:
            raise SourceError(f"git write-tree failed in {self.dest}: {out}")
        return out


# --------------------------------------------------------------------------- patch-new


def next_name(folder: Path, name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.").lower()
    if not slug:
        raise ConfigError(f"patch name {name!r} has no letters or digits", hint="e.g. fix-cuda13-include")
    numbers = [int(m.group(1)) for p in folder.glob("*.patch") if (m := NAME_RE.match(p.name))]
    return folder / f"{max(numbers, default=0) + 1:04d}-{slug}.patch"


def users_diff(dest: Path, applied: list[Path]) -> tuple[str, list[str]]:
    """(the diff of your edits on top of HEAD + the applied patches, the paths it touches).

    The base is HEAD with the applied patches, built in a scratch index; your tree is that base
    plus the current content of every path you changed (tracked or new). Files rebuilt wrote
    (patches, requirement drops) and you did not touch stay as in the base: they are not yours.
    """
    changes = sources.changed_paths(dest)
    _, new_ours, users = sources.own_edits_only(dest, changes)
    untracked = changes[1]
    with Scratch(dest) as base, Scratch(dest) as mine:
        base.read("HEAD")
        for patch in applied:
            if base.applies(patch):
                base.apply(patch)
        base_tree = base.tree()
        mine.read(base_tree)
        for path in sorted(set(users) | (set(untracked) - set(new_ours))):
            rc, out = mine.git("add", "-A", "--", path)
            if rc != 0:
                raise SourceError(f"git add {path} (scratch index) failed in {dest}: {out}")
        mine_tree = mine.tree()
    rc, diff = sources.git(dest, "diff", "--binary", f"-U{CONTEXT_LINES}", "--no-color", "--no-ext-diff",
                           base_tree, mine_tree, timeout=600)
    if rc != 0:
        raise SourceError(f"git diff failed in {dest}: {diff}")
    _, names = sources.git(dest, "diff", "--name-only", base_tree, mine_tree)
    return (diff + "\n" if diff else ""), [n for n in names.splitlines() if n]


@dataclass
class NewPatch:
    path: Path
    files: list[str]
    sha256: str


def new(settings, recipe: str, name: str) -> NewPatch:
    """Turn the uncommitted edits of ``recipe``'s checkout into the next numbered patch file."""
    owner = owner_of(recipe)
    dest = checkout_of(settings, recipe)
    applied = [Path(p["path"]) for p in sources.read_state(dest).get("patches", []) if p.get("path")]
    diff, files = users_diff(dest, [p for p in applied if p.exists()])
    if not diff.strip():
        raise ConfigError(f"{dest} has no edits of yours to turn into a patch",
                          hint="edit files in the checkout first; rebuilt's own edits (applied patches, "
                               "requirement drops) are not counted")
    folder = patches_dir(settings) / owner.name
    folder.mkdir(parents=True, exist_ok=True)
    target = next_name(folder, name)
    with atomic_path(target) as tmp:
        tmp.write_text(diff)
    return NewPatch(target, files, sha256_file(target))


def restore(settings, recipe: str, run, created: list[str]) -> list[dict]:
    """Back to the pinned commit with every patch applied, as a build would leave the checkout.

    ``created`` are new files now held by a patch: they are removed before the patches
    re-create them. Nothing else untracked is touched.
    """
    dest = checkout_of(settings, recipe)
    rc, head = sources.git(dest, "rev-parse", "HEAD")
    if rc != 0:
        raise SourceError(f"{dest} has no HEAD: {head}")
    changes = sources.changed_paths(dest)
    _, new_ours, _ = sources.own_edits_only(dest, changes)
    untracked = changes[1]
    run(["git", "-C", str(dest), "checkout", "-q", "-f", head, "--", "."], cwd=str(dest))
    for rel in (set(created) & set(untracked)) | set(new_ours):  # new files only: tracked ones were reset
        path = dest / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
    sources.forget_edits(dest)
    return sources.apply_patches(dest, [str(p) for p in for_recipe(settings, recipe)], run, recipe)


# --------------------------------------------------------------------------- patch-check


@dataclass
class Verdict:
    patch: str
    state: str  # applies | already upstream | conflicts | skipped
    detail: str = ""
    hunks: list[str] = field(default_factory=list)


def conflicting_hunks(dest: Path, scratch: Scratch, patch: Path) -> tuple[str, list[str]]:
    """git's error lines and the hunk headers of the files that fail."""
    detail = sources.first_failure(dest, str(patch), scratch.index)
    failing = set(re.findall(r"patch failed: ([^:]+):\d+", detail))
    hunks, current = [], None
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("+++ "):
            current = line[6:] if line.startswith("+++ b/") else line[4:]
        elif line.startswith("@@") and current in failing:
            hunks.append(f"{current}: {line}")
    return detail, hunks


def check(settings, recipe: str, commit: str) -> list[Verdict]:
    """For each patch of ``recipe`` in order, on ``commit``: applies, already upstream, or conflicts."""
    dest = checkout_of(settings, recipe)
    owner = owner_of(recipe)
    folder = patches_dir(settings) / owner.name
    active = {p.name for p in for_recipe(settings, recipe)}
    out = []
    with Scratch(dest) as tree:
        tree.read(commit)
        for patch in sorted(folder.glob("*.patch")) if folder.is_dir() else []:
            if patch.name not in active:
                out.append(Verdict(patch.name, "skipped", "turned off in settings"))
            elif tree.applies(patch):
                tree.apply(patch)  # later patches see the earlier ones, as in a build
                out.append(Verdict(patch.name, "applies"))
            elif tree.applies(patch, reverse=True):
                out.append(Verdict(patch.name, "already upstream", "reverse-applies cleanly: drop it"))
            else:
                detail, hunks = conflicting_hunks(dest, tree, patch)
                out.append(Verdict(patch.name, "conflicts", detail, hunks))
    return out
