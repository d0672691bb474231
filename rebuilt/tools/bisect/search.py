"""Bisection over the first-parent commits between a good and a bad ref: the pure part and its state.

The commits are numbered in order: 0 is the good ref, N the bad ref, 1..N-1 the
first-parent commits between them (``git rev-list --first-parent good..bad``). A
verdict per index is one of ``good``, ``bad``, ``skip`` (did not build, or the
command said 125), ``unclear`` (measured twice and still not decidable) or None
(not tested yet). Both ends are tested first (the good ref is the reference a
benchmark is compared with); then the untested commit nearest the middle of the
remaining range is next, as ``git bisect`` does, skipped ones stepped around. With
every commit decided that is at most ceil(log2 N) + 2 tests.

The state (``<workdir>/bisect/<recipe>/state.json``, written atomically after
every change) holds the commits, each one's build, verdict and measurements, and
what the environment held before, so ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rebuilt.build import sources
from rebuilt.core import shape
from rebuilt.core.fs import read_json, write_json
from rebuilt.errors import InputError

SCHEMA_VERSION = 1
VERDICTS = ("good", "bad", "skip", "unclear")
MODES = ("bench", "cmd", "build-only")


# --------------------------------------------------------------------------- the pure algorithm

def bounds(verdicts: Sequence[str | None]) -> tuple[int, int]:
    """(lo, hi): the last good index before the first bad one, and that first bad index."""
    n = len(verdicts) - 1
    hi = next((i for i, v in enumerate(verdicts) if v == "bad"), n)
    lo = max((i for i, v in enumerate(verdicts[:hi]) if v == "good"), default=0)
    return lo, hi


def next_index(verdicts: Sequence[str | None]) -> int | None:
    """The index to test next, or None when the first bad commit is pinned down (or cannot be)."""
    n = len(verdicts) - 1
    if n < 1:
        raise ValueError("a bisection needs a good and a bad commit")
    for end, want in ((0, "good"), (n, "bad")):  # the reference first, then the bad end
        if verdicts[end] is None:
            return end
        if verdicts[end] != want:
            return None  # the ends do not agree with the refs given: nothing to bisect (the caller says why)
    lo, hi = bounds(verdicts)
    untested = [i for i in range(lo + 1, hi) if verdicts[i] is None]
    if not untested:
        return None
    middle = (lo + hi) / 2
    return min(untested, key=lambda i: (abs(i - middle), i))


def max_tests(n: int) -> int:
    """The most tests a bisection of ``n`` commits (good..bad) needs when every one decides."""
    return math.ceil(math.log2(n)) + 2


@dataclass(frozen=True)
class Outcome:
    first_bad: int  # index of the first bad commit (or the last candidate when skips leave it open)
    parent: int  # the last good index before it
    undecided: tuple[int, ...]  # skipped or unclear indices between them: the first bad may be any of these


def outcome(verdicts: Sequence[str | None]) -> Outcome:
    lo, hi = bounds(verdicts)
    return Outcome(hi, lo, tuple(i for i in range(lo + 1, hi) if verdicts[i] in ("skip", "unclear")))


# --------------------------------------------------------------------------- commits

@dataclass(frozen=True)
class Commit:
    hash: str
    subject: str
    date: str  # author date, ISO 8601


def try_resolve(src: Path | str, ref: str) -> str | None:
    """A ref of the checkout (tag, branch, fetched branch, commit) → its full commit id, or None; no network."""
    if not Path(src, ".git").exists():
        return None
    for candidate in (ref, f"refs/rebuilt/{ref}", f"origin/{ref}"):
        rc, out = sources.git(src, "rev-parse", "--verify", "-q", f"{candidate}^{{commit}}")
        if rc == 0:
            return out
    return None


def resolve(src: Path | str, ref: str) -> str:
    """Like ``try_resolve``; a ref the checkout lacks is bad input."""
    found = try_resolve(src, ref)
    if found:
        return found
    raise InputError(f"{ref!r} is not a commit of {src}",
                     hint="give a tag, branch or commit that the checkout has (inv src.fetch --ref ... fetches one)")


def is_tag(src: Path | str, ref: str, commit: str) -> bool:
    """Whether ``ref`` is a tag of ``commit`` (a tag does not move: it can name the build, as `--ref <tag>`)."""
    rc, out = sources.git(src, "rev-parse", "--verify", "-q", f"refs/tags/{ref}^{{commit}}")
    return rc == 0 and out == commit


FORMAT = "%H%x1f%s%x1f%aI"


def commits(src: Path | str, good: str, bad: str, g: str | None = None, b: str | None = None) -> list[Commit]:
    """[good, first-parent commits after it ..., bad] of the checkout in ``src`` (``g``, ``b``: resolved already)."""
    g, b = g or resolve(src, good), b or resolve(src, bad)
    if g == b:
        raise InputError(f"--good {good} and --bad {bad} are the same commit ({g[:12]})")
    if sources.git(src, "merge-base", "--is-ancestor", g, b)[0] != 0:
        raise InputError(f"--good {good} ({g[:12]}) is not an ancestor of --bad {bad} ({b[:12]})",
                         hint="the good ref must come before the bad one in the bad ref's history")

    def parse(text: str) -> list[Commit]:
        return [Commit(*line.split("\x1f", 2)) for line in text.splitlines() if line.strip()]

    first = parse(sources.git(src, "log", "-1", f"--format={FORMAT}", g, timeout=120, check=True)[1])
    rest = parse(sources.git(src, "log", "--first-parent", "--reverse", f"--format={FORMAT}", f"{g}..{b}", timeout=120,
                             check=True)[1])
    if not rest or rest[-1].hash != b:
        raise InputError(f"--bad {bad} is not on the first-parent line after --good {good}",
                         hint="bisect along the branch the bad ref is on: pick a good ref among its first parents")
    return first + rest


# --------------------------------------------------------------------------- state

@dataclass
class Entry:
    """What is known of one commit."""

    verdict: str | None = None
    note: str = ""
    builds: list[dict] = field(default_factory=list)  # {status: built|reused|up to date|failed, manifest, ...}
    values: dict[str, list[float]] = field(default_factory=dict)  # bench: case id → samples
    runs: list[str] = field(default_factory=list)  # bench run directories, or command logs
    measured: int = 0  # how many times it was measured (a second one when the first was undecidable)


@dataclass
class State:
    recipe: str
    mode: str
    good: str
    bad: str
    commits: list[dict]  # Commit as dicts, index 0 = good
    options: dict  # spec, metric, cmd, threshold, repeats, alpha
    flags: dict  # the settings flags (stack, python, set, workdir, jobs, checks) reused by --resume
    source_dir: str
    start: dict = field(default_factory=dict)  # what the environment held before (see bisect_build)
    entries: dict[str, Entry] = field(default_factory=dict)
    status: str = "running"  # running | interrupted | failed | done
    message: str = ""
    schema_version: int = SCHEMA_VERSION

    def verdicts(self) -> list[str | None]:
        return [(self.entries.get(c["hash"]) or Entry()).verdict for c in self.commits]

    def tested(self, index: int) -> bool:
        e = self.entries.get(self.commits[index]["hash"])
        return bool(e and (e.verdict or e.builds))

    def entry(self, index: int) -> Entry:
        return self.entries.setdefault(self.commits[index]["hash"], Entry())

    def commit(self, index: int) -> Commit:
        return Commit(**self.commits[index])

    def to_dict(self) -> dict:
        return asdict(self)


def folder(workdir: Path | str, recipe: str) -> Path:
    return Path(workdir) / "bisect" / recipe


def save(state: State, workdir: Path | str) -> Path:
    return write_json(folder(workdir, state.recipe) / "state.json", state.to_dict())


_COMMIT = shape.Obj({"hash": shape.STR, "subject": shape.STR, "date": shape.STR}, closed=True)
_ENTRY = shape.Obj({"verdict": shape.opt(shape.nullable(shape.STR)), "note": shape.opt(shape.STR),
                    "builds": shape.opt(shape.ListOf(shape.MapOf(shape.ANY))),
                    "values": shape.opt(shape.MapOf(shape.ListOf(shape.NUM))),
                    "runs": shape.opt(shape.ListOf(shape.STR)), "measured": shape.opt(shape.INT)}, closed=True)
STATE = shape.Obj({
    "schema_version": shape.INT, "recipe": shape.STR, "mode": shape.STR, "good": shape.STR, "bad": shape.STR,
    "commits": shape.ListOf(_COMMIT), "options": shape.MapOf(shape.ANY), "flags": shape.MapOf(shape.ANY),
    "source_dir": shape.STR, "start": shape.opt(shape.MapOf(shape.ANY)), "entries": shape.opt(shape.MapOf(_ENTRY)),
    "status": shape.opt(shape.STR), "message": shape.opt(shape.STR),
}, closed=True)


def load(workdir: Path | str, recipe: str) -> State | None:
    """The saved bisection of ``recipe`` checked against ``STATE``, or None when there is none."""
    path = folder(workdir, recipe) / "state.json"
    hint = f"remove {path.parent} to start over"
    data = read_json(path, missing=None, what="bisect state", hint=hint)
    if data is None:
        return None
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version {data.get('schema_version')!r}; this rebuilt reads "
                         f"{SCHEMA_VERSION}", hint=hint)
    shape.check(data, STATE, str(path), error=InputError, hint=hint)
    entries = {h: Entry(**e) for h, e in data.pop("entries", {}).items()}
    return State(**data, entries=entries)
