"""The Python requirements a plan installs, and a wheelhouse of them (``pip download``).

Read from the planned steps: ``{python} -m pip install ...`` arguments (requirements and ``-r``
files, local paths and flags left out), the project requirements a ``pip-protected`` step installs,
and for other installing steps that run ``make`` the ``pip install`` lines of the Makefile (sgl-kernel's
``install-deps``). Protected distributions (torch & co) are never downloaded: the build keeps the
environment's. Each source of a requirement is reported, so the wheelhouse can be checked by eye.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rebuilt.core import runner
from rebuilt.errors import StepFailed

_FLAGS_WITH_VALUE = {"-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                     "--target", "-t", "--prefix", "--root", "--config-settings", "-C", "--python-version",
                     "--platform", "--upgrade-strategy"}


def _requirement(token: str) -> str | None:
    if token.startswith("-") or "/" in token or token.endswith((".whl", ".tar.gz", ".zip")) or token in (".", ".."):
        return None
    try:
        Requirement(token)
    except InvalidRequirement:
        return None
    return token


def _file_requirements(path: Path, seen: set) -> list[str]:
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    out = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            out += _file_requirements(path.parent / line.split(None, 1)[1], seen)
        elif line and not line.startswith(("#", "-")):
            req = _requirement(line)
            if req:
                out.append(req)
    return out


def pip_args(argv: list[str], cwd: Path) -> list[str]:
    """Requirements named by ``pip install`` arguments (``-r`` files read relative to ``cwd``)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("-r", "--requirement") and i + 1 < len(argv):
            out += _file_requirements(cwd / argv[i + 1], set())
            i += 2
            continue
        if a in ("-e", "--editable"):
            i += 2
            continue
        if a in _FLAGS_WITH_VALUE:
            i += 2
            continue
        req = _requirement(a)
        if req:
            out.append(req)
        i += 1
    return out


def _pip_install_tail(words: list[str]) -> list[str] | None:
    for i in range(len(words) - 1):
        if re.fullmatch(r"(.*/)?(pip3?|\$\(PIP\)|pip)", words[i]) and words[i + 1] == "install":
            return words[i + 2:]
        if words[i] == "pip" and i > 0 and words[i - 1] == "-m" and words[i + 1] == "install":
            return words[i + 2:]
    return None


def makefile_requirements(path: Path) -> list[str]:
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            words = shlex.split(line.split("#", 1)[0])
        except ValueError:
            continue
        tail = _pip_install_tail(words)
        if tail:
            out += [r for r in (_requirement(w) for w in tail if "$" not in w) if r]
    return out


def step_requirements(step) -> list[str]:
    """The requirements one planned step installs (empty for steps that install nothing from an index)."""
    cwd = Path(step.cwd)
    if step.action == "pip-protected":
        from rebuilt.build import guard

        project = [a for a in step.args.get("target", []) if not a.startswith("-")]
        path = cwd / project[-1] if project else None
        if path and path.suffix == ".whl":  # a wheel this build makes: its Requires-Dist, when one was built before
            built = sorted(cwd.glob(project[-1]), key=lambda f: f.stat().st_mtime)
            return guard.project_requirements(built[-1]) if built else []
        if path and (path / "pyproject.toml").is_file():
            try:
                return guard.project_requirements(path)
            except Exception:  # dynamic dependencies: known only after the build
                return []
        if path and not path.exists():  # a requirement from the index (flashinfer's index mode)
            req = _requirement(project[-1])
            return [req] if req else []
        return []
    words = list(step.argv) if step.argv else (shlex.split(step.shell) if step.shell else [])
    tail = _pip_install_tail(words)
    if tail is not None:
        return pip_args(tail, cwd)
    if step.installs and words[:1] == ["make"]:
        return makefile_requirements(cwd / "Makefile")
    return []


def unknown(plan) -> list[str]:
    """Installing steps whose requirements are known only after the build (a wheel not built yet)."""
    out = []
    for step in plan.steps:
        if step.action != "pip-protected":
            continue
        project = [a for a in step.args.get("target", []) if not a.startswith("-")]
        if project and project[-1].endswith(".whl") and not list(Path(step.cwd).glob(project[-1])):
            out.append(f"{step.title}: installs {project[-1]}, built later; its requirements are not in the "
                       "wheelhouse (build once on the connected host, then bundle: the built wheel is read)")
    return out


def plan_requirements(plan, protected: list[str]) -> dict[str, list[str]]:
    """requirement -> the steps that install it; protected distributions and the plan's own components
    (by recipe name) left out."""
    keep = {canonicalize_name(p) for p in protected}
    keep |= {canonicalize_name(rp.recipe.name) for rp in plan.recipes}  # built by this plan (sgl-kernel for sglang)
    out: dict[str, list[str]] = {}
    for step in plan.steps:
        for req in step_requirements(step):
            if canonicalize_name(Requirement(req).name) in keep:
                continue
            out.setdefault(req, []).append(step.title)
    return out


def _pip(argv: list[str], log) -> tuple[int, str]:
    proc = runner.capture(argv, timeout=3600)
    text = (proc.stdout or "") + (proc.stderr or "")
    log.write("$ " + " ".join(argv) + "\n" + text)
    return proc.returncode, text


def download(python: str, requirements: list[str], cache: Path, python_version: str, log, constraints: Path | None,
             protected: list[str]) -> list[Path]:
    """``pip download`` into the wheel cache ``cache`` for the target Python; the files this plan needs
    (protected distributions never). What the cache already resolves is not asked of the index again."""
    cache.mkdir(parents=True, exist_ok=True)
    if not requirements:
        return []
    argv = [python, "-m", "pip", "download", "--dest", str(cache), "--progress-bar", "off"]
    target = runner.capture([python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"])
    if python_version and (target.stdout or "").strip() != python_version:
        argv += ["--only-binary=:all:", "--python-version", python_version]
    if constraints and constraints.is_file():
        argv += ["-c", str(constraints)]
    rc, text = _pip(argv + ["--no-index", "--find-links", str(cache)] + requirements, log)
    if rc != 0:
        rc, text = _pip(argv + requirements, log)
    if rc != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise StepFailed(f"pip download of {len(requirements)} requirement(s) failed:\n{tail}",
                         hint="the wheelhouse needs the package index (or PIP_INDEX_URL / PIP_FIND_LINKS)")
    keep = {canonicalize_name(p) for p in protected}
    files = []
    for line in text.splitlines():
        m = re.match(r"\s*(?:Saved|File was already downloaded)\s+(\S+)", line)
        if not m:
            continue
        f = cache / Path(m.group(1)).name
        name = canonicalize_name(re.split(r"-\d", f.name, maxsplit=1)[0])
        if f.is_file() and name not in keep and f not in files:  # torch & co stay the environment's
            files.append(f)
    return files
