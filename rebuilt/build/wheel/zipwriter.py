"""A streaming ZIP writer that deflates on several threads (pigz-style) and hashes as it reads.

Each member is split into chunks compressed in a thread pool (zlib releases the
GIL); chunks end with a sync flush so their raw deflate streams concatenate into
one, and each chunk is primed with the previous 32 KiB as a dictionary. One
ordered queue holds headers, chunks and data descriptors of every member, so the
small files of a package (thousands of headers and .py files) are compressed in
parallel too, while the file is still written strictly in order. At most
``inflight_bytes`` of input are held at once, so a 1 GB shared library is never
held whole. Sizes and CRC come after the data (data descriptor, ZIP64).

The deflate engine is ISA-L's (the ``isal`` wheel, https://github.com/pycompression/python-isal)
when it is installed: its level 2 writes about the bytes of zlib's level 1 at 3-4x zlib's speed,
and its raw deflate streams, with a preset dictionary and sync flushes, concatenate exactly like
zlib's (any unzip or pip reads them). Without it, zlib.
"""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 4 << 20
WINDOW = 32 << 10
ZIP64_LIMIT = 0xFFFFFFFF


@dataclass
class Member:
    name: str
    dostime: tuple[int, int]
    mode: int
    crc: int = 0
    size: int = 0
    compressed: int = 0
    offset: int = 0


def _dos_time(ts: float) -> tuple[int, int]:
    t = time.localtime(max(ts, 315532800))  # zip cannot express dates before 1980
    return ((t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
            ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


@dataclass(frozen=True)
class Engine:
    """A deflate implementation with the zlib module's interface, and the level to use."""

    name: str
    module: object
    level: int


def engine(fast: bool = False) -> Engine:
    """ISA-L when installed (level 2; --fast: level 0), else zlib (level 2; --fast: level 1)."""
    try:
        from isal import isal_zlib
    except ImportError:
        return Engine("zlib", zlib, 1 if fast else 2)
    return Engine("isal", isal_zlib, 0 if fast else 2)


def _deflate(data: bytes, zdict: bytes | None, last: bool, eng: Engine) -> bytes:
    z = eng.module
    if eng.module is zlib and eng.level == 0:
        raise ValueError("level 0 is not supported: use deflate levels 1-9")
    c = z.compressobj(eng.level, z.DEFLATED, -15, 9, z.Z_DEFAULT_STRATEGY, zdict) if zdict else \
        z.compressobj(eng.level, z.DEFLATED, -15, 9)
    return c.compress(data) + c.flush(z.Z_FINISH if last else z.Z_SYNC_FLUSH)


class ZipWriter:
    """Write members in order; ``add_file`` streams from a file and returns (sha256 digest, size)."""

    def __init__(self, out: BinaryIO, eng: Engine | None = None, workers: int = 2, inflight_bytes: int = 8 * CHUNK,
                 max_items: int = 1024):
        self.engine = eng or engine()
        _deflate(b"", None, True, self.engine)  # a bad level fails here, not in a worker
        self.out = out
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self.inflight_bytes = max(CHUNK, inflight_bytes)
        self.max_items = max(2, max_items)
        self.members: list[Member] = []
        self.offset = 0
        self._queue: deque[tuple[str, Member, Future | None, int]] = deque()
        self._pending_bytes = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)

    def _emit(self, kind: str, m: Member, fut: Future | None) -> None:
        if kind == "head":
            # flag 0x08: sizes and CRC follow the data; 0x800: UTF-8 names; zip64 extra reserves room
            m.offset = self.offset
            name = m.name.encode("utf-8")
            extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0)
            self._write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0x0808, 8, m.dostime[0], m.dostime[1],
                                    0, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra)
        elif kind == "chunk":
            data = fut.result()
            m.compressed += len(data)
            self._write(data)
        else:  # "end": zip64 data descriptor
            self._write(struct.pack("<4sIQQ", b"PK\x07\x08", m.crc, m.compressed, m.size))
            self.members.append(m)

    def _drain(self, everything: bool = False) -> None:
        """Write what is ready at the front of the queue; block while too much is in flight."""
        q = self._queue
        while q:
            kind, m, fut, nbytes = q[0]
            must = everything or self._pending_bytes > self.inflight_bytes or len(q) > self.max_items
            if kind == "chunk" and not fut.done() and not must:
                return
            q.popleft()
            self._pending_bytes -= nbytes
            self._emit(kind, m, fut)

    def add_file(self, name: str, src: BinaryIO, mtime: float, mode: int = 0o644) -> tuple[bytes, int]:
        """Queue one member read from ``src``; returns (sha256 digest, uncompressed size)."""
        m = Member(name, _dos_time(mtime), mode)
        self._queue.append(("head", m, None, 0))
        sha = hashlib.sha256()
        prev_tail = b""
        chunk = src.read(CHUNK)
        while True:
            nxt = src.read(CHUNK) if chunk else b""
            sha.update(chunk)
            m.crc = zlib.crc32(chunk, m.crc)
            m.size += len(chunk)
            fut = self.pool.submit(_deflate, chunk, prev_tail or None, not nxt, self.engine)
            self._queue.append(("chunk", m, fut, len(chunk)))
            self._pending_bytes += len(chunk)
            prev_tail = chunk[-WINDOW:]
            self._drain()
            if not nxt:
                break
            chunk = nxt
        self._queue.append(("end", m, None, 0))
        return sha.digest(), m.size

    def add_bytes(self, name: str, data: bytes, mtime: float | None = None) -> None:
        self.add_file(name, io.BytesIO(data), mtime or time.time())

    def abort(self) -> None:
        """Stop the workers without writing the rest (the caller discards the file)."""
        for _kind, _m, fut, _n in self._queue:
            if fut is not None:
                fut.cancel()
        self._queue.clear()
        self.pool.shutdown(wait=True)

    def close(self) -> None:
        """Write every queued member, then the central directory (ZIP64 records always present)."""
        self._drain(everything=True)
        self.pool.shutdown(wait=True)
        cd_start = self.offset
        for m in self.members:
            bname = m.name.encode("utf-8")
            extra = struct.pack("<HHQQQ", 0x0001, 24, m.size, m.compressed, m.offset)
            self._write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", (3 << 8) | 45, 45, 0x0808, 8,
                                    m.dostime[0], m.dostime[1], m.crc, 0xFFFFFFFF, 0xFFFFFFFF, len(bname),
                                    len(extra), 0, 0, 0, (0o100000 | m.mode) << 16, 0xFFFFFFFF)
                        + bname + extra)
        cd_size = self.offset - cd_start
        eocd64 = self.offset
        n = len(self.members)
        self._write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_start))
        self._write(struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd64, 1))
        self._write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                                min(cd_size, ZIP64_LIMIT), min(cd_start, ZIP64_LIMIT), 0))
