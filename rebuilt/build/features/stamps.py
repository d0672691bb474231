"""No-op builds: a build whose inputs equal the last successful build's is skipped ("up to date").

Inputs: the source tree state read from git's own index (HEAD, ``git status``
with submodules, a hash of the uncommitted diff and of untracked files'
path/size/mtime; build outputs left out), the recipe file, the stack, the plan
(every step's command and env, with the job count left out by the plan: it
changes no output), the toolchain (compilers, cmake, ninja, nvcc) and the protected torch
(version and RECORD hash). A stamp per recipe is written after a successful
build (``<workdir>/state/stamps/<recipe>.json``). When the inputs match but the
target environment lacks the package (a fresh nox venv), the stamp's wheels are
reinstalled from the wheelhouse instead of rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rebuilt.build import guard, sources
from rebuilt.core import runner, shape
from rebuilt.core.fs import read_json, sha256_file, write_json

OUTPUT_DIRS = {"build", "dist", "_skbuild", ".deps", "__pycache__"}
TOOLS = ("gcc", "g++", "cmake", "ninja")


# fields before the path in `git status --porcelain=v2` lines: changed, renamed/copied, unmerged
_FIELDS = {"1": 8, "2": 9, "u": 10}


def _is_output(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return any(p in OUTPUT_DIRS or p.endswith(".egg-info") for p in parts)


def tree_state(src: str) -> dict:
    """HEAD, and a fingerprint of everything that differs from it, from ONE `git status`.

    ``--branch`` gives HEAD's commit in the same call (``# branch.oid``), and the content of each
    changed file is hashed straight from the working tree (what ``git diff HEAD --binary`` of those
    paths would say, without a second git process): a second edit of a modified file changes it.
    Only a changed submodule asks git for its new commit (``diff --submodule=short``); one with edits or
    new files inside is fingerprinted the same way, by its own ``git status``.
    """
    rc, status = sources.git(src, "status", "--porcelain=v2", "-z", "--branch", "--ignore-submodules=none",
                             timeout=600, strip=False)
    if rc != 0:
        return {"head": None}
    head, tracked, untracked, submodules, dirty = None, [], [], [], []
    items = iter(e for e in status.split("\0") if e)
    for e in items:
        kind = e[0]
        if kind == "#":
            if e.startswith("# branch.oid "):
                head = e.split(" ", 2)[2]
            continue
        path = e.split(" ", _FIELDS[kind])[-1] if kind in _FIELDS else e[2:]  # a path may hold spaces
        if kind == "2":
            next(items, None)  # -z puts a rename's original path in the next item
        if kind == "?":
            if not _is_output(path):
                untracked.append(path)
        elif kind in "12u" and not _is_output(path):
            tracked.append((e, path))
            sub = e.split(" ", 3)[2]  # S<commit changed><tracked changes><untracked files> for a submodule
            if sub.startswith("S"):
                submodules.append(path)
                if sub[2:] != "..":
                    dirty.append(path)
    if head is None or head == "(initial)":
        return {"head": None}
    h = hashlib.sha256()
    for entry, path in tracked:
        h.update(entry.encode() + b"\0")
        if path not in submodules:
            h.update(_content(Path(src, path)))
    if submodules:
        _, diff = sources.git(src, "diff", "HEAD", "--no-ext-diff", "--submodule=short", "--", *submodules,
                              timeout=600, strip=False)
        h.update(diff.encode())
    for path in dirty:  # edits inside a submodule: fingerprinted like those of a checkout of its own
        h.update(f"{path}\0{tree_state(str(Path(src, path))).get('changes')}\0".encode())
    for rel in untracked:
        p = Path(src, rel)
        inside = (x for x in p.rglob("*") if x.is_file() and not _is_output(x.relative_to(src).as_posix()))
        for f in ([p] if p.is_file() else sorted(inside) if p.is_dir() else []):
            st = f.stat()
            h.update(f"{f.relative_to(src)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return {"head": head, "changes": h.hexdigest() if (tracked or untracked) else None,
            "changed_paths": len(tracked) + len(untracked)}


def _content(path: Path) -> bytes:
    """What a changed path holds now: a link's target, a file's sha256, or that it is gone."""
    if path.is_symlink():
        return b"link\0" + os.fsencode(os.readlink(path)) + b"\0"
    if path.is_file():
        return b"file\0" + sha256_file(path).encode() + b"\0"
    return b"gone\0"


def _as_stored(obj):
    """``obj`` as it reads back from the stamp's JSON (tuples become lists), so the two compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


STAMP = shape.Obj({
    "run_id": shape.opt(shape.STR), "inputs": shape.MapOf(shape.ANY), "installed": shape.opt(shape.MapOf(shape.ANY)),
    "artifacts": shape.opt(shape.ListOf(shape.Obj({"path": shape.STR, "size": shape.INT,
                                                   "sha256": shape.opt(shape.nullable(shape.STR))}))),
})


def read_stamp(path: Path) -> dict:
    """A recipe's stamp (what its last successful build was made from), checked against ``STAMP``."""
    return read_json(path, STAMP, what="build stamp",
                     hint="remove it: the next build of the recipe then runs in full and writes a new one")


def inputs(rp, settings, machine) -> dict:
    """Everything that reaches the build of one recipe, as a comparable dict."""
    python = settings.python()
    torch = guard.snapshot(python, ["torch"]).get("torch")
    data = {
        "stack": settings.stack.name,
        "recipe": hashlib.sha256(rp.recipe.path.read_bytes()).hexdigest(),
        "plan": _as_stored(rp.inputs),  # the job count left out by the plan itself (Step.jobs_env, jobs_command)
        "python": [python, machine.python.version],
        "toolchain": {t: machine.tools.get(t) for t in TOOLS} | {"nvcc": machine.nvcc_version,
                                                              "cuda_home": machine.cuda_home},
        "torch": [torch.version, torch.record] if torch and rp.recipe.name != "torch" else None,
    }
    if rp.source_dir and Path(rp.source_dir, ".git").exists():
        data["source"] = tree_state(rp.source_dir)
        from rebuilt.build import sources

        data["source"]["ref"] = sources.read_state(rp.source_dir).get("ref")
    else:
        data["source"] = None
    return data


def changed(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Names of the inputs that differ, e.g. ``source.changes``, ``plan``, ``toolchain.gcc``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key in ("source", "toolchain"):
            out += changed(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return [c for c in out if c != "source.changed_paths"]


def _installed(python: str, dists: list[str]) -> dict[str, str]:
    return {k: v.version for k, v in guard.snapshot(python, dists).items()}


class Stamps:
    """A builder hook: skip up-to-date recipes, reinstall their wheels into a fresh env, stamp successes."""

    def __init__(self, settings, workdir: Path, console, opts, machine=None):
        self.settings = settings
        self.folder = Path(workdir) / "state" / "stamps"
        self.console = console
        self.explain = opts.explain
        self.force = opts.force
        self.machine = machine  # the plan's probe; probed here only when none was given

    def _inputs(self, rp) -> dict:
        if self.machine is None:
            from rebuilt.build import builder  # builder imports the features: asked here, when a build runs

            self.machine = builder.probe(self.settings)
        return inputs(rp, self.settings, self.machine)

    def up_to_date(self, rp) -> str | None:
        path = self.folder / f"{rp.recipe.name}.json"
        if not path.exists():
            if self.explain:
                self.console.say(f"{rp.recipe.name}: no earlier successful build to compare with")
            return None
        stamp = read_stamp(path)
        now = self._inputs(rp)
        diff = changed(stamp["inputs"], now)
        if diff:
            if self.explain:
                self.console.say(f"{rp.recipe.name}: rebuilding, changed since the last build: {', '.join(diff)}")
            return None
        wheels = [a for a in stamp.get("artifacts", []) if a["path"].endswith(".whl")]
        missing = [a["path"] for a in stamp.get("artifacts", []) if not Path(a["path"]).exists()
                   or Path(a["path"]).stat().st_size != a["size"]]
        if missing:
            if self.explain:
                self.console.say(f"{rp.recipe.name}: rebuilding, artifact gone: {missing[0]}")
            return None
        want = stamp.get("installed", {})
        have = _installed(self.settings.python(), list(want))
        absent = [d for d, v in want.items() if have.get(d) != v]
        if absent and wheels:
            changed_wheel = next((w["path"] for w in wheels
                                  if w.get("sha256") and sha256_file(w["path"]) != w["sha256"]), None)
            if changed_wheel:  # same size, other bytes: not the wheel this stamp built
                self.console.say(f"{rp.recipe.name}: rebuilding, {changed_wheel} changed since it was built (sha256)")
                return None
            for w in wheels:
                runner.capture([self.settings.python(), "-m", "pip", "install", "--no-deps", "--force-reinstall",
                                "--no-index", w["path"]], timeout=1800, check=True)
                self.console.say(f"{rp.recipe.name}: reused {w['path']} (inputs unchanged)")
            return f"reused the wheel{'s' if len(wheels) > 1 else ''} of {stamp['run_id']}"
        if absent:
            if self.explain:
                self.console.say(f"{rp.recipe.name}: rebuilding, {absent[0]} is not installed in the target")
            return None
        return f"inputs unchanged since {stamp['run_id']}"

    def explain_dry(self, rp) -> str:
        """What a real build would do with ``rp`` and why, without doing any of it (``--explain --dry-run``)."""
        name, path = rp.recipe.name, self.folder / f"{rp.recipe.name}.json"
        if self.force:
            return f"{name}: a real build rebuilds it (--force)"
        if not path.exists():
            return f"{name}: a real build builds it (no earlier successful build to compare with)"
        stamp = read_stamp(path)
        diff = changed(stamp["inputs"], self._inputs(rp))
        if diff:
            return f"{name}: a real build rebuilds it, changed since the last build: {', '.join(diff)}"
        gone = [a["path"] for a in stamp.get("artifacts", []) if not Path(a["path"]).exists()]
        if gone:
            return f"{name}: a real build rebuilds it, artifact gone: {gone[0]}"
        want = stamp.get("installed", {})
        have = _installed(self.settings.python(), list(want)) if want else {}
        absent = [d for d, v in want.items() if have.get(d) != v]
        if absent:
            return (f"{name}: inputs unchanged since {stamp['run_id']}, but {absent[0]} is not installed in the "
                    f"target: a real build reinstalls the wheel it made (or rebuilds without one)")
        return f"{name}: up to date (inputs unchanged since {stamp['run_id']}): a real build skips it"

    def after_recipe(self, rp, status, manifest) -> None:
        if status != "done":
            return
        dists = {}
        for a in manifest.get("artifacts", []):
            name = os.path.basename(a["path"]).split("-")
            if a["path"].endswith(".whl") and len(name) >= 2:
                dists[guard.canonical(name[0])] = name[1]
        installed = _installed(self.settings.python(), list(dists)) if dists else {}
        write_json(self.folder / f"{rp.recipe.name}.json", {
            "run_id": manifest["run_id"], "inputs": self._inputs(rp), "artifacts": manifest.get("artifacts", []),
            "installed": installed})

