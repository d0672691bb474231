"""Internal step actions (what is not a single command): fetch, patches, collect, protected installs.

Each action gets the planned Step and an ActionEnv whose ``run`` starts commands
through the runner (output into the step's log). Actions return details that
go into the manifest.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rebuilt.build import reqcompat, reqlines, sources
from rebuilt.build.reqlines import Line
from rebuilt.core.fs import atomic_path, mark_cachedir, sha256_file
from rebuilt.errors import InputError, StepFailed


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


def _reported(report: Path) -> list[dict]:
    """The metadata of what `pip install --report` installed (name, version, requires_dist)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return []
    return [item.get("metadata", {}) for item in data.get("install", []) if isinstance(item, dict)]


def pip_protected(step, ax: ActionEnv) -> dict:
    """Install without dependencies, then the requirements minus protected distributions.

    The requirements are resolved first (pip --dry-run --report, the installed protected versions
    pinned); a protected distribution that is not installed may come in only at the version that
    matches the installed torch, otherwise it is refused and the distributions that wanted it are named.
    Then exactly the resolved distributions are installed (--no-deps), so nothing else can slip in.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from rebuilt.build import guard

    target = [_expand(step, a) for a in step.args["target"]]
    project = [a for a in target if not a.startswith("-")]
    if not project:
        raise StepFailed(f"step {step.title}: pip-protected needs a project path or wheel")
    py = step.args["python"]
    where = Path(step.cwd, project[-1])
    with tempfile.TemporaryDirectory(prefix="rebuilt-report-") as tmp:
        report = Path(tmp) / "install.json"
        ax.run([py, "-m", "pip", "install", "--no-deps", "--report", str(report), *target], cwd=step.cwd)
        installed = _reported(report)
    if where.exists():
        try:
            reqs = guard.project_requirements(where)
        except InputError:  # dynamic dependencies (setup.py's install_requires): what pip just built says
            if not installed:
                raise
            reqs = guard.base_requirements(installed[-1].get("requires_dist") or [])
            ax.say(f"      requirements of {installed[-1].get('name')} {installed[-1].get('version')}: "
                   "from the metadata pip built (dynamic in pyproject.toml)")
    else:  # a requirement from the index (flashinfer-python==0.3.1): what the installed metadata requires
        reqs = guard.installed_requirements(py, Requirement(project[-1]).name)
    kept, dropped = guard.split_requirements(reqs, set(step.args["protected"]))
    for line in dropped:
        ax.say(f"      dropped (protected): {line}")
        ax.log.write(f"dropped protected requirement: {line}\n")
    details = {"dropped": dropped, "installed_requirements": kept, "installed": [], "refused": []}
    state = guard.snapshot(py, list(step.args["protected"]))
    pins = {canonicalize_name(k): v.version for k, v in state.items()}
    absent = {canonicalize_name(d): guard.companion_pin(d, state.get("torch")) for d in step.args["protected"]
              if canonicalize_name(d) not in pins}
    named = {canonicalize_name(Requirement(t).name): t for t in dropped}
    named = {n: t for n, t in named.items() if n in absent}  # the project's own, on what is not installed
    if not kept and not named:
        return details
    with tempfile.TemporaryDirectory(prefix="rebuilt-install-") as tmp:
        items, refused, failure = reqcompat.plan_install(_pip(step, ax, py), kept, pins, absent, Path(tmp),
                                                         named=named, project=_label(where))
    if failure:
        raise StepFailed(f"step {step.title}: the requirements do not resolve next to the protected versions: "
                         f"{reqcompat.explain(failure, pins)[1]}", hint="see pip's words in the log")
    for r in refused:
        who = ", ".join(r.wanted_by) or "the requirements"
        ax.say(f"      ! refused {r.dist} {r.version} (wanted by {who}): {r.reason}")
        ax.log.write(f"refused {r.dist} {r.version} (wanted by {who}): {r.reason}\n")
        details["refused"].append({"dist": r.dist, "version": r.version, "wanted_by": list(r.wanted_by),
                                   "reason": r.reason})
    if refused:
        ax.say("      ! those distributions are installed without the refused ones: install a matching build "
               "yourself (e.g. from the PyTorch index for a +cpu torch) if you need them")
    args = [reqcompat.install_arg(i) for i in items]
    details["installed"] = args
    if args:
        ax.run([py, "-m", "pip", "install", "--no-deps", *args], cwd=step.cwd)
    return details


def _label(path: Path) -> str:
    """The project's name (pyproject's [project].name, a wheel's first field), else the path."""
    if path.suffix == ".whl":
        return path.name.split("-")[0]
    if not path.exists():
        return path.name  # a requirement
    try:
        import tomllib

        return tomllib.loads((path / "pyproject.toml").read_text())["project"]["name"]
    except (OSError, KeyError, ValueError):
        return str(path)


def _pip(step, ax: ActionEnv, python: str):
    """``pip(args) -> (exit code, output)``: pip of the target interpreter, its output into the step log too."""

    name = ax.log.name  # a step log opened from a file descriptor is named by its number
    path = name if isinstance(name, str) else os.readlink(f"/proc/self/fd/{ax.log.fileno()}")

    def pip(args: list[str]) -> tuple[int, str]:
        ax.log.flush()
        start = os.path.getsize(path)
        rc = ax.run([python, "-m", "pip", *args], cwd=step.cwd, check=False)
        ax.log.flush()
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            return rc, f.read()

    return pip


def _requirement_files(step) -> tuple[list[Path], dict[Path, list[Path]]]:
    """(files to edit: the ``files`` globs and what they include with -r; each file to resolve -> it and
    what it includes)."""
    root = Path(step.cwd).resolve()

    def matches(patterns) -> list[Path]:
        return [Path(p).resolve() for pat in patterns for p in sorted(glob.glob(os.path.join(step.cwd, pat)))]

    resolve = {p: reqlines.included(p, root) for p in matches(step.args.get("resolve") or [])}
    edit = [q for p in matches(step.args["files"]) for q in reqlines.included(p, root)]
    return list(dict.fromkeys(edit + [q for inc in resolve.values() for q in inc])), resolve


def drop_requirements(step, ax: ActionEnv) -> dict:
    """Like upstream's use_existing_torch.py, by requirement instead of substring: drop the lines naming a
    protected distribution, then every line of the ``resolve`` files that pip's resolver says cannot be
    installed next to the protected versions installed in the target (each named with pip's reason)."""
    from packaging.utils import canonicalize_name

    from rebuilt.build import guard

    root = Path(step.cwd).resolve()
    protected = {canonicalize_name(p) for p in step.args["protected"]}
    python = step.args["python"]
    pins = {canonicalize_name(k): v.version for k, v in guard.snapshot(python, sorted(protected)).items()}
    files, resolve = _requirement_files(step)
    lines = {f: reqlines.read_lines(f, os.path.relpath(f, root)) for f in files}
    drops: dict[Line, str] = {}
    unread = []
    for found in lines.values():
        for ln in found:
            if ln.problem and ln.mentions() & protected:
                raise StepFailed(f"step {step.title}: {ln.where()} names a protected distribution but cannot be "
                                 f"edited line by line ({ln.problem}): {ln.text.strip()}",
                                 hint="put one requirement per line there (a patch in patches/), then build again")
            if ln.problem and not ln.inline:
                unread.append({"file": ln.file, "line": ln.number, "text": ln.text.strip(), "problem": ln.problem})
                ax.say(f"      ! {ln.where()} left as it is ({ln.problem}): {ln.text.strip()}")
            elif ln.requirement and ln.name in protected:
                if ln.name in pins:
                    drops[ln] = f"names protected {ln.name} (installed {pins[ln.name]}): the installed build is kept"
                else:
                    drops[ln] = (f"names protected {ln.name} (not installed): an install brings it only at the "
                                 f"version matching the installed torch")
    resolved = {}
    if resolve:
        with tempfile.TemporaryDirectory(prefix="rebuilt-reqcompat-") as tmp:
            constraints = Path(tmp, "constraints.txt")
            constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
            for f, inc in resolve.items():
                rel = os.path.relpath(f, root)
                todo = [ln for g in inc for ln in lines.get(g, []) if ln not in drops]
                ax.say(f"      resolving {rel} next to {', '.join(f'{n} {v}' for n, v in sorted(pins.items()))} "
                       f"(pip install --dry-run --report)")
                verdicts, report = reqcompat.find_incompatible(_pip(step, ax, python), todo, pins, constraints,
                                                               Path(tmp, rel.replace(os.sep, "_")))
                bad = [v for v in verdicts if not v.conflict]
                if bad:
                    raise StepFailed(f"step {step.title}: pip cannot resolve these requirements of {rel} here, "
                                     "for a reason other than the protected versions:\n" +
                                     "\n".join(f"  {v.line.where()} {v.line.requirement}: {v.reason}" for v in bad),
                                     hint="the install would fail the same way: check the package index and "
                                          "the network (inv proxy.on), or fix the requirement with a patch")
                for v in verdicts:
                    drops[v.line] = f"cannot coexist with the protected versions: {v.reason}"
                resolved[rel] = len(report.get("install", []))
    dropped = []
    for f, found in lines.items():
        gone = [ln for ln in found if ln in drops]
        if not gone:
            continue
        raw = f.read_text().splitlines(keepends=True)  # line endings as written
        with atomic_path(f) as tmp_path:
            tmp_path.write_text("".join(text for ln, text in zip(found, raw) if ln not in drops))
        for ln in gone:
            ax.say(f"      dropped {ln.where()}: {ln.text.strip()}  <- {drops[ln]}")
            ax.log.write(f"dropped {ln.where()}: {ln.text.strip()} <- {drops[ln]}\n")
            dropped.append({"file": ln.file, "line": ln.number, "text": ln.text.strip(), "reason": drops[ln]})
    sources.record_edits(step.cwd, sorted({d["file"] for d in dropped}))  # undone before another ref is checked out
    return {"dropped": dropped, "protected": pins, "resolved": resolved, "unread": unread}


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
                         f"in {step.args['python']}", hint="install or restore it first (inv torch.restore)")
    if expect and found != expect:
        ax.say(f"      ! {dist} {found} is installed; the stack expects {expect}")
    return {"kept": {dist: found}}


ACTIONS = {
    "fetch": fetch, "patches": patches, "collect": collect, "pip-protected": pip_protected,
    "drop-requirements": drop_requirements, "check-import": check_import, "keep-installed": keep_installed,
}
