"""Declared shapes of the files rebuilt reads back, checked once before anything uses them.

Every file rebuilt reads (recipes, stacks, bench specs, serve profiles as TOML; serve and bisect
state, bench runs, bundle manifests and indexes, the nox hand-off file, the guard journal, build
stamps and the offline index as JSON) is declared here as a ``Shape`` next to its reader and checked
by ``check``: a wrong type, a missing key, an unknown key (TOML: with a did-you-mean) or a file that
is not an object is one error naming the file, the key and (for TOML) its line. The code after the
check may then index the data freely: no ``KeyError`` or ``AttributeError`` traceback, and no
silent default standing in for a damaged file.

Why a small layer of our own rather than msgspec or pydantic: the shapes are plain nested
objects, lists and scalars (about 120 lines cover them), the message must name the file, the
dotted key and the TOML line in rebuilt's one error style (``rebuilt.errors``, exit 2), and
rebuilt is installed into the build environments it manages (``pip install -e .``, pipx), where
every compiled dependency is one more wheel that must exist for that interpreter. msgspec would
decode faster, but these files are kilobytes; its error paths (``$.roles.server``) would still
have to be mapped to TOML lines and unknown-key hints by code like this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rebuilt.core.text import did_you_mean
from rebuilt.errors import ConfigError, RebuiltError

Path_ = tuple  # a key path: ("roles", "server", "gpus"), list positions as ints


class Mismatch(Exception):
    """Where a value left its shape (a key path) and what was wanted there."""

    def __init__(self, at: Path_, message: str, hint: str | None = None, line_at: Path_ | None = None):
        super().__init__(message)
        self.at, self.message, self.hint = at, message, hint
        self.line_at = at if line_at is None else line_at


def key_name(at: Path_) -> str:
    """``roles.server.gpus``, ``commits[1].hash``; a key with a dot or a space is quoted."""
    out = ""
    for part in at:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if part and all(c.isalnum() or c in "_-" for c in part) else repr(part)
            out += f".{text}" if out else text
    return out


def table_name(at: Path_) -> str:
    return f"in {key_name(at)}" if at else "at the top level"


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Shape:
    """What a value must be; ``what`` is how a message says it ("text", "a list of text")."""

    what = "a value"

    def check(self, value, at: Path_) -> None:  # raises Mismatch
        raise NotImplementedError

    def bad(self, value, at: Path_) -> Mismatch:
        if not at:
            return Mismatch(at, f"must hold {self.what} at the top level, got {_shown(value)}")
        return Mismatch(at, f"{key_name(at)}: must be {self.what}, got {_shown(value)}")


@dataclass(frozen=True)
class Scalar(Shape):
    types: tuple
    what: str

    def check(self, value, at: Path_) -> None:
        if not isinstance(value, self.types) or (isinstance(value, bool) and bool not in self.types):
            raise self.bad(value, at)


STR = Scalar((str,), "text")
INT = Scalar((int,), "a whole number")
NUM = Scalar((int, float), "a number")
BOOL = Scalar((bool,), "true or false")
NULL = Scalar((type(None),), "null")


class _Any(Shape):
    what = "anything"

    def check(self, value, at: Path_) -> None:
        return None


ANY = _Any()


@dataclass(frozen=True)
class Either(Shape):
    options: tuple[Shape, ...]

    @property
    def what(self) -> str:  # type: ignore[override]
        return " or ".join(o.what for o in self.options)

    def check(self, value, at: Path_) -> None:
        for option in self.options:
            try:
                option.check(value, at)
                return
            except Mismatch:
                continue
        raise self.bad(value, at)


def either(*options: Shape) -> Either:
    return Either(tuple(options))


def nullable(shape: Shape) -> Either:
    return Either((shape, NULL))


@dataclass(frozen=True)
class ListOf(Shape):
    item: Shape

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a list, each {self.item.what}"

    def check(self, value, at: Path_) -> None:
        if not isinstance(value, list):
            raise self.bad(value, at)
        for i, item in enumerate(value):
            self.item.check(item, (*at, i))


@dataclass(frozen=True)
class MapOf(Shape):
    """An object with any keys, every value of one shape (``entries``: commit hash -> entry)."""

    value: Shape
    what: str = "an object (a table)"

    def check(self, value, at: Path_) -> None:
        if not isinstance(value, dict):
            raise self.bad(value, at)
        for key, item in value.items():
            self.value.check(item, (*at, key))


@dataclass(frozen=True)
class Opt:
    """A key that may be absent (``Obj({"cwd": opt(STR)})``)."""

    shape: Shape


def opt(shape: Shape) -> Opt:
    return Opt(shape)


@dataclass(frozen=True)
class Obj(Shape):
    """An object with named keys. ``closed``: any other key is refused, with a did-you-mean."""

    fields: Mapping[str, Shape | Opt]
    closed: bool = False
    what: str = "an object (a table)"
    docs: str = field(default="", compare=False)  # where the keys are explained, added to the hint

    def check(self, value, at: Path_) -> None:
        if not isinstance(value, dict):
            raise self.bad(value, at)
        if self.closed:
            for key in value:
                if key not in self.fields:
                    raise Mismatch((*at, key), f"{key_name((*at, key))}: unknown key"
                                   f"{did_you_mean(str(key), self.fields)}",
                                   hint=f"known keys {table_name(at)}: {', '.join(self.fields)}"
                                        + (f" ({self.docs})" if self.docs else ""))
        for key, spec in self.fields.items():
            if key in value:
                (spec.shape if isinstance(spec, Opt) else spec).check(value[key], (*at, key))
            elif not isinstance(spec, Opt):
                raise Mismatch((*at, key), f"{key_name((*at, key))}: missing (it must be {spec.what})", line_at=at)


STRS = either(STR, ListOf(STR))  # "a" or ["a", "b"]


def check(value, shape: Shape, source: str, *, line: Callable[[Path_], int | None] | None = None,
          error: type[RebuiltError] = ConfigError, hint: str | None = None):
    """``value`` when it has ``shape``; else ``error`` naming ``source`` (a file), the key and ``line(key)``."""
    try:
        shape.check(value, ())
    except Mismatch as m:
        n = line(m.line_at) if line else None
        raise error(f"{source}{f':{n}' if n else ''}: {m.message}", hint=m.hint or hint) from None
    return value
