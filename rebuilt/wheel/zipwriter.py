"""A streaming ZIP writer that deflates chunks on several threads (pigz-style) and hashes as it reads.

Each member is split into chunks compressed in a thread pool (zlib releases the
GIL); chunks end with a sync flush so their raw deflate streams concatenate into
one, and each chunk is primed with the previous 32 KiB as a dictionary. The
writer thread keeps members in order. At most ``inflight`` chunks are held in
memory at once, so a 1 GB shared library is never held whole. Sizes and CRC
come after the data (data descriptor, ZIP64 when needed).
"""

from __future__ import annotations

import hashlib
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
    crc: int
    compressed: int
    size: int
    offset: int
    dostime: tuple[int, int]
    mode: int


def _dos_time(ts: float) -> tuple[int, int]:
    t = time.localtime(max(ts, 315532800))  # zip cannot express dates before 1980
    return ((t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
            ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday)


def _deflate(data: bytes, zdict: bytes | None, last: bool, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict) if zdict else \
        zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ZipWriter:
    """Write members in order; ``add_file`` streams from disk and returns (sha256 digest, size)."""

    def __init__(self, out: BinaryIO, level: int = 3, workers: int = 2, inflight: int = 8):
        self.out = out
        self.level = level
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self.inflight = max(2, inflight)
        self.members: list[Member] = []
        self.offset = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)

    def _local_header(self, name: bytes, dostime: tuple[int, int]) -> None:
        # flag 0x08: sizes and CRC follow the data; 0x800: UTF-8 names; zip64 extra reserves room
        extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0)
        self._write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0x0808, 8, dostime[0], dostime[1],
                                0, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra)

    def add_file(self, name: str, src: BinaryIO, mtime: float, mode: int = 0o644) -> tuple[bytes, int]:
        """Add one member read from ``src``; returns (sha256 digest, uncompressed size)."""
        bname = name.encode("utf-8")
        dostime = _dos_time(mtime)
        start = self.offset
        self._local_header(bname, dostime)
        sha, crc, size, compressed = hashlib.sha256(), 0, 0, 0
        pending: deque[Future] = deque()
        prev_tail = b""
        chunk = src.read(CHUNK)
        while True:
            nxt = src.read(CHUNK) if chunk else b""
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            pending.append(self.pool.submit(_deflate, chunk, prev_tail or None, not nxt, self.level))
            prev_tail = chunk[-WINDOW:]
            while len(pending) >= self.inflight:
                data = pending.popleft().result()
                compressed += len(data)
                self._write(data)
            if not nxt:
                break
            chunk = nxt
        while pending:
            data = pending.popleft().result()
            compressed += len(data)
            self._write(data)
        self._write(struct.pack("<4sIQQ", b"PK\x07\x08", crc, compressed, size))  # zip64 data descriptor
        self.members.append(Member(name, crc, compressed, size, start, dostime, mode))
        return sha.digest(), size

    def add_bytes(self, name: str, data: bytes, mtime: float | None = None) -> None:
        import io

        self.add_file(name, io.BytesIO(data), mtime or time.time())

    def close(self) -> None:
        """Central directory (ZIP64 records always present: simple, and fine for every reader)."""
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
