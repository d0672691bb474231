"""Checkouts at pinned refs: fetch, submodules, patches, and their state (for src.status and manifests).

Git commands that may be long (fetch, submodules) go through the ``run`` callable
the runner gives an action (output into the step's log); everything else, here and in the
rest of rebuilt, goes through ``git`` below.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from rebuilt.core import runner, shape
from rebuilt.core.fs import read_json, sha256_file, write_json
from rebuilt.core.secret import redact
from rebuilt.errors import SourceError

Run = Callable[..., int]  # run(argv, cwd=...) -> exit code, output into the step log
STATE_FILE = "rebuilt-source.json"  # inside .git/


def git(dest: Path | str, *args: str, timeout: float = 60, index: str | None = None, env: dict | None = None,
        check: bool = False, strip: bool = True) -> tuple[int, str]:
    """rebuilt's one short-git call: ``git -C dest ARGS``; (exit code, stdout, or git's message when it failed).

    ``index`` points git at a scratch index file (GIT_INDEX_FILE); ``env`` adds variables (credentials,
    an offline config); ``check`` turns a failure into SourceError naming the command; ``strip=False``
    keeps the output as git wrote it (NUL-separated lists, content that is hashed).
    """
    extra = {**(env or {}), **({"GIT_INDEX_FILE": index} if index else {})}
    proc = runner.capture(["git", "-C", str(dest), *args], timeout=timeout,
                          env={**os.environ, **extra} if extra else None)
    ok = proc.returncode == 0
    out = (proc.stdout or "") if ok else (proc.stderr or proc.stdout or "")
    out = out.strip() if strip or not ok else out
    if check and not ok:
        raise SourceError(f"git {' '.join(redact(a) for a in args[:4])} in {dest} failed: {out[-400:]}")
    return proc.returncode, out


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


def credential_env(url: str, environ=None) -> tuple[str, dict[str, str]]:
    """(the URL without credentials, env giving git those credentials as an HTTP header).

    git reads ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` (git >= 2.31) as
    command-line config: ``http.<origin>/.extraHeader`` sends ``Authorization: Basic`` for that
    origin only (submodules on the same host included), and nothing is written to ``.git/config``.
    """
    import base64
    import os

    from rebuilt.core import secret

    url = secret.reveal(url)
    info = secret.userinfo(url)
    if not info or not secret.carries_credentials(url):
        return url, {}
    plain = secret.strip_credentials(url)
    scheme = plain.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise SourceError(f"{redact(url)}: a password in a {scheme} URL cannot be passed to git safely",
                          hint="use an ssh key (ssh://git@host/...), or an https URL with a token")
    token = base64.b64encode(f"{info[0]}:{info[1]}".encode()).decode("ascii")
    from rebuilt.core.secret import register_secret

    register_secret(token)
    environ = os.environ if environ is None else environ
    try:
        n = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    except ValueError:
        n = 0
    origin = plain.split("://", 1)[1].split("/", 1)[0]
    return plain, {"GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": f"http.{scheme}://{origin}/.extraHeader",
                   f"GIT_CONFIG_VALUE_{n}": f"Authorization: Basic {token}"}


def fetch(url: str, ref: str, dest: Path | str, submodules: bool, run: Run) -> dict:
    """Make ``dest`` a checkout of ``url`` at ``ref`` (tag, branch, commit or pr/NNNN)."""
    dest = Path(dest)
    shown = redact(url)
    url, auth = credential_env(url)  # credentials travel in git's environment, never in .git/config
    if auth:
        _plain_run = run

        def run(argv, **kw):  # noqa: F811 - the same runner, with the credential header for git
            return _plain_run(argv, env_extra=auth, **kw)
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
    commit = resolve(dest, ref, run, shown)
    rc, head = git(dest, "rev-parse", "-q", "--verify", "HEAD")
    if rc != 0 or head != commit:
        if rc == 0:
            undo_own_edits(dest, head, ref)
        run(["git", "-C", str(dest), "checkout", "-q", "--detach", commit], cwd=str(dest))
    if submodules:
        run(["git", "-C", str(dest), "submodule", "sync", "--recursive"], cwd=str(dest))
        run(["git", "-C", str(dest), "submodule", "update", "--init", "--recursive"], cwd=str(dest))
    state = {"url": shown, "ref": ref, "commit": commit}
    write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), **state})
    return state


def resolve(dest: Path, ref: str, run: Run, shown: str = "origin") -> str:
    """The commit of ``ref`` in checkout ``dest``: local tags/commits first, else fetched from origin."""
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
    return commit


def apply_patches(dest: Path | str, patches: list[str], run: Run, recipe: str = "") -> list[dict]:
    """Apply patches in order; a patch already applied is detected and skipped.

    The files a patch touches are recorded as rebuilt's own edits (their content after the
    patch), so that switching refs later undoes them instead of calling them the user's.
    """
    dest = Path(dest)
    applied = []
    for patch in patches:
        name = Path(patch).name
        entry = {"patch": name, "path": str(patch), "sha256": sha256_file(patch)}
        if git(dest, "apply", "--check", patch)[0] == 0:
            run(["git", "-C", str(dest), "apply", patch], cwd=str(dest))
            applied.append({**entry, "state": "applied"})
        elif git(dest, "apply", "--reverse", "--check", patch)[0] == 0:
            applied.append({**entry, "state": "already applied"})
        else:
            raise SourceError(f"patch {patch} does not apply to {dest}: {first_failure(dest, patch)}",
                              hint=f"inv src.patch-check {recipe or '<recipe>'} shows every patch's state and the "
                                   "conflicting hunks; rebase the patch on the pinned ref or remove it")
        record_edits(dest, patch_paths(dest, patch))
    write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), "patches": applied})
    return applied


def patch_paths(dest: Path, patch: str) -> list[str]:
    """Paths a patch touches, relative to the checkout (`git apply --numstat`)."""
    rc, out = git(dest, "apply", "--numstat", "-z", patch)
    if rc != 0:
        return []
    return [p for p in (chunk.split("\t")[-1] for chunk in out.split("\0")) if p]


def first_failure(dest: Path, patch: str, index_file: str | None = None) -> str:
    """git's own words for the first hunk that fails, e.g. `patch failed: setup.py:12`."""
    _, out = git(dest, "apply", "--check", "-v", *(["--cached"] if index_file else []), patch, index=index_file)
    # `error: while searching for:` only introduces the context lines git printed: not a reason of its own
    lines = [ln[len("error:"):].strip() for ln in out.splitlines() if ln.startswith("error:")]
    lines = [ln for ln in lines if ln and not ln.startswith("while searching for")]
    return "; ".join(lines[:2]) or "git apply --check failed"


# --------------------------------------------------------------------------- rebuilt's own edits


def _content_hash(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def record_edits(dest: Path | str, paths: list[str]) -> None:
    """Remember that rebuilt wrote ``paths`` (relative to ``dest`` or absolute): their content now.

    ``dest`` may be a folder inside the checkout (vLLM's requirement files sit at its root,
    sgl-kernel's in a subfolder): the record goes to the checkout that holds it.
    """
    rc, top = git(dest, "rev-parse", "--show-toplevel")
    if rc != 0:
        return  # not a git checkout: nothing can switch refs under it
    paths = [os.path.relpath(os.path.join(str(dest), p), top) for p in paths]
    dest = Path(top)
    state = read_state(dest)
    edits = dict(state.get("edits", {}))
    _, tracked = git(dest, "ls-files", "-z", "--", *paths) if paths else (0, "")
    tracked_set = set(filter(None, tracked.split("\0")))
    for rel in paths:
        edits[rel] = {"sha256": _content_hash(dest / rel), "tracked": rel in tracked_set}
    write_json(_git_dir(dest) / STATE_FILE, {**state, "edits": edits})


def changed_paths(dest: Path) -> tuple[list[str], list[str]]:
    """(tracked paths that differ from HEAD, untracked paths), from one `git status`."""
    # --no-renames: a staged rename (git mv) is its deletion and its new file, both changed paths
    rc, out = git(dest, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", strip=False)
    out = out if rc == 0 else ""  # not stripped: a status code may start with a space
    changed, untracked = [], []
    items = out.split("\0")
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if len(item) < 4:
            continue
        code, path = item[:2], item[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        (untracked if code == "??" else changed).append(path)
    return changed, untracked


def own_edits_only(dest: Path | str, changes: tuple[list[str], list[str]] | None = None
                   ) -> tuple[list[str], list[str], list[str]]:
    """(rebuilt's tracked edits, rebuilt's new files, the user's changes) of a checkout.

    ``changes`` is ``changed_paths(dest)`` when the caller already ran it (one `git status`, not two).
    """
    dest = Path(dest)
    edits = read_state(dest).get("edits", {})
    changed, untracked = changes if changes is not None else changed_paths(dest)
    ours_tracked, ours_new, users = [], [], []
    for path in changed:
        rec = edits.get(path)
        if rec and rec.get("tracked") and rec.get("sha256") == _content_hash(dest / path):
            ours_tracked.append(path)
        else:
            users.append(path)
    for path in untracked:
        rec = edits.get(path)
        if rec and not rec.get("tracked") and rec.get("sha256") == _content_hash(dest / path):
            ours_new.append(path)
        elif rec:
            users.append(path)  # a file rebuilt created (a patch's new file) that you changed since: yours now
    return ours_tracked, ours_new, users


def undo_own_edits(dest: Path | str, head: str, ref: str) -> list[str]:
    """Before switching refs: undo rebuilt's edits (patches, requirement drops); stop on the user's."""
    dest = Path(dest)
    ours, new, users = own_edits_only(dest)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise SourceError(f"{dest} has uncommitted changes of yours ({shown}) and is at {head[:12]}, not {ref}",
                          hint="keep them as a patch (inv src.patch-new <recipe> --name <name>), commit or stash them, "
                               "or build the current state with --ref HEAD")
    if ours:
        rc, out = git(dest, "checkout", "-q", "--", *ours)
        if rc != 0:
            raise SourceError(f"could not undo rebuilt's edits in {dest}: {out}")
    for rel in new:
        (dest / rel).unlink()
    forget_edits(dest)
    return ours + new


def forget_edits(dest: Path | str) -> None:
    """The checkout holds none of rebuilt's edits or patches any more (they were undone)."""
    dest = Path(dest)
    write_json(_git_dir(dest) / STATE_FILE, {**read_state(dest), "edits": {}, "patches": []})


STATE = shape.Obj({
    "url": shape.opt(shape.STR), "ref": shape.opt(shape.STR), "commit": shape.opt(shape.STR),
    "edits": shape.opt(shape.MapOf(shape.Obj({"sha256": shape.nullable(shape.STR), "tracked": shape.BOOL}))),
    "patches": shape.opt(shape.ListOf(shape.MapOf(shape.ANY))),
})


def read_state(dest: Path | str) -> dict:
    """What rebuilt did to the checkout (ref, its own edits, applied patches), checked against ``STATE``."""
    return read_json(_git_dir(Path(dest)) / STATE_FILE, STATE, missing={}, what="checkout record",
                     hint="src.fetch writes it: remove it, then check the checkout (git status) and fetch again")


def is_dirty(dest: Path | str) -> bool:
    rc, out = git(dest, "status", "--porcelain", "--untracked-files=no")
    return rc == 0 and bool(out)


def users_changes(dest: Path | str) -> list[str]:
    """Changed paths that rebuilt did not write (empty: clean, or only rebuilt's own edits)."""
    return own_edits_only(dest)[2]


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
        "users_changes": users_changes(dest),
        "patches": [p["patch"] for p in state.get("patches", [])],
        "patch_sha256": {p["patch"]: p.get("sha256") for p in state.get("patches", [])},
        "submodules_out_of_date": [ln.split()[1] for ln in subs.splitlines() if ln[:1] in "+-U"] if rc_sub == 0 else [],
    }
