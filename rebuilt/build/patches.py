"""Local patches to upstream sources: which apply to a recipe, a new one from your edits, and a check.

Patches are your project's files, never part of an installed rebuilt: they live in
``<patches dir>/<recipe>/NNNN-short-name.patch``, the patches dir being the ``patches_dir``
setting (relative to the project), else ``$REBUILT_PATCHES_DIR``, else ``patches/`` of the
project (``rebuilt.core.project``: the folder rebuilt found, or the current one). They are applied
in file-name order after each checkout (``git apply``). ``<recipe>.patches = false`` turns them
all off for a recipe; ``<recipe>.patches_skip = ["0002-x.patch"]`` turns off some.

Everything here works on scratch index files (``GIT_INDEX_FILE``), never on the checkout's own
index or files, except ``restore`` which puts the checkout back to its pinned commit with the
patches applied, the way a build leaves it, and only after checking that the patches give back
the tree the checkout holds now.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rebuilt.build import sources
from rebuilt.core import project
from rebuilt.core import recipes as recipes_mod
from rebuilt.core.fs import atomic_path, sha256_file
from rebuilt.errors import ConfigError, SourceError

CONTEXT_LINES = 5  # more context than git's 3: a patch still finds its place after upstream moves code
NAME_RE = re.compile(r"^(\d{4})-[A-Za-z0-9._-]+\.patch$")


def owner_of(recipe: str) -> recipes_mod.Recipe:
    """The recipe that owns the checkout (sgl-kernel builds inside sglang's)."""
    r = recipes_mod.get(recipe)
    if not r.source:
        raise ConfigError(f"recipe {recipe!r} has no source checkout, so it has no patches")
    return recipes_mod.get(r.source.from_) if r.source.from_ else r


def patches_dir(settings) -> Path:
    """Where the patches are: the ``patches_dir`` setting, ``$REBUILT_PATCHES_DIR``, else ``<project>/patches``."""
    base = settings.base or project.root()
    raw = settings.get("patches_dir") or os.environ.get("REBUILT_PATCHES_DIR")
    return base / Path(raw).expanduser() if raw else base / "patches"


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

    def must(self, *args: str) -> None:
        rc, out = self.git(*args)
        if rc != 0:
            raise SourceError(f"git {' '.join(args)} (scratch index) failed in {self.dest}: {out}")

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


def _named(dest: Path, add: list[str]) -> list[str]:
    """``--add`` paths relative to the checkout; each must exist inside it."""
    named = []
    for raw in add:
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else dest / path
        rel = os.path.relpath(os.path.abspath(path), dest)
        if rel in (".", "..") or rel.startswith(".." + os.sep):  # a name such as "..data" is inside
            raise ConfigError(f"--add {raw}: not a path inside the checkout {dest}",
                              hint="name a new file (or folder) of the checkout, relative to it or absolute")
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"--add {raw}: {path} does not exist", hint="name a file you created in the checkout")
        named.append(rel)
    return named


@dataclass
class Edits:
    """Your edits of a checkout as two trees: the base (HEAD + applied patches) and base + your edits."""
    base_tree: str
    mine_tree: str
    files: list[str]       # what differs between them
    left_out: list[str]    # untracked files that were not named: not yours to patch unless you say so


def users_edits(dest: Path, applied: list[Path], add: list[str] = ()) -> Edits:
    """Your edits on top of HEAD + the applied patches, as trees built in scratch indexes.

    Yours: every tracked path you changed (git's intent-to-add ``git add -N`` marks a new file as
    yours too) and every path named in ``add``. Untracked files are otherwise left out: build
    outputs (``.so``, ``.o``, wheels, ``egg-info``, ``build/``) are untracked files of a checkout
    without a ``.gitignore``. Files rebuilt wrote (patches, requirement drops) stay as in the base.
    """
    changes = sources.changed_paths(dest)
    _, new_ours, users = sources.own_edits_only(dest, changes)
    named = _named(dest, list(add))
    inside = [p for p in changes[1] if p not in new_ours and p not in users]
    left_out = [p for p in inside if not any(p == n or p.startswith(n.rstrip("/") + "/") for n in named)]
    with Scratch(dest) as base, Scratch(dest) as mine:
        base.read("HEAD")
        for patch in applied:
            if base.applies(patch):
                base.apply(patch)
        base_tree = base.tree()
        mine.read(base_tree)
        if users:
            mine.must("add", "-A", "--", *sorted(set(users)))
        if named:
            mine.must("add", "-A", "-f", "--", *named)  # -f: a path named outright counts even if git ignores it
        mine_tree = mine.tree()
    _, names = sources.git(dest, "diff", "--name-only", "--no-renames", base_tree, mine_tree, check=True)
    return Edits(base_tree, mine_tree, names.splitlines(), left_out)


def write_patch(dest: Path, edits: Edits, target: Path) -> None:
    """git writes the diff straight into the file (bytes as git made them: a binary hunk ends with the
    blank line ``git apply`` needs); then the patch must turn the base into your tree exactly."""
    with atomic_path(target) as tmp:
        sources.git(dest, "diff", "--binary", "--full-index", "--no-renames", f"-U{CONTEXT_LINES}", "--no-color",
                    "--no-ext-diff", f"--output={tmp}", edits.base_tree, edits.mine_tree, timeout=600, check=True)
        with Scratch(dest) as check:
            check.read(edits.base_tree)
            made = None
            if check.applies(tmp):
                check.apply(tmp)
                made = check.tree()
        if made != edits.mine_tree:
            raise SourceError(f"the patch made from your edits of {dest} does not reproduce them, so it was not "
                              "written and the checkout was left as it is",
                              hint="commit your edits in the checkout instead, and report this with the files "
                                   "you changed")


@dataclass
class NewPatch:
    path: Path
    edits: Edits
    sha256: str

    @property
    def files(self) -> list[str]:
        return self.edits.files


def applied_patches(dest: Path) -> list[Path]:
    return [Path(p["path"]) for p in sources.read_state(dest).get("patches", []) if p.get("path")
            and Path(p["path"]).exists()]


def new(settings, recipe: str, name: str, add: list[str] = ()) -> NewPatch:
    """Turn your edits of ``recipe``'s checkout into the next numbered patch file (checked before it is kept)."""
    owner = owner_of(recipe)
    dest = checkout_of(settings, recipe)
    edits = users_edits(dest, applied_patches(dest), add)
    if not edits.files:
        raise ConfigError(f"{dest} has no edits of yours to turn into a patch"
                          + (f" ({len(edits.left_out)} untracked file(s) left out, e.g. {edits.left_out[0]})"
                             if edits.left_out else ""),
                          hint="edit files in the checkout first; a new file counts when named with --add PATH "
                               "(or marked with `git add -N PATH`); rebuilt's own edits are not counted")
    folder = patches_dir(settings) / owner.name
    folder.mkdir(parents=True, exist_ok=True)
    target = next_name(folder, name)
    write_patch(dest, edits, target)
    return NewPatch(target, edits, sha256_file(target))


def _verify_restore(settings, recipe: str, dest: Path, add: list[str]) -> list[str]:
    """Before the checkout is reset: HEAD + the recipe's patches must give exactly the tree you have now.

    Returns the files those patches create (absent from HEAD), which the reset leaves behind.
    """
    edits = users_edits(dest, applied_patches(dest), add)
    with Scratch(dest) as result:
        result.read("HEAD")
        for patch in for_recipe(settings, recipe):
            if result.applies(patch):
                result.apply(patch)
        produced = result.tree()
    if produced != edits.mine_tree:
        _, differ = sources.git(dest, "diff", "--name-only", produced, edits.mine_tree)
        shown = ", ".join(differ.split()[:5])
        raise SourceError(f"{dest}: the patches of {recipe} do not hold all of your edits ({shown}), so the checkout "
                          "was not reset", hint=f"keep them with inv src.patch-new {recipe} --name NAME (--add PATH "
                          "for new files), or commit them in the checkout")
    _, created = sources.git(dest, "diff", "--name-only", "--no-renames", "--diff-filter=A", "HEAD", produced,
                             check=True)
    return created.splitlines()


def restore(settings, recipe: str, run, add: list[str] = ()) -> list[dict]:
    """Back to the pinned commit with every patch applied, as a build would leave the checkout.

    Only when the patches reproduce the checkout's tree as it is now (your edits included): nothing
    of yours can be lost. New files the patches create are removed (from git's index too, for an
    intent-to-add entry) before the patches re-create them; other untracked files are not touched.
    """
    dest = checkout_of(settings, recipe)
    rc, head = sources.git(dest, "rev-parse", "HEAD")
    if rc != 0:
        raise SourceError(f"{dest} has no HEAD: {head}")
    created = _verify_restore(settings, recipe, dest, list(add))
    _, new_ours, _ = sources.own_edits_only(dest)
    created = sorted(set(created) | set(new_ours))
    run(["git", "-C", str(dest), "checkout", "-q", "-f", head, "--", "."], cwd=str(dest))
    if created:
        sources.git(dest, "update-index", "-q", "--force-remove", "--", *created)
    for rel in created:  # new files only: tracked ones were reset
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
