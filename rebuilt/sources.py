"""Checkouts at pinned refs: fetch, submodules, patches, and their state (for src.status and manifests).

Git commands that may be long (fetch, submodules) go through the ``run`` callable
the runner gives an action (output into the step's log); short queries use
``runner.capture``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from rebuilt import runner
from rebuilt.errors import SourceError
from rebuilt.util.fs import sha256_file, write_json
from rebuilt.util.text import redact

Run = Callable[..., int]  # run(argv, cwd=...) -> exit code, output into the step log
STATE_FILE = "rebuilt-source.json"  # inside .git/


def git(dest: Path | str, *args: str, timeout: float = 60) -> tuple[int, str]:
    proc = runner.capture(["git", "-C", str(dest), *args], timeout=timeout)
    return proc.returncode, (proc.stdout or "").strip()


def _git_dir(dest: Path) -> Path:
    return dest / ".git"


def _resolve_local(dest: Path, ref: str) -> str | None:
    """A commit for ``ref`` without the network: a local tag or a full commit id."""
    for candidate in (f"refs/tags/{ref}^{{commit}}", f"refs/rebuilt/{ref}^{{commit}}"):
        rc, out = git(dest, "rev-parse", "--verify", "-q", candidate)
        if rc == 0:
            return out
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        rc, out = git(dest, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
        if rc == 0:
            return out
    return None


def fetch(url: str, ref: str, dest: Path | str, submodules: bool, run: Run) -> dict:
    """Make ``dest`` a checkout of ``url`` at ``ref`` (tag, branch, commit or pr/NNNN)."""
    dest = Path(dest)
    shown = redact(url)
    if not _git_dir(dest).exists():
        dest.mkdir(parents=True, exist_ok=True)
        run(["git", "init", "-q", str(dest)], cwd=str(dest.parent))
        run(["git", "-C", str(dest), "remote", "add", "origin", url], cwd=str(dest.parent))
    else:
        rc, current = git(dest, "remote", "get-url", "origin")
        if rc != 0:
            run(["git", "-C", str(dest), "remote", "add", "origin", url], cwd=str(dest))
        elif current != url:
            run(["git", "-C", str(dest), "remote", "set-url", "origin", url], cwd=str(dest))
    if ref == "HEAD" and _git_dir(dest).exists():  # build the checkout as it is, local edits included
        commit = git(dest, "rev-parse", "HEAD")[1]
        state = {"url": shown, "ref": "HEAD", "commit": commit}
        write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), **state})
        return state
    is_pr = bool(re.fullmatch(r"pr/\d+", ref))
    commit = None if is_pr else _resolve_local(dest, ref)
    if commit is None:
        safe = re.sub(r"[^A-Za-z0-9._/-]", "_", ref)
        if is_pr:
            attempts = [[f"+refs/pull/{ref[3:]}/head:refs/rebuilt/{safe}"]]
        else:
            attempts = [[f"+refs/tags/{ref}:refs/tags/{ref}"], [f"+refs/heads/{ref}:refs/rebuilt/{safe}"],
                        [f"+{ref}:refs/rebuilt/{safe}"]]
        for refspec in attempts:
            if run(["git", "-C", str(dest), "fetch", "--no-tags", "origin", *refspec], cwd=str(dest), check=False) == 0:
                break
        else:
            raise SourceError(f"ref {ref!r} does not exist in {shown} (or the remote cannot be reached)",
                              hint="check the tag/branch/commit name, or `pr/NNNN` for a pull request; "
                                   "the step log has git's own message")
        commit = _resolve_local(dest, ref) or git(dest, "rev-parse", f"refs/rebuilt/{safe}^{{commit}}")[1]
    rc, head = git(dest, "rev-parse", "-q", "--verify", "HEAD")
    if rc != 0 or head != commit:
        if rc == 0 and is_dirty(dest):
            raise SourceError(f"{dest} has uncommitted changes and is at {head[:12]}, not {ref}",
                              hint="commit or stash them (git -C ... stash), or build the current state with --ref HEAD")
        run(["git", "-C", str(dest), "checkout", "-q", "--detach", commit], cwd=str(dest))
    if submodules:
        run(["git", "-C", str(dest), "submodule", "sync", "--recursive"], cwd=str(dest))
        run(["git", "-C", str(dest), "submodule", "update", "--init", "--recursive"], cwd=str(dest))
    state = {"url": shown, "ref": ref, "commit": commit}
    write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), **state})
    return state


def apply_patches(dest: Path | str, patches: list[str], run: Run) -> list[dict]:
    """Apply patches in order; a patch already applied is detected and skipped."""
    dest = Path(dest)
    applied = []
    for patch in patches:
        name = Path(patch).name
        if git(dest, "apply", "--check", patch)[0] == 0:
            run(["git", "-C", str(dest), "apply", patch], cwd=str(dest))
            applied.append({"patch": name, "sha256": sha256_file(patch), "state": "applied"})
        elif git(dest, "apply", "--reverse", "--check", patch)[0] == 0:
            applied.append({"patch": name, "sha256": sha256_file(patch), "state": "already applied"})
        else:
            raise SourceError(f"patch {patch} does not apply to {dest}",
                              hint="rebase the patch on the pinned ref, or remove it from patches/")
    write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), "patches": applied})
    return applied


def read_state(dest: Path | str) -> dict:
    path = _git_dir(Path(dest)) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def is_dirty(dest: Path | str) -> bool:
    rc, out = git(dest, "status", "--porcelain", "--untracked-files=no")
    return rc == 0 and bool(out)


def status(dest: Path | str) -> dict:
    """ref, commit, dirty state and applied patches of a checkout (no network)."""
    dest = Path(dest)
    if not _git_dir(dest).exists():
        return {"path": str(dest), "present": False}
    state = read_state(dest)
    rc, commit = git(dest, "rev-parse", "HEAD")
    _, describe = git(dest, "describe", "--tags", "--always")
    rc_sub, subs = git(dest, "submodule", "status", "--recursive")
    return {
        "path": str(dest), "present": True, "ref": state.get("ref"), "url": state.get("url"),
        "commit": commit if rc == 0 else None, "describe": describe, "dirty": is_dirty(dest),
        "patches": [p["patch"] for p in state.get("patches", [])],
        "submodules_out_of_date": [ln.split()[1] for ln in subs.splitlines() if ln[:1] in "+-U"] if rc_sub == 0 else [],
    }
