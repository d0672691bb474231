"""Protected distributions (torch & co): snapshots, constraints, and requirements without them.

Pure building blocks; ``rebuilt.build.features.protect`` wires them into the builder as a hook.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rebuilt.build import companions
from rebuilt.build.wheel.installed import WHOLE_DIST
from rebuilt.core import runner
from rebuilt.errors import ConfigError, InputError, ToolMissing

if TYPE_CHECKING:
    from packaging.version import Version

# packaging, zipfile, email and tomllib are imported by the functions that use them: this module is
# imported by every build (the protect feature), most of which never parse a requirement here.

# Besides version and RECORD: the top-level entries RECORD names that are missing (a pip stopped
# halfway through uninstalling has moved some of them aside, while the metadata still reads the same)
# and the names starting with "~" beside them (what pip moved a folder aside to).
_SNAPSHOT = r"""
import csv, hashlib, json, os, sys
from importlib import metadata
""" + WHOLE_DIST + r"""
out = {}
for name in json.loads(sys.argv[1]):
    dist, _broken = whole_dist(name)
    if dist is None:
        continue
    record = dist.read_text("RECORD") or ""
    site = str(dist.locate_file(""))
    lines, tops = record.splitlines(), set()
    for first in {line.partition("/")[0] for line in lines}:  # torch's 15k rows: about 10 ms
        if first == "..":  # scripts outside site-packages: the files themselves
            tops.update(line.rsplit(",", 2)[0] for line in lines if line.startswith("../"))
        elif first.startswith('"'):  # csv-quoted: a name with a comma or quote in it
            tops.add(next(csv.reader([first]))[0] if "," in first else first[1:])
        elif first:
            tops.add(first.rsplit(",", 2)[0] if "," in first else first)
    try:
        tilde = sorted(e for e in os.listdir(site) if e.startswith("~"))
    except OSError:
        tilde = []
    out[name] = {"version": dist.version, "record": hashlib.sha256(record.encode()).hexdigest(),
                 "path": site, "requires": dist.requires or [],
                 "missing": sorted(t for t in tops if not os.path.lexists(os.path.join(site, t))),
                 "tops": sorted(t for t in tops if not t.startswith("..")), "tilde": tilde}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DistState:
    version: str
    record: str  # sha256 of the RECORD file: changes when any installed file changes
    path: str = ""  # the site-packages folder of the copy that imports first
    requires: tuple[str, ...] = ()  # its Requires-Dist (torch's names the triton it was built with)
    missing: tuple[str, ...] = ()  # top-level entries its RECORD names that are not there
    stash: tuple[str, ...] = ()  # pip's stash of its folders beside them (``~orch`` for ``torch``)


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def snapshot(python: str, dists: list[str]) -> dict[str, DistState]:
    """Version and RECORD hash of each of ``dists`` installed in ``python`` (absent ones omitted)."""
    hint = "give --python (or the python setting) a working Python 3 interpreter of the target environment"
    try:
        proc = runner.capture([python, "-c", _SNAPSHOT, json.dumps(list(dists))], timeout=120)
    except ToolMissing:
        raise ConfigError(f"cannot inspect the target interpreter {python}: it does not exist or cannot run",
                          hint=hint) from None
    if proc.returncode != 0:
        raise ConfigError(f"cannot inspect the target interpreter {python}: "
                          f"{(proc.stderr.strip() or f'exit status {proc.returncode}')[-300:]}", hint=hint)
    try:
        data = json.loads((proc.stdout.strip().splitlines() or [""])[-1])
        return {k: _state(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"cannot inspect the target interpreter {python}: it answered "
                          f"{proc.stdout.strip()[-200:]!r}, not the installed versions", hint=hint) from None


def _state(answer: dict) -> DistState:
    """A DistState from the snapshot script's answer for one distribution."""
    from rebuilt.build.wheel.restore import is_pip_stash

    tops = answer.get("tops", ())
    stash = [e for e in answer.get("tilde", ()) if any(is_pip_stash(e, t) for t in tops)]
    return DistState(answer["version"], answer["record"], answer.get("path", ""),
                     tuple(answer.get("requires", ())), tuple(answer.get("missing", ())), tuple(stash))


def constraints_text(snap: dict[str, DistState]) -> str:
    """A pip constraints file pinning each present protected distribution to its exact version."""
    lines = ["# written by rebuilt: protected distributions, pinned to what is installed"]
    lines += [f"{name}=={state.version}" for name, state in sorted(snap.items())]
    return "\n".join(lines) + "\n"


def diff(before: dict[str, DistState], after: dict[str, DistState]) -> list[str]:
    """Protected distributions that changed: appeared, disappeared, another version or RECORD, another copy
    importing first, or (same metadata) files gone or pip's stash beside them: a pip stopped halfway."""
    return sorted(n for n in set(before) | set(after) if _changed(before.get(n), after.get(n)))


def _changed(was: DistState | None, now: DistState | None) -> bool:
    if was is None or now is None:
        return was is not now
    if (was.version, was.record, was.missing, was.stash) != (now.version, now.record, now.missing, now.stash):
        return True
    return bool(was.path and now.path and was.path != now.path)


def change_text(dist: str, was: DistState | None, now: DistState | None) -> str:
    """``torch 2.13.0 -> 2.5.1``; at one version, what else changed (pip stopped halfway, its files, or
    which copy imports first)."""
    if not (was and now and was.version == now.version):
        return f"{dist} {getattr(was, 'version', 'absent')} -> {getattr(now, 'version', 'removed')}"
    gone = [m for m in now.missing if m not in was.missing]
    stash = [m for m in now.stash if m not in was.stash]
    if gone or stash:
        where = (f"{', '.join(gone)} missing" if gone else "") + (" and " if gone and stash else "") \
            + (f"pip's stash {', '.join(stash)} beside it" if stash else "")
        what = f"a pip stopped halfway ({where})"
    elif was.path and now.path and was.path != now.path:
        what = f"the copy in {now.path} comes first now"
    else:
        what = "its files changed"
    return f"{dist} {was.version}: {what}"


def split_requirements(requirements: list[str], protected: set[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): requirements naming a protected distribution are dropped, by normalised name."""
    from packaging.requirements import InvalidRequirement, Requirement

    prot = {canonical(p) for p in protected}
    kept, dropped = [], []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ConfigError(f"invalid requirement {text!r}: {exc}") from None
        (dropped if canonical(req.name) in prot else kept).append(text)
    return kept, dropped


def base_requirements(reqs: list[str]) -> list[str]:
    """Requirements without extras-only markers (``; extra == 'x'``)."""
    from packaging.requirements import Requirement

    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker and "extra" in str(req.marker):
            continue
        out.append(text)
    return out


def _from_files(root: Path, files: list[str]) -> list[str]:
    """Requirements of setuptools' ``dynamic.dependencies.file`` (one per line, comments and options skipped)."""
    from rebuilt.build.reqlines import read_lines

    out = []
    for name in files:
        if not (root / name).is_file():
            raise InputError(f"{root / name}: named by pyproject.toml's dynamic dependencies but missing")
        out += [ln.requirement for ln in read_lines(root / name, name) if ln.requirement]
    return base_requirements(out)


def project_requirements(path: Path) -> list[str]:
    """Base dependencies of a project folder (pyproject [project].dependencies) or of a wheel (Requires-Dist)."""
    import zipfile
    from email.parser import Parser

    import tomllib

    path = Path(path)
    if path.suffix == ".whl":
        try:
            with zipfile.ZipFile(path) as zf:
                meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                msg = Parser().parsestr(zf.read(meta).decode("utf-8"))
        except (zipfile.BadZipFile, StopIteration, OSError) as exc:
            raise InputError(f"{path}: not a readable wheel ({exc})") from None
        return base_requirements(msg.get_all("Requires-Dist") or [])
    pyproject = path / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{pyproject}: malformed TOML ({exc})") from None
        project = data.get("project", {})
        if "dependencies" in project:
            return list(project["dependencies"])
        if "dependencies" in project.get("dynamic", []):
            files = data.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("dependencies", {}).get("file")
            if files:  # setuptools reads them from requirement files (flashinfer: requirements.txt)
                return _from_files(path, [files] if isinstance(files, str) else files)
            raise InputError(f"{pyproject}: dependencies are dynamic; build a wheel and install that instead")
        return []
    raise InputError(f"{path}: no pyproject.toml with [project].dependencies and not a wheel",
                     hint="build a wheel (setup.py bdist_wheel) and install it through the guard")


# ------------------------------------------------------------------ protected distributions that are absent

_VARIANT = re.compile(r"^(cpu|cu\d+|rocm[\d.]+|xpu)$")


def _variant(version: Version) -> str | None:
    """The build variant in a local version label (``+cpu``, ``+cu128``); None for none or a source build's."""
    local = version.local or ""
    return local if _VARIANT.match(local) else None


def companion_pin(dist: str, torch: DistState | None) -> tuple[str | None, str]:
    """(exact version of ``dist`` that matches the installed torch or None, why) for an absent protected dist.

    torchvision 0.(N+15).P and torchaudio 2.N.P pair with torch 2.N.P (0.23/2.8 ... 0.28/2.13), in torch's
    build variant (a ``+cpu`` torch needs ``+cpu`` ones, which only the PyTorch CPU index has). triton is
    what torch's own Requires-Dist names, else the table of torch's default builds.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    name = canonical(dist)
    if torch is None:
        return None, "torch is not installed, so no version is known to match"
    tv = Version(torch.version)
    _, minor, patch = (list(tv.release) + [0, 0])[:3]
    variant = _variant(tv)
    suffix = f"+{variant}" if variant else ""
    vision, audio = companions.torchvision_minor(torch.version), companions.torchaudio_minor(torch.version)
    if name == "torchvision" and vision:
        return f"{vision}.{patch}{suffix}", f"torchvision {vision} pairs with torch 2.{minor}"
    if name == "torchaudio" and audio:
        return f"{audio}.{patch}{suffix}", f"torchaudio {audio} pairs with torch 2.{minor}"
    if name == "triton":
        env = {"extra": ""}
        for text in torch.requires:
            req = Requirement(text)
            if canonical(req.name) == "triton" and (not req.marker or req.marker.evaluate(env)):
                pinned = [s.version for s in req.specifier if s.operator in ("==", "===")]
                if pinned:
                    return pinned[0], f"torch {torch.version} requires {text.split(';')[0].strip()}"
        base = tv.base_version
        if base in companions.TRITON_OF_TORCH:
            pin = companions.TRITON_OF_TORCH[base]
            return pin, (f"torch {base}'s default build requires triton=={pin} "
                                           f"(the installed {torch.version} names no triton)")
        return None, f"torch {torch.version} names no triton and its release is not in rebuilt's table"
    return None, f"no rule pairs {dist} with torch"


def companion_matches(dist: str, version: str, torch: DistState | None) -> tuple[bool, str]:
    """Whether ``dist`` at ``version`` (just installed by a step) matches the installed torch, and why."""
    from packaging.version import Version

    pin, why = companion_pin(dist, torch)
    if pin is None:
        return False, why
    want, got = Version(pin), Version(version)
    if canonical(dist) == "triton":
        same = want.release == got.release
    else:
        same = want.release[:2] == got.release[:2] and _variant(want) == _variant(got)
    return same, f"{why}: wanted {dist}=={pin}"


def uninstall(python: str, dist: str) -> str:
    """Remove a protected distribution a step brought in that does not match torch; says what happened."""
    proc = runner.capture([python, "-m", "pip", "uninstall", "-y", dist], timeout=300)
    if proc.returncode != 0:
        return f"uninstalling it failed ({(proc.stdout + proc.stderr).strip()[-200:]}): pip uninstall -y {dist}"
    return "uninstalled"


def appeared_matches(dist: str, before: dict[str, DistState], after: dict[str, DistState]) -> bool:
    """A protected distribution a step installed where there was none, at the version matching torch."""
    if dist in before or dist not in after:
        return False
    return companion_matches(dist, after[dist].version, after.get("torch"))[0]


def remove_appeared(python: str, dist: str, after: dict[str, DistState]) -> str:
    """A protected distribution a step installed where there was none, not matching torch: removed, and why."""
    _, why = companion_matches(dist, after[dist].version, after.get("torch"))
    return f"it was not installed before and does not match torch ({why}); {uninstall(python, dist)}"


def installed_requirements(python: str, dist: str) -> list[str]:
    """Base Requires-Dist of a distribution installed in ``python`` (a requirement installed from an index)."""
    code = ("import json, sys\nfrom importlib import metadata\n"
            "print(json.dumps(metadata.requires(sys.argv[1]) or []))")
    proc = runner.capture([python, "-c", code, dist], timeout=120)
    if proc.returncode != 0:
        raise InputError(f"{dist} is not installed in {python}: {proc.stderr.strip()[-300:]}")
    return base_requirements(json.loads(proc.stdout.strip().splitlines()[-1]))
