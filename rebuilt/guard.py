"""Protected distributions (torch & co): snapshots, constraints, and requirements without them.

Pure building blocks; ``rebuilt.protect`` wires them into the builder as a hook.
"""

from __future__ import annotations

import json
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuilt import runner
from rebuilt.errors import ConfigError, InputError

_SNAPSHOT = r"""
import hashlib, json, sys
from importlib import metadata
out = {}
for name in json.loads(sys.argv[1]):
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    record = dist.read_text("RECORD") or ""
    out[name] = {"version": dist.version, "record": hashlib.sha256(record.encode()).hexdigest(),
                 "path": str(dist.locate_file(""))}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DistState:
    version: str
    record: str  # sha256 of the RECORD file: changes when any installed file changes
    path: str = ""


def canonical(name: str) -> str:
    return canonicalize_name(name)


def snapshot(python: str, dists: list[str]) -> dict[str, DistState]:
    """Version and RECORD hash of each of ``dists`` installed in ``python`` (absent ones omitted)."""
    proc = runner.capture([python, "-c", _SNAPSHOT, json.dumps(list(dists))], timeout=120)
    if proc.returncode != 0:
        raise ConfigError(f"cannot inspect the target interpreter {python}: {proc.stderr.strip()[-300:]}")
    return {k: DistState(**v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def constraints_text(snap: dict[str, DistState]) -> str:
    """A pip constraints file pinning each present protected distribution to its exact version."""
    lines = ["# written by rebuilt: protected distributions, pinned to what is installed"]
    lines += [f"{name}=={state.version}" for name, state in sorted(snap.items())]
    return "\n".join(lines) + "\n"


def diff(before: dict[str, DistState], after: dict[str, DistState]) -> list[str]:
    """Protected distributions whose version or files changed (or that appeared/disappeared)."""
    return sorted(n for n in set(before) | set(after)
                  if (before.get(n) and before[n].version, before.get(n) and before[n].record)
                  != (after.get(n) and after[n].version, after.get(n) and after[n].record))


def split_requirements(requirements: list[str], protected: set[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): requirements naming a protected distribution are dropped, by normalised name."""
    prot = {canonical(p) for p in protected}
    kept, dropped = [], []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"invalid requirement {text!r}: {exc}") from None
        (dropped if canonical(req.name) in prot else kept).append(text)
    return kept, dropped


def _base(reqs: list[str]) -> list[str]:
    """Requirements without extras-only markers (``; extra == 'x'``)."""
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker and "extra" in str(req.marker):
            continue
        out.append(text)
    return out


def project_requirements(path: Path) -> list[str]:
    """Base dependencies of a project folder (pyproject [project].dependencies) or of a wheel (Requires-Dist)."""
    path = Path(path)
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as zf:
                meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                msg = Parser().parsestr(zf.read(meta).decode("utf-8"))
        except (zipfile.BadZipFile, StopIteration, OSError) as exc:
            raise InputError(f"{path}: not a readable wheel ({exc})") from None
        return _base(msg.get_all("Requires-Dist") or [])
    pyproject = path / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text())
        project = data.get("project", {})
        if "dependencies" in project:
            return list(project["dependencies"])
        if "dependencies" in project.get("dynamic", []):
            raise InputError(f"{pyproject}: dependencies are dynamic; build a wheel and install that instead")
        return []
    raise InputError(f"{path}: no pyproject.toml with [project].dependencies and not a wheel",
                     hint="build a wheel (setup.py bdist_wheel) and install it through the guard")
