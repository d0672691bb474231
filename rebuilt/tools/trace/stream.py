"""Read a Chrome trace as a stream: a window of ~1 MiB of decompressed bytes, never the whole file.

Traces reach gigabytes; holding one decompressed (plus the objects built from it)
is what made memory grow with the input. Here each pass re-opens the file and
decompresses it again piece by piece (ISA-L's ``isal_zlib``, else ``zlib``, with
``wbits=31``; gzip members joined, recognised by their magic bytes), and the caller sees batches of events
cut at verified boundaries (see ``rebuilt.tools.trace.io`` for how a boundary is
verified). The window only grows past a batch for a single event larger than one.

A second pass that rewrites a few events (``splice``) copies every other byte
straight from the re-read input to the output, so the output is written as it
is produced.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from rebuilt.tools.trace import io

try:  # ISA-L inflates about twice as fast as zlib (https://github.com/pycompression/python-isal)
    from isal import isal_zlib as _inflate

    _INFLATE_ERRORS: tuple = (zlib.error, _inflate.error)
except ImportError:  # pragma: no cover - isal is a dependency; zlib reads the same data
    _inflate = zlib
    _INFLATE_ERRORS = (zlib.error,)

CHUNK = 1 << 20  # compressed or plain bytes read at a time
OUT_MAX = 4 << 20  # decompressed bytes per piece at most
BATCH_BYTES = io.BATCH_BYTES
TraceInputError = io.TraceInputError


class Batch(NamedTuple):
    """Consecutive events: bytes [start, end) of the decompressed file, ordinals first, first + 1, ...

    ``records`` is True when ``values`` came from the caller's fast decoder, False when
    they are dicts (None for an event that is not valid JSON) from the careful path.
    """

    start: int
    end: int
    first: int
    values: list
    records: bool


class Reader:
    """Decompressed bytes of one file, a piece at a time (gzip by magic, not by name)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.f = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise io.unreadable(path, err) from None
        self.gz = self.f.read(2) == io.GZIP_MAGIC
        self.f.seek(0)
        self.d = _inflate.decompressobj(wbits=31) if self.gz else None
        self.done = False

    def close(self) -> None:
        self.f.close()

    def read(self) -> bytes:
        """The next piece, b"" at the end."""
        if self.done:
            return b""
        if not self.gz:
            piece = self.f.read(CHUNK)
            self.done = not piece
            return piece
        try:
            return self._inflate()
        except (EOFError, *_INFLATE_ERRORS) as err:
            raise TraceInputError(
                f"{self.path}: the gzip data is truncated or corrupt ({err})",
                hint="the profile was probably still being written or copied; "
                "copy it again from the profiler output folder",
            ) from None

    def _inflate(self) -> bytes:
        while True:
            d = self.d
            if d.eof:
                rest = d.unused_data.lstrip(b"\0")  # zero padding after a member
                while len(rest) < 2:
                    raw = self.f.read(CHUNK)
                    if not raw:
                        if rest:
                            raise zlib.error("trailing garbage after the gzip data")
                        self.done = True
                        return b""
                    rest = (rest + raw).lstrip(b"\0")
                if not rest.startswith(io.GZIP_MAGIC):
                    raise zlib.error("trailing garbage after the gzip data")
                self.d = d = _inflate.decompressobj(wbits=31)
                piece = d.decompress(rest, OUT_MAX)
            else:
                data = d.unconsumed_tail or self.f.read(CHUNK)
                if not data:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                piece = d.decompress(data, OUT_MAX)
            if piece:
                return piece


class Window:
    """A sliding window over a Reader: ``buf`` holds decompressed bytes from offset ``base``."""

    def __init__(self, reader: Reader):
        self.r = reader
        self.buf = b""
        self.base = 0
        self.eof = False

    def more(self, want: int = 1) -> bool:
        """Append at least ``want`` bytes (fewer at the end); False when nothing was left."""
        pieces, got = [self.buf], 0
        while got < want:
            piece = self.r.read()
            if not piece:
                self.eof = True
                break
            pieces.append(piece)
            got += len(piece)
        if got:
            self.buf = b"".join(pieces)
        return got > 0

    def drop(self, rel: int) -> None:
        """Forget the bytes before ``rel`` (relative to the window)."""
        if rel > 0:
            self.buf = self.buf[rel:]
            self.base += rel

    def careful(self, fn: Callable[[bytes], object]) -> object:
        """``fn(buf)``, reading more while it fails only because the window ends too soon.

        Every reader in ``io`` fails (rather than answering wrongly) on bytes cut
        short, so a failure with input left is retried on a larger window.
        """
        while True:
            try:
                return fn(self.buf)
            except TraceInputError:
                if not self.more(max(len(self.buf), CHUNK)):
                    raise


class TraceStream:
    """One trace file read in passes; top-level members kept as bytes (they are small).

    Members after the traceEvents array are known after the first full pass,
    which also sets ``event_count``, ``last_event_end`` and ``batch_table``
    [(start, end, first, count)], so that a second pass can find events again.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.members: dict[str, bytes] = {}
        self.event_count = -1
        self.last_event_end = -1
        self.batch_table: list[tuple[int, int, int, int]] = []
        self.bare_array = False
        with self._open():
            pass

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[Window, int]]:
        """A window positioned at the first byte inside the traceEvents array."""
        reader = Reader(self.path)
        try:
            w = Window(reader)
            w.more(CHUNK)
            tf = w.careful(lambda buf: io.TraceFile(self.path, buf))
            for key, (s, e) in tf.members.items():
                self.members.setdefault(key, bytes(tf.data[s:e]))
            self.bare_array = tf.bare_array
            yield w, tf.array_open
        finally:
            reader.close()

    def member(self, key: str, default: object = None) -> object:
        raw = self.members.get(key)
        return default if raw is None else io.loads(raw)

    def batches(self, decode: Callable[[bytes], list] | None = None, size: int | None = None) -> Iterator[Batch]:
        """Every event in file order, ~``size`` bytes at a time.

        ``decode`` parses ``[`` + events + ``]`` (any exception: the batch is read the
        careful way instead); without it the values are orjson dicts.
        """
        with self._open() as (w, s):
            yield from self._batches(w, s, decode, size or BATCH_BYTES)

    def _batches(self, w: Window, s: int, decode, size: int) -> Iterator[Batch]:
        path, table, n, close = self.path, [], 0, s
        s = w.careful(lambda buf: _first(buf, close, path))
        last_end = -1
        while s is not None:
            w.drop(s)
            s = 0
            while not w.eof and len(w.buf) < size + CHUNK:
                w.more(CHUNK)
            batch, nxt = self._fast(w, decode, size) or w.careful(lambda buf: _slow(buf, path, size))
            values, e = batch
            table.append((w.base, w.base + e, n, len(values)))
            yield Batch(w.base, w.base + e, n, values, nxt[1])
            n += len(values)
            last_end = w.base + e
            s, close = nxt[0], e
        close = w.careful(lambda buf: _close(buf, close, path))
        self._tail(w, close)
        self.batch_table, self.event_count, self.last_event_end = table, n, last_end

    def _fast(self, w: Window, decode, size: int):
        """One batch cut at the first candidate boundary past ``size``, parsed in one call."""
        buf = w.buf
        m = io.SEP.search(buf, size) if size < len(buf) else None
        while m is None and not w.eof:
            w.more(CHUNK)
            buf = w.buf
            m = io.SEP.search(buf, size)
        if m is not None:
            return _decode(buf, m, decode)
        for tries, m in enumerate(_END.finditer(buf)):  # the last batch: up to the array's end
            got = _decode(buf, m, decode)
            if got is not None or tries >= io.MAX_MISSES:
                return got
        return None

    def _tail(self, w: Window, close: int) -> None:
        """Members after the array: read the (small) rest of the file and parse it."""
        while w.more(CHUNK):
            pass
        if not self.bare_array:
            tf = io.TraceFile(self.path, b'{"traceEvents":[]' + w.buf[close + 1:])
            for _ in tf.events():
                pass
            for key, (s, e) in tf.members.items():
                self.members[key] = bytes(tf.data[s:e])

    def splice(self, fp: IO[bytes], edits: list[tuple[int, int, Callable[[bytes], bytes]]]) -> None:
        """Copy the file to ``fp``, replacing each byte range [start, end) by ``fn(old bytes)``.

        ``edits`` are sorted and do not overlap; start == end inserts.
        """
        reader = Reader(self.path)
        try:
            buf, base = b"", 0
            for start, end, fn in edits:
                while base + len(buf) < start:
                    fp.write(buf)
                    base += len(buf)
                    buf = _need(reader)
                fp.write(buf[:start - base])
                buf, base = buf[start - base:], start
                while base + len(buf) < end:
                    buf += _need(reader)
                fp.write(fn(buf[:end - base]))
                buf, base = buf[end - base:], end
            fp.write(buf)
            for piece in iter(reader.read, b""):
                fp.write(piece)
        finally:
            reader.close()


_END = re.compile(rb"\}\s*+\]")


def _decode(buf: bytes, m: re.Match, decode):
    """Parse the events before the candidate boundary ``m`` in one call; None when refused."""
    e = m.start() + 1
    joined = b"[" + buf[:e] + b"]"
    records = decode is not None
    try:
        values = decode(joined) if records else orjson.loads(joined)
    except Exception:  # noqa: BLE001 - any refusal sends the batch the careful way
        return None
    if not records and not all(type(v) is dict for v in values):
        return None
    nxt = None if buf[m.end() - 1] == 0x5D else m.end() - 1  # ']'
    return (values, e), (nxt, records)


def _need(reader: Reader) -> bytes:
    piece = reader.read()
    if not piece:
        raise TraceInputError(f"{reader.path}: the file changed while it was being read",
                              hint="wait until the profiler has finished writing it")
    return piece


def _first(buf: bytes, pos: int, path: Path) -> int | None:
    """The first event's '{', or None for an empty array."""
    s = io.skip_ws(buf, pos)
    c = buf[s:s + 1]
    if c == b"]":
        return None
    if c != b"{":
        if not c:
            raise io.not_a_trace(path, "the traceEvents list never closes", hint=io.CUT_HINT)
        raise io.not_a_trace(path, f"traceEvents entry at byte {s} is not a JSON object")
    return s


def _close(buf: bytes, pos: int, path: Path) -> int:
    close = io.skip_ws(buf, pos)
    if buf[close:close + 1] != b"]":
        raise io.not_a_trace(path, f"expected ']' at byte {close}", hint=io.CUT_HINT)
    return close


def _slow(buf: bytes, path: Path, size: int):
    """Events one at a time from the start of ``buf`` up to ~``size`` bytes (dicts, None if invalid)."""
    values, e = [], 0
    for ev in io.scan(buf, 0, path):
        values.append(ev.value)
        e = ev.end
        if e >= size:
            break
    return (values, e), (io.next_start(buf, e, path), False)
