"""Decode only the fields the perfetto fix looks at (msgspec structs), skipping the rest in C.

Parsing every event into a dict costs most of the time of a fix, yet the fix reads
about ten fields. ``msgspec`` (https://jcristharif.com/msgspec/structs.html)
decodes a JSON array into structs that declare just those fields and skips the
others without building them; it still checks the whole batch is valid JSON.
A field that is absent stays ``UNSET``, so "absent" and ``null`` stay apart, as
``dict.get`` with a default tells them apart on the dict path.

Without msgspec, ``decoder()`` returns None and the batches are parsed as dicts.
A batch the structs refuse (an ``args`` that is not an object, NaN, a huge
integer) is read as dicts too, so both paths see the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency; kept optional for bare installs
    msgspec = None

if msgspec is not None:
    UNSET = msgspec.UNSET

    class Args(msgspec.Struct):
        registers: Any = msgspec.field(default=UNSET, name="registers per thread")
        correlation: Any = None
        name: Any = None
        sort_index: Any = None

    class Event(msgspec.Struct):
        ph: Any = None
        name: Any = None
        pid: Any = UNSET
        tid: Any = UNSET
        ts: Any = None
        dur: Any = 0
        id: Any = None
        bp: Any = None
        args: Args | None = None

    class Whole(msgspec.Struct):
        """Any JSON object; its members are checked and skipped, nothing is built."""

    _DECODER = msgspec.json.Decoder(list[Event])
    _VALIDATOR = msgspec.json.Decoder(Whole)
else:
    UNSET = object()
    _DECODER = _VALIDATOR = None


def decoder() -> Callable[[bytes], list] | None:
    """``decode(b"[...]") -> [Event]``, or None when msgspec is not installed."""
    return _DECODER.decode if _DECODER is not None else None


def validator() -> Callable[[bytes], object] | None:
    """``check(b"{...}")`` raises unless the bytes are exactly one JSON object; None without msgspec."""
    return _VALIDATOR.decode if _VALIDATOR is not None else None
