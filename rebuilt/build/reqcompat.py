"""Requirement lines, and which of them cannot coexist with the protected distributions.

Two halves:

* the lines (``rebuilt.build.reqlines``): a requirement line -> the requirement it holds;
* resolving: pip's own resolver (``pip install --dry-run --report``) decides whether requirements can
  be installed next to the protected versions (pinned by a constraints file). When the whole set does
  not resolve, the lines pip names are tried alone, then halves of the set (bisection), so that every
  line that fails on its own is found and named with pip's reason.

The resolution runs against the target environment as it is (no ``--ignore-installed``): the
installed torch satisfies its own pin, so a source or NGC build that is on no index still resolves,
and only what is missing is looked up on the index (which the step therefore needs).

Nothing here starts a process: ``pip`` is a callable ``pip(args) -> (exit code, output)`` handed in by
the step (output into its log) or by a test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rebuilt.build.reqlines import INLINE, Line, included, parse_line, read_lines  # noqa: F401 - the lines' API
from rebuilt.errors import StepFailed

Pip = Callable[[list[str]], tuple[int, str]]

# ----------------------------------------------------------------------------------------- resolving

class PipTooOld(StepFailed):
    def __init__(self, message: str):
        super().__init__(message, hint="upgrade pip in the target environment: <python> -m pip install 'pip>=22.2'")


@dataclass(frozen=True)
class Verdict:
    line: Line
    conflict: bool  # True: cannot coexist with a protected version; False: fails here for another reason
    reason: str


def _causes(output: str) -> list[str]:
    """pip's 'The conflict is caused by:' lines."""
    lines = output.splitlines()
    for i, text in enumerate(lines):
        if text.strip() == "The conflict is caused by:":
            out = []
            for cause in lines[i + 1:]:
                if not cause.strip():
                    break
                out.append(cause.strip())
            return out
    return []


def _errors(output: str) -> list[str]:
    return [ln[len("ERROR:"):].strip() for ln in output.splitlines() if ln.startswith("ERROR:")]


def _mentions(text: str, name: str) -> bool:
    from packaging.utils import canonicalize_name

    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", canonicalize_name(text.replace("_", "-"))) is not None


def explain(output: str, pins: dict[str, str]) -> tuple[bool, str]:
    """(conflicts with a protected pin, reason) from pip's output of a failed resolution."""
    from packaging.utils import canonicalize_name

    said = _causes(output) or _errors(output)
    evidence = [c for c in said if not c.startswith("The user requested (constraint)")]
    named = sorted({n for n in pins for c in evidence if _mentions(c, canonicalize_name(n))})
    if named:
        hits = [c for c in evidence if any(_mentions(c, canonicalize_name(n)) for n in named)]
        kept = ", ".join(f"{n} {pins[n]}" for n in named)
        return True, "; ".join(hits) + f" (installed and protected: {kept})"
    errors = _errors(output)
    return False, errors[-1] if errors else ((output.strip().splitlines() or ["pip failed"])[-1])


def _trigger_names(output: str) -> set[str]:
    """Names pip puts in 'Cannot install A and B because ...' and in '<name> <version> depends on ...'."""
    from packaging.utils import canonicalize_name

    names: set[str] = set()
    m = re.search(r"Cannot install (.+?) because", output)
    if m:
        for part in re.split(r",\s*|\s+and\s+", m.group(1)):
            part = re.sub(r"^-r \S+ \(line \d+\)$", "", part.strip())
            token = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", part)
            if token:
                names.add(canonicalize_name(token.group(0)))
    for cause in _causes(output):
        dep = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*) \S+ depends on", cause)
        if dep:
            names.add(canonicalize_name(dep.group(1)))
    return names


def resolve(pip: Pip, requirements: list[str], constraints: Path, workdir: Path,
            tag: str = "") -> tuple[bool, str, dict]:
    """Dry-run ``requirements`` with ``constraints``: (resolved, pip's output, its --report)."""
    workdir.mkdir(parents=True, exist_ok=True)
    reqfile, report = workdir / f"requirements{tag}.txt", workdir / f"report{tag}.json"
    reqfile.write_text("".join(r + "\n" for r in requirements))
    report.unlink(missing_ok=True)
    rc, out = pip(["install", "--dry-run", "--report", str(report), "-r", str(reqfile), "-c", str(constraints)])
    if rc != 0 and "no such option" in out:
        raise PipTooOld(f"the target's pip has no `install --dry-run --report` ({_errors(out)[-1:] or out[-200:]})")
    data = json.loads(report.read_text()) if rc == 0 and report.is_file() else {}
    return rc == 0, out, data


def find_incompatible(pip: Pip, lines: list[Line], pins: dict[str, str], constraints: Path,
                      workdir: Path) -> tuple[list[Verdict], dict]:
    """Every line that does not resolve next to the protected ``pins``; (verdicts, report of the rest).

    A line that fails alone is named with pip's reason (``conflict`` when the reason involves a
    protected distribution). Lines that fail only together (a conflict among unprotected
    requirements) are reported as one verdict on the last of them, not a conflict.
    """
    runs = iter(range(10_000))

    def ok(group: list[Line]) -> tuple[bool, str, dict]:
        return resolve(pip, [ln.requirement for ln in group], constraints, workdir, tag=f"-{next(runs)}")

    verdicts: list[Verdict] = []
    rest = [ln for ln in lines if ln.requirement]
    while rest:
        good, out, report = ok(rest)
        if good:
            return verdicts, report
        suspects = [ln for ln in rest if ln.name in _trigger_names(out)]
        found = [v for v in (_alone(ok, ln, pins) for ln in suspects) if v] or _bisect(ok, rest, pins)
        if not found:
            verdicts.append(Verdict(rest[-1], False, "these requirements do not resolve together: " +
                                    (explain(out, pins)[1])))
            return verdicts, {}
        verdicts += found
        gone = {id(v.line) for v in found}
        rest = [ln for ln in rest if id(ln) not in gone]
    return verdicts, {}


def _alone(ok, line: Line, pins: dict[str, str]) -> Verdict | None:
    good, out, _ = ok([line])
    if good:
        return None
    conflict, reason = explain(out, pins)
    return Verdict(line, conflict, reason)


def _bisect(ok, group: list[Line], pins: dict[str, str]) -> list[Verdict]:
    """The lines of ``group`` that fail alone (a group that resolves holds none)."""
    if len(group) == 1:
        v = _alone(ok, group[0], pins)
        return [v] if v else []
    half = len(group) // 2
    out = []
    for part in (group[:half], group[half:]):
        if len(part) == 1 or not ok(part)[0]:
            out += _bisect(ok, part, pins)
    return out


# ------------------------------------------------------------------ installing next to the protected versions

@dataclass(frozen=True)
class Refusal:
    dist: str  # a protected distribution that is not installed
    version: str  # the version the resolution wanted
    wanted_by: tuple[str, ...]  # the distributions of the resolution that require it
    reason: str


def _requires(item: dict) -> list[str]:
    """Names an item of pip's report requires here (markers evaluated with the extras it was asked for)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    extras = [""] + list(item.get("requested_extras") or [])
    out = []
    for text in item["metadata"].get("requires_dist") or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras):
            out.append(canonicalize_name(req.name))
    return out


def plan_install(pip: Pip, requirements: list[str], pins: dict[str, str], absent: dict[str, tuple[str | None, str]],
                 workdir: Path, named: dict[str, str] | None = None,
                 project: str = "the project") -> tuple[list[dict], list[Refusal], str]:
    """What to install for ``requirements`` next to the installed protected ``pins``.

    ``absent``: each protected distribution that is not installed -> (the version that matches the
    installed torch or None, why). One may come in only at that version: each matching version is
    looked up alone first (cheap) and, when the index has it, pinned for the resolution. One the
    resolution wants that has no matching version, or whose matching version the index lacks, is
    refused: left out, and the distributions that wanted it are named. A second full resolution runs
    only when the pins themselves make the requirements unresolvable.
    ``named``: the project's own requirements on absent protected distributions (canonical name ->
    requirement text, dropped from ``requirements``): each is installed at the matching version when
    its specifier allows that version and the index has it, otherwise refused, naming the project.
    Returns (report items to install, refusals, pip's output of a failed resolution).
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    named = named or {}
    workdir.mkdir(parents=True, exist_ok=True)
    refused: dict[str, str] = {}
    extra: dict[str, str] = {}
    for name, (pin, why) in sorted(absent.items()):
        if pin is None:
            refused[name] = why
            continue
        if name in named and not Requirement(named[name]).specifier.contains(pin, prereleases=True):
            refused[name] = f"{project} requires {named[name]}, but {why}: wanted {name}=={pin}"
            continue
        rc, text = pip(["install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet", f"{name}=={pin}"])
        if rc == 0:
            extra[name] = pin
        else:
            refused[name] = f"{why}, and {name}=={pin} is not on the package index here ({explain(text, {})[1]})"

    asked = [f"{name}=={extra[name]}" for name in sorted(named) if name in extra]  # the project's own, matching

    def run(more: dict[str, str], tag: str) -> tuple[bool, str, dict]:
        constraints = workdir / f"constraints{tag}.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted({**pins, **more}.items())))
        return resolve(pip, requirements + asked, constraints, workdir, tag=tag)

    good, out, report = run(extra, "-install")
    attempt = 0
    while not good and extra:  # a pin the requirements cannot take: refuse the pins pip names (else all), again
        causes = [c for c in _causes(out) if not c.startswith("The user requested (constraint)")]
        named_pins = [n for n in extra if any(_mentions(c, n) for c in causes)] or list(extra)
        for name in named_pins:
            refused[name] = f"{absent[name][1]}; with {name}=={extra.pop(name)} the requirements do not resolve: " + \
                ("; ".join(causes) or explain(out, pins)[1])
        attempt += 1
        good, out, report = run(extra, f"-install-{attempt}")
    if not good:
        return [], [], out
    items = report.get("install", [])
    keep = [i for i in items if canonicalize_name(i["metadata"]["name"]) not in refused]
    refusals = []
    for name, reason in refused.items():
        version = next((i["metadata"]["version"] for i in items if canonicalize_name(i["metadata"]["name"]) == name),
                       None)
        if version is None and name not in named:
            continue  # the requirements do not want it: nothing to refuse
        by = tuple(sorted({f"{i['metadata']['name']} {i['metadata']['version']}" for i in items
                           if name in _requires(i)}))
        if name in named:
            by = (f"{project} ({named[name]})",) + by
        refusals.append(Refusal(name, version or absent.get(name, ("", ""))[0] or "", by, reason))
    return keep, refusals, ""


def install_arg(item: dict) -> str:
    """A report item as a pip argument: ``name==version``, or ``name @ url`` for a direct reference."""
    meta = item["metadata"]
    if item.get("is_direct"):
        return f"{meta['name']} @ {item['download_info']['url']}"
    return f"{meta['name']}=={meta['version']}"
