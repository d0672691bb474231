"""Requirement lines as pip and TOML read them: requirements files and pyproject.toml dependency arrays.

``torch == 2.5.1+cpu; platform_machine != "ppc64le"`` keeps its marker's quotes; a pyproject string
(``"torch==2.8.0; sys_platform == 'linux'",``) loses only its own surrounding pair of quotes (TOML
escapes honoured); ``#`` starts a comment at the start of a line or after whitespace (pip's rule);
options (``-r``, ``--extra-index-url``) hold no requirement; in a pyproject.toml only the dependency
arrays are read. A line that looks like a requirement but cannot be read is kept with its problem,
never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

INLINE = "an inline array, not editable per line"
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's own rule: '#' at the start or after whitespace


@dataclass(frozen=True)
class Line:
    file: str  # path relative to the step's folder
    number: int  # 1-based
    text: str  # the line as written, without its newline
    requirement: str | None  # the requirement it holds; None for blanks, comments, options, TOML syntax
    problem: str | None = None  # why a line that looks like a requirement could not be read

    @property
    def name(self) -> str | None:
        return canonicalize_name(Requirement(self.requirement).name) if self.requirement else None

    def where(self) -> str:
        return f"{self.file}:{self.number}"

    @property
    def inline(self) -> bool:
        return bool(self.problem and self.problem.startswith(INLINE))

    def mentions(self) -> set[str]:
        """Names an unreadable line refers to: an inline array's requirements, or its first word."""
        if not self.problem:
            return {self.name} if self.requirement else set()
        if self.inline:
            words = self.problem.split(":", 1)[1].split(",")
        else:
            words = re.split(r"[^A-Za-z0-9._-]", self.text.strip().lstrip("\"'"), maxsplit=1)[:1]
        return {canonicalize_name(w.strip()) for w in words if w.strip()}


def _pyproject_string(body: str) -> str | None:
    """The value of a line that is one TOML string (``"x",`` or ``'x'``, escapes honoured), or None."""
    body = body.strip().rstrip(",").rstrip()
    if len(body) < 2 or body[0] not in "\"'" or body[-1] != body[0]:
        return None
    try:
        value = tomllib.loads(f"v = {body}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    return value if isinstance(value, str) else None


def _toml_comment_start(text: str) -> int:
    """Index of a TOML comment's '#' outside strings, or len(text)."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':  # an escape in a basic string: \" does not close it
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
    return len(text)


def parse_line(text: str, *, pyproject: bool) -> tuple[str | None, str | None]:
    """(requirement, problem) of one line; (None, None) when the line holds no requirement."""
    if pyproject:
        body = text[:_toml_comment_start(text)].strip()
        inner = _pyproject_string(body)
        if inner is None:
            return None, None  # keys, brackets, tables, multi-item arrays: not one requirement per line
        body = inner.strip()
    else:
        body = _COMMENT.sub("", text).strip()
        if not body or body.startswith("-"):
            return None, None  # comments and options (-r, -c, --extra-index-url, ...)
    if not body:
        return None, None
    try:
        Requirement(body)
    except InvalidRequirement as exc:
        return None, f"not a requirement: {exc}"
    return body, None


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ARRAY_START = re.compile(r"^\s*([A-Za-z0-9_.\"'-]+)\s*=\s*\[")


def _dependency_array(table: str, key: str) -> bool:
    """Whether ``key = [...]`` in ``[table]`` of a pyproject.toml lists requirements."""
    key = key.strip("\"'")
    return (table, key) in (("build-system", "requires"), ("project", "dependencies")) or \
        table in ("project.optional-dependencies", "dependency-groups")


def _pyproject_lines(texts: list[str]) -> list[tuple[str | None, str | None]]:
    """Per line of a pyproject.toml: (requirement, problem), only inside dependency arrays."""
    out: list[tuple[str | None, str | None]] = []
    table, inside = "", False
    for text in texts:
        code = text[:_toml_comment_start(text)]
        m = _TABLE.match(text)
        if m and not inside:
            table = m.group(1).strip()
            out.append((None, None))
            continue
        start = _ARRAY_START.match(code)
        if not inside and start and _dependency_array(table, start.group(1)):
            rest = code[start.end():]
            if "]" in rest:  # an inline array: editable per line only when it holds one requirement
                out.append((None, _inline_array_problem(rest)))
                continue
            inside = True
            out.append(parse_line(rest, pyproject=True) if rest.strip() else (None, None))
            continue
        if inside:
            item = code.strip()
            if item.startswith("]"):
                inside = False
                out.append((None, None))
            elif item.endswith("]") and _pyproject_string(item) is None:  # '"x" ]' closes the array
                inside = False
                out.append(parse_line(item[:-1], pyproject=True))
            else:
                out.append(parse_line(text, pyproject=True))
            continue
        out.append((None, None))
    return out


def read_lines(path: Path, rel: str) -> list[Line]:
    texts = path.read_text().splitlines()
    if path.name == "pyproject.toml":
        parsed = _pyproject_lines(texts)
    else:
        parsed = [parse_line(t, pyproject=False) for t in texts]
    return [Line(rel, i, t, req, problem) for i, (t, (req, problem)) in enumerate(zip(texts, parsed), 1)]


def _inline_array_problem(text: str) -> str | None:
    """A pyproject line holding several strings (``requires = ["a", "torch"]``) cannot be edited per line."""
    body = text[:_toml_comment_start(text)]
    strings = re.findall(r"\"([^\"]*)\"|'([^']*)'", body)
    names = []
    for a, b in strings:
        try:
            names.append(canonicalize_name(Requirement(a or b).name))
        except InvalidRequirement:
            continue
    return f"{INLINE}: {', '.join(names)}" if names else None


def included(path: Path, root: Path) -> list[Path]:
    """``path`` and the files it pulls in with ``-r``/``--requirement`` (recursively, each once)."""
    seen: list[Path] = []

    def walk(p: Path) -> None:
        if p in seen or not p.is_file():
            return
        seen.append(p)
        if p.name == "pyproject.toml":
            return
        for text in p.read_text().splitlines():
            m = re.match(r"\s*(?:-r|--requirement)[\s=]+(\S+)", text)
            if m:
                walk((p.parent / m.group(1)).resolve())

    walk(path.resolve())
    return seen
