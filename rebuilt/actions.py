"""Internal step actions (what is not a single command): fetch, patches, collect, protected installs.

Each action gets the planned Step and an ActionEnv whose ``run`` starts commands
through the runner (output into the step's log). Actions return details that
go into the manifest.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuilt import sources
from rebuilt.errors import StepFailed
from rebuilt.util.fs import atomic_path, mark_cachedir, sha256_file


@dataclass
class ActionEnv:
    run: Callable[..., int]  # run(argv, cwd=..., check=True) -> exit code
    log: TextIO
    say: Callable[[str], None]
    started: float  # epoch seconds when the recipe's run started


def fetch(step, ax: ActionEnv) -> dict:
    a = step.args
    return sources.fetch(a["url"], a["ref"], a["dest"], a["submodules"], ax.run)


def patches(step, ax: ActionEnv) -> dict:
    return {"patches": sources.apply_patches(step.args["dest"], step.args["patches"], ax.run, step.recipe)}


def collect(step, ax: ActionEnv) -> dict:
    """Copy the artifacts this build made into the wheelhouse, with sha256."""
    dest = mark_cachedir(step.args["dest"])
    found = sorted({p for pat in step.args["patterns"] for p in glob.glob(os.path.join(step.cwd, pat))})
    fresh = [p for p in found if os.path.getmtime(p) >= ax.started - 1] or found
    if not fresh:
        raise StepFailed(f"step {step.title}: no artifact matches {step.args['patterns']} in {step.cwd}")
    out = []
    for path in fresh:
        target = Path(dest) / Path(path).name
        with atomic_path(target) as tmp:
            shutil.copyfile(path, tmp)
        digest = sha256_file(target)
        ax.log.write(f"collected {target} sha256={digest}\n")
        out.append({"path": str(target), "sha256": digest, "size": target.stat().st_size})
    return {"artifacts": out}


def _expand(step, arg: str) -> str:
    """A glob among pip arguments (`dist/x-*.whl`) -> the newest match, relative to the step's cwd."""
    if not any(c in arg for c in "*?["):
        return arg
    matches = sorted(glob.glob(os.path.join(step.cwd, arg)), key=os.path.getmtime)
    if not matches:
        raise StepFailed(f"step {step.title}: nothing matches {arg} in {step.cwd}")
    return matches[-1]


def pip_protected(step, ax: ActionEnv) -> dict:
    """Install without dependencies, then the requirements minus protected distributions."""
    from rebuilt import guard

    target = [_expand(step, a) for a in step.args["target"]]
    project = [a for a in target if not a.startswith("-")]
    if not project:
        raise StepFailed(f"step {step.title}: pip-protected needs a project path or wheel")
    py = step.args["python"]
    ax.run([py, "-m", "pip", "install", "--no-deps", *target], cwd=step.cwd)
    reqs = guard.project_requirements(Path(step.cwd, project[-1]))
    kept, dropped = guard.split_requirements(reqs, set(step.args["protected"]))
    for line in dropped:
        ax.say(f"      dropped (protected): {line}")
        ax.log.write(f"dropped protected requirement: {line}\n")
    if kept:
        ax.run([py, "-m", "pip", "install", *kept], cwd=step.cwd)
    return {"dropped": dropped, "installed_requirements": kept}


_REQ_LINE = re.compile(r"""^(\s*["']?)([A-Za-z0-9][A-Za-z0-9._\-\[\], ]*(?:[<>=!~ ;].*?)?)(["']?,?\s*(#.*)?)$""")


def _names_protected(text: str, protected: set[str]) -> bool:
    body = text.split("#", 1)[0].strip().strip(",").strip().strip("\"'")
    if not body or body.startswith("-"):
        return False
    try:
        return canonicalize_name(Requirement(body).name) in protected
    except InvalidRequirement:
        return False


def drop_requirements(step, ax: ActionEnv) -> dict:
    """Remove requirement lines naming protected distributions, by normalised name, in place."""
    protected = {canonicalize_name(p) for p in step.args["protected"]}
    dropped: dict[str, list[str]] = {}
    for pattern in step.args["files"]:
        for path in sorted(glob.glob(os.path.join(step.cwd, pattern))):
            lines = Path(path).read_text().splitlines(keepends=True)
            keep = [ln for ln in lines if not _names_protected(ln, protected)]
            gone = [ln.strip() for ln in lines if ln not in keep]
            if gone:
                with atomic_path(path) as tmp:
                    tmp.write_text("".join(keep))
                dropped[os.path.relpath(path, step.cwd)] = gone
                for g in gone:
                    ax.say(f"      dropped from {os.path.relpath(path, step.cwd)}: {g}")
    sources.record_edits(step.cwd, list(dropped))  # rebuilt's edits: undone before another ref is checked out
    return {"dropped": dropped}


def check_import(step, ax: ActionEnv) -> dict:
    mod = step.args["module"]
    code = f"import {mod} as m; print(getattr(m, '__version__', '?'), m.__file__)"
    ax.run([step.args["python"], "-c", code], cwd=step.cwd)
    return {}


def keep_installed(step, ax: ActionEnv) -> dict:
    """The stack keeps the environment's build of a distribution: check it is there, say which."""
    dist, expect, found = step.args["dist"], step.args.get("expect") or "", step.args.get("found")
    if not found:
        raise StepFailed(f"step {step.title}: the stack keeps the environment's {dist}, but it is not installed "
                         f"in {step.args['python']}", hint=f"install or restore it first (inv torch.restore)")
    if expect and found != expect:
        ax.say(f"      ! {dist} {found} is installed; the stack expects {expect}")
    return {"kept": {dist: found}}


ACTIONS = {
    "fetch": fetch, "patches": patches, "collect": collect, "pip-protected": pip_protected,
    "drop-requirements": drop_requirements, "check-import": check_import, "keep-installed": keep_installed,
}
