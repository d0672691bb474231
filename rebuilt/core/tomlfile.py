"""TOML files users write (recipes, stacks, bench specs, serve profiles): read, locate, check.

One way for all of them: ``load`` reads a file or fails naming it (and the line of a syntax error),
``line_of`` finds the line that sets a key (``roles.server.gpus``, ``steps[3].run``) so that every
message reads ``<file>:<line>: ...``, and ``check`` holds the data against its declared shape
(``rebuilt.core.shape``: wrong types, missing keys, unknown keys with a did-you-mean, one hint style).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tomllib

from rebuilt.core import shape as shape_mod
from rebuilt.errors import ConfigError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+(?:\s*\.\s*(?:"[^"]*"|[A-Za-z0-9_\-]+))*)\s*=""")


@dataclass(frozen=True)
class Toml:
    """A TOML file's data with its text (for lines) and path (for messages)."""

    path: Path
    text: str
    data: dict

    def line(self, at) -> int | None:
        return line_of(self.text, at)

    def where(self, *at) -> str:
        """``<file>:<line>`` of the key path ``at`` (just ``<file>`` when not found)."""
        n = self.line(at) if at else None
        return f"{self.path}:{n}" if n else str(self.path)

    def at(self, *at) -> str:
        """``<file>:<line>: <key path>``: how every message about one key begins (``p.toml:7: roles.server.port``)."""
        return f"{self.where(*at)}: {shape_mod.key_name(at)}"

    def check(self, shape: shape_mod.Shape, hint: str | None = None) -> dict:
        return shape_mod.check(self.data, shape, str(self.path), line=self.line, hint=hint)


def parse(text: str, path: Path | str) -> Toml:
    """Parse ``text`` (the content of ``path``); malformed TOML names the file, line and column."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{path}:{m.group(1)}:{m.group(2)}" if m else str(path)
        reason = msg[: m.start()].strip() if m else msg
        raise ConfigError(f"{where}: malformed TOML: {reason}", hint="fix the file at the line shown") from None
    return Toml(Path(path), text, data)


def load(path: Path | str, what: str = "file") -> Toml:
    """Read and parse a TOML file or fail naming it (``what``: "recipe", "bench spec", ...)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse(text, path)


def _split(dotted: str) -> list[str]:
    """``roles."a.b".x`` -> ["roles", "a.b", "x"]."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', dotted)
    return [a or b or c for a, b, c in parts]


def _tables(text: str):
    """(line number, key path of the table it opens) for every table header, arrays of tables indexed."""
    counts: dict[tuple, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if not m:
            continue
        path: list = []
        names = _split(m.group(2))
        for i, name in enumerate(names):
            path.append(name)
            key = tuple(path)
            if m.group(1) == "[[" and i == len(names) - 1:
                counts[key] = counts.get(key, 0) + 1
            if key in counts:
                path.append(counts[key] - 1)
        yield n, tuple(path)


def line_of(text: str, at) -> int | None:
    """The line that sets the key path ``at``: ``key =`` in its table, its own header, else any ``key =``."""
    at = tuple(at)
    if not at:
        return None
    headers = list(_tables(text))
    for n, path in headers:
        if path == at:
            return n
    if isinstance(at[-1], int):  # a list item: the line of the list
        return line_of(text, at[:-1]) if len(at) > 1 else None
    lines = text.splitlines()
    starts = [0] + [n for n, _ in headers]
    owners = [()] + [p for _, p in headers]
    for i, (start, owner) in enumerate(zip(starts, owners)):
        if owner != at[: len(owner)] or len(owner) >= len(at):
            continue
        end = starts[i + 1] - 1 if i + 1 < len(starts) else len(lines)
        rest = at[len(owner):]
        for n in range(start, end):
            m = _KEY.match(lines[n])
            if m and tuple(_split(m.group(1)))[: len(rest)] in (rest, rest[:1]):
                return n + 1
    key = at[-1]
    pattern = re.compile(rf"""^\s*["']?{re.escape(str(key))}["']?\s*=""")
    return next((n for n, line in enumerate(lines, 1) if pattern.match(line)), None)


def unknown_key(doc: Toml | None, at, allowed, docs: str = "") -> ConfigError:
    """The error for a key outside ``allowed`` (for checks a shape cannot declare, such as matrix aliases)."""
    at = tuple(at)
    try:
        shape_mod.Obj({k: shape_mod.ANY for k in allowed}, closed=True, docs=docs).check({at[-1]: None}, at[:-1])
    except shape_mod.Mismatch as m:
        where = doc.where(*at) if doc else ""
        return ConfigError(f"{where + ': ' if where else ''}{m.message}", hint=m.hint)
    raise AssertionError(f"{at[-1]!r} is allowed")
