"""One parser for the numbers people type: flag values (``--repeats 3``) and settings (``jobs = 8``).

Every numeric value of a flag, a ``--set``, an environment variable or a settings file goes
through ``number()``, so a bad one always ends the same way: one ``ConfigError`` (exit 2) that
names the flag or setting, says which form it takes (a whole number, a number, at least N,
or a word such as ``auto``) and repeats what was given. No caller converts with ``int()`` or
``float()`` on its own.
"""

from __future__ import annotations

import math
from typing import Any

from rebuilt.errors import ConfigError

__all__ = ["number", "form"]

_INFINITE = ("inf", "infinity")


def form(kind: type, words: tuple[str, ...] = ()) -> str:
    """How the expected value reads in a message: ``a whole number or 'auto'`` (bounds get their own)."""
    return ("a whole number" if kind is int else "a number") + "".join(f" or '{w}'" for w in words)


def _convert(value: Any, kind: type, infinite: bool) -> int | float:
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, str):
        text = value.strip()
        if infinite and text.lower() in _INFINITE:
            return math.inf
        if kind is int:
            return int(text, 10)
        try:
            return int(text, 10)  # "8" stays a whole number where any number is allowed
        except ValueError:
            pass
        result = float(text)
        if math.isnan(result) or (math.isinf(result) and not infinite):
            raise ValueError(text)
        return result
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(value, (int, float)):
        return value
    raise ValueError(value)


def _is_number(value: Any) -> bool:
    try:
        _convert(value, float, False)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def number(value: Any, name: str, *, kind: type = int, minimum: float | None = None, maximum: float | None = None,
           words: tuple[str, ...] = (), infinite: bool = False, hint: str | None = None) -> int | float | str:
    """``value`` (text from a flag, or a number from a settings file) as ``kind``, within the bounds.

    ``name`` says where it came from: ``--repeats``, or ``setting jobs (from flag --jobs)``. A value
    equal to one of ``words`` (``auto``) is returned as that word; ``infinite`` accepts ``inf``.
    """
    if isinstance(value, str) and value.strip().lower() in words:
        return value.strip().lower()
    expected = form(kind, words)
    try:
        result = _convert(value, kind, infinite)
    except (TypeError, ValueError, OverflowError):
        what = "a whole number" if kind is int and _is_number(value) else "a number"
        raise ConfigError(f"{name}: {value!r} is not {what}; expected {expected}", hint=hint) from None
    if minimum is not None and result < minimum:
        raise ConfigError(f"{name}: {value!r} must be at least {minimum:g}", hint=hint)
    if maximum is not None and result > maximum:
        raise ConfigError(f"{name}: {value!r} must be at most {maximum:g}", hint=hint)
    return result
